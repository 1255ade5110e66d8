// The single executable in a slim Debian root, as in a container image: debootstrap minbase bookworm (the base
// of Dify's api image) with tini, libstdc++6 and libatomic1 only — no Node. Built and cached by
// scripts/rootfs.sh, entered with scripts/rootfs-exec.sh (chroot, new PID and mount namespaces, the host's
// network, so the test's OpenBao on 127.0.0.1 is reachable). dist/vaultrun goes into /usr/local/bin by a bind
// mount for the run only: the cached root is never modified.
//
// Needs root, unshare, chroot and (to build the root the first time) debootstrap and the Debian mirror.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { singleExecutable } from '../support/exe.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { type Bind, ensureRootfs, spawnInRootfs } from '../support/rootfs.js';

const DB_PASSWORD = 'rootfs-db-secret-3e8a1f';
const REDIS_PASSWORD = 'rootfs-redis-secret-9b27c4';
const S3_SECRET_KEY = 'rootfs-s3-secret-0d5e66';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

describe('dist/vaultrun in a slim Debian bookworm root (no Node)', () => {
  let root: string;
  let bao: OpenBao;
  let binds: Bind[];
  let io: string;
  let roleId: string;
  let secretId: string;
  let rootEntries: string[];

  beforeAll(async () => {
    root = await ensureRootfs();
    rootEntries = readdirSync(root).sort();
    const exe = singleExecutable();
    const bin = workDir('vaultrun-rootfs-bin-');
    copyFileSync(exe, join(bin, 'vaultrun'));
    io = workDir('vaultrun-rootfs-io-');
    const run = workDir('vaultrun-rootfs-run-');
    binds = [
      { from: bin, to: '/usr/local/bin' },
      { from: io, to: '/mnt' },
      { from: run, to: '/run' },
    ];
    bao = await startOpenBao();
    await bao.kvPut('app/db', { password: DB_PASSWORD });
    await bao.kvPut('app/redis', { password: REDIS_PASSWORD });
    await bao.kvPut('app/storage', { s3_secret_key: S3_SECRET_KEY });
    await bao.writePolicy('app-read', 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n');
    ({ roleId, secretId } = await bao.setupAppRole({ role: 'rootfs', policies: ['app-read'] }));
    mkdirSync(join(io, 'secrets'));
    writeFileSync(join(io, 'secrets/role_id'), roleId, { mode: 0o400 });
    writeFileSync(join(io, 'secrets/secret_id'), secretId, { mode: 0o400 });
  }, 20 * 60_000);

  afterAll(async () => {
    await bao?.stop();
  });

  it('the root has no Node: the executable is all vaultrun needs', () => {
    expect(existsSync(join(root, 'usr/bin/node'))).toBe(false);
    expect(existsSync(join(root, 'usr/local/bin/node'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/tini'))).toBe(true);
  });

  it('vaultrun --version runs in the root', async () => {
    const res = await spawnInRootfs(root, binds, ['/usr/local/bin/vaultrun', '--version'], {
      env: { PATH: CONTAINER_PATH },
    }).result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^vaultrun \S+ \(node v\d+\.\d+\.\d+, commit \S+, single executable\)\n$/);
    expect(res.stderr).toBe('');
  });

  it('tini -- vaultrun -- /bin/sh: logs in with AppRole, resolves against OpenBao on the host, execs the app', async () => {
    const app = [
      'echo "pid=$$ init=$(cat /proc/1/comm)"',
      'echo "db=$(printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1)"',
      'echo "broker=$(printf %s "$CELERY_BROKER_URL" | sha256sum | cut -d" " -f1)"',
      'echo "s3_file=$S3_SECRET_KEY_FILE mode=$(stat -c %a "$S3_SECRET_KEY_FILE")"',
      'echo "s3=$(sha256sum < "$S3_SECRET_KEY_FILE" | cut -d" " -f1)"',
      'echo "vault_vars=$(env | grep -c "^VAULT" || true)"',
      'echo "node=$(command -v node || echo none)"',
      'echo "os=$(. /etc/os-release && echo "$VERSION_CODENAME")"',
    ].join('; ');
    const env = {
      PATH: CONTAINER_PATH,
      VAULT_ADDR: bao.addr,
      VAULT_ROLE_ID_FILE: '/mnt/secrets/role_id',
      VAULT_SECRET_ID_FILE: '/mnt/secrets/secret_id',
      DB_PASSWORD: 'vault:secret/app/db#password',
      CELERY_BROKER_URL: 'redis://:${vault:secret/app/redis#password}@redis:6379/1',
      S3_SECRET_KEY_FILE: 'vault:secret/app/storage#s3_secret_key',
    };
    const res = await spawnInRootfs(
      root,
      binds,
      ['/usr/bin/tini', '--', '/usr/local/bin/vaultrun', '--', '/bin/sh', '-c', app],
      { env },
    ).result;
    expect(res.exitCode, res.stderr).toBe(0);
    const out = Object.fromEntries(
      res.stdout
        .trim()
        .split(/[\n ]/)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    expect(out).toEqual({
      // vaultrun (tini's child) replaced itself with the app.
      pid: expect.stringMatching(/^\d+$/),
      init: 'tini',
      db: sha256(DB_PASSWORD),
      broker: sha256(`redis://:${REDIS_PASSWORD}@redis:6379/1`),
      // In the process's own directory of /run/vaultrun.
      s3_file: expect.stringMatching(/^\/run\/vaultrun\/\d+-\w{6}\/S3_SECRET_KEY$/),
      mode: '400',
      s3: sha256(S3_SECRET_KEY),
      vault_vars: '0',
      node: 'none',
      os: 'bookworm',
    });
    expect(res.stderr).toMatch(/resolved 3 references from 3 paths in \d+ ms via approle/);
    for (const value of [DB_PASSWORD, REDIS_PASSWORD, S3_SECRET_KEY, roleId, secretId]) {
      expect(`${res.stdout}${res.stderr}`).not.toContain(value);
    }
  });

  it('leaves the cached root as it was', () => {
    expect(readdirSync(root).sort()).toEqual(rootEntries);
    expect(readdirSync(join(root, 'usr/local/bin'))).toEqual([]);
    expect(readdirSync(join(root, 'mnt'))).toEqual([]);
    expect(existsSync(join(root, 'run/vaultrun'))).toBe(false);
  });
});
