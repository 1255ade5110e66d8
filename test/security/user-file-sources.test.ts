// With --user, vaultrun (root) reads the files it reads on the command's behalf — NAME_FILE sources and env
// files — as the command's user. The attack: the source lies in a directory the user can write (the Vault Agent
// injector's /vault/secrets emptyDir is 0777); the command, as that user, replaces the file with a symlink to a
// root-only file. Read as root, the next read (a --watch re-read, or the next start) handed the root-only content
// to the command. Read as the user, the kernel refuses the link's target: exit 74 at a start, the old values
// kept under --watch; the root-only content never reaches the command nor any log.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { asNobody, NOBODY, nobodysDir, openDir } from '../support/nobody.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { unique } from '../support/resolution.js';
import { type Resident, startResident, starts, waitForStart } from '../support/rotation.js';

/** The command: prints what it got (exec mode). */
const PRINT = ['sh', '-c', 'echo "DB_PASSWORD=$DB_PASSWORD"; echo "KEY=$KEY"'];

describe('--user: files read on the command behalf are read as that user', () => {
  let bao: OpenBao;
  const kvValue = unique('ufs-kv');
  const rootOnlyValue = unique('root-only');
  let work: string;
  /** root's, 0600, in a directory nobody can search: nobody cannot read it. */
  let rootOnly: string;
  let rootOnlyEnv: string;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root: vaultrun runs as root with --user');
    bao = await startOpenBao();
    await bao.kvPut('ufs/app', { key: kvValue });
    work = openDir('vaultrun-ufs-');
    const vault = join(work, 'root-only');
    mkdirSync(vault, { mode: 0o700 });
    rootOnly = join(vault, 'password');
    writeFileSync(rootOnly, `${rootOnlyValue}\n`, { mode: 0o600 });
    rootOnlyEnv = join(vault, 'root.env');
    writeFileSync(rootOnlyEnv, `DB_PASSWORD=${rootOnlyValue}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** A root-owned 0777 directory (as an emptyDir), with a readable file source in it. */
  function sharedDir(): string {
    const dir = join(openDir('vaultrun-ufs-shared-'), 'secrets');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    return dir;
  }

  const env = (dir: string, extra: Record<string, string> = {}) =>
    baseEnv({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      VAULTRUN_FILE_ENV_DIRS: dir,
      KEY: 'vault:secret/ufs/app#key',
      ...extra,
    });

  /** What nobody does: a symlink to `target` in place of `path` (made as nobody, renamed over it). */
  function swapAsNobody(path: string, target: string): void {
    const [cmd, ...args] = asNobody();
    const script = 'ln -s "$1" "$2.new" && mv -f "$2.new" "$2"';
    const res = spawnSync(cmd as string, [...args, 'sh', '-c', script, 'swap', target, path], {
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
  }

  it('a readable file source works as before: a root file 0644, nobody’s own 0400 file, a ..data symlink', async () => {
    const dir = sharedDir();
    const cases: Array<[string, () => void]> = [
      ['root0644', () => writeFileSync(join(dir, 'root0644'), 'one\n', { mode: 0o644 })],
      [
        'nobody0400',
        () => {
          writeFileSync(join(dir, 'nobody0400'), 'one\n', { mode: 0o400 });
          chownSync(join(dir, 'nobody0400'), NOBODY.uid, NOBODY.gid);
        },
      ],
      [
        'k8s',
        () => {
          // Kubernetes' layout: NAME → ..data/NAME, ..data → ..2024_…
          mkdirSync(join(dir, '..2024_01'), { mode: 0o755 });
          writeFileSync(join(dir, '..2024_01', 'k8s'), 'one\n', { mode: 0o644 });
          symlinkSync('..2024_01', join(dir, '..data'));
          symlinkSync('..data/k8s', join(dir, 'k8s'));
        },
      ],
    ];
    for (const [name, make] of cases) {
      make();
      const res = await runVaultrun(['--user', 'nobody', '--', ...PRINT], {
        env: env(dir, { DB_PASSWORD_FILE: join(dir, name) }),
      });
      expect(res.exitCode, `${name}: ${res.stderr}`).toBe(0);
      expect(res.stdout).toBe(`DB_PASSWORD=one\nKEY=${kvValue}\n`);
    }
  });

  it('a readable env file works as before', async () => {
    const dir = sharedDir();
    const file = join(dir, 'app.env');
    writeFileSync(file, 'DB_PASSWORD=one\n', { mode: 0o600 });
    chownSync(file, NOBODY.uid, NOBODY.gid);
    const res = await runVaultrun(['--user', 'nobody', '--', ...PRINT], {
      env: env(dir, { VAULTRUN_ENV_FILE: file }),
    });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe(`DB_PASSWORD=one\nKEY=${kvValue}\n`);
  });

  it.each([
    ['a NAME_FILE source', 'db', (path: string) => ({ DB_PASSWORD_FILE: path }), /DB_PASSWORD_FILE: /],
    ['an env file', 'app.env', (path: string) => ({ VAULTRUN_ENV_FILE: path }), /env file /],
  ])(
    '%s that nobody swapped for a symlink to a root-only file: exit 74 at the start, naming it; the command never runs',
    async (_what, name, vars, names) => {
      const dir = sharedDir();
      const path = join(dir, name);
      writeFileSync(path, name === 'db' ? 'one\n' : 'DB_PASSWORD=one\n', { mode: 0o644 });
      swapAsNobody(path, name === 'db' ? rootOnly : rootOnlyEnv);
      const res = await runVaultrun(['--user', 'nobody', '--', ...PRINT], { env: env(dir, vars(path)) });
      expect(res.exitCode, res.stderr).toBe(74);
      expect(res.stdout).toBe(''); // the command did not run
      expect(res.stderr).toMatch(names);
      expect(res.stderr).toContain(`${path} is not readable by the --user target nobody (uid ${NOBODY.uid}`);
      expect(res.stderr).toContain('must be readable by that user');
      expect(res.stderr).not.toContain(rootOnlyValue);
      // Without --user nothing changes: vaultrun and the command are the same root, the link is followed.
      const asRoot = await runVaultrun(['--', ...PRINT], { env: env(dir, vars(path)) });
      expect(asRoot.exitCode, asRoot.stderr).toBe(0);
      expect(asRoot.stdout).toContain(`DB_PASSWORD=${rootOnlyValue}\n`);
    },
  );

  describe('--watch: the command itself swaps the file', () => {
    const WATCH = ['--watch', '--poll-interval', '1h', '--debounce', '100ms', '--log-level', 'debug'];
    /** As nobody: log what it got; at its first start, put a symlink to $ROOT_FILE in place of $SOURCE. */
    const SWAPPING_APP = [
      'sh',
      '-c',
      [
        // One JSON line, as the rotation fixtures write (test/support/rotation.ts reads and cleans up after them).
        'printf \'{"event":"start","pid":%d,"t":0,"uid":%d,"vars":{"DB_PASSWORD":"%s"}}\\n\' $$ "$(id -u)" "$DB_PASSWORD" >> "$APP_LOG"',
        'if [ ! -e "$APP_LOG.swapped" ]; then : > "$APP_LOG.swapped"; ln -s "$ROOT_FILE" "$SOURCE.new" && mv -f "$SOURCE.new" "$SOURCE"; fi',
        'exec sleep 600',
      ].join('\n'),
    ];

    async function stop(run: Resident): Promise<void> {
      process.kill(run.pid, 'SIGTERM');
      const res = await run.result;
      expect(res.exitCode, res.stderr).toBe(143); // sleep's status: killed by the SIGTERM vaultrun forwarded
    }

    it.each([
      ['a NAME_FILE source', 'db', (path: string) => ({ DB_PASSWORD_FILE: path })],
      ['an env file', 'app.env', (path: string) => ({ VAULTRUN_ENV_FILE: path })],
    ])(
      '%s: the re-read is refused, the command keeps its old value; a readable file afterwards is taken',
      async (_what, name, vars) => {
        const dir = sharedDir();
        const logs = nobodysDir(openDir('vaultrun-ufs-logs-'), 'logs');
        const appLog = join(logs, 'app.log');
        const path = join(dir, name);
        const text = (value: string) => (name === 'db' ? `${value}\n` : `DB_PASSWORD=${value}\n`);
        const sidecar = (value: string) => {
          // What the Vault Agent does: a temporary file renamed over the source.
          writeFileSync(`${path}.tmp`, text(value), { mode: 0o644 });
          renameSync(`${path}.tmp`, path);
        };
        sidecar('one');
        const run = startResident([...WATCH, '--user', 'nobody', ...SWAPPING_APP], {
          env: env(dir, {
            ...vars(path),
            APP_LOG: appLog,
            SOURCE: path,
            ROOT_FILE: name === 'db' ? rootOnly : rootOnlyEnv,
          }),
        });
        const first = await waitForStart(appLog, 1);
        expect({ uid: first.uid, vars: first.vars }).toEqual({
          uid: NOBODY.uid,
          vars: { DB_PASSWORD: 'one' },
        });
        const failed = await run.waitForLog(
          (l) => l.msg.startsWith('could not resolve the changed secrets'),
          'the refused re-read',
        );
        expect(failed.code).toBe('IO');
        expect(String(failed.error)).toContain(`${path} is not readable by the --user target nobody`);
        // The file is readable again (the sidecar renders it): the watch goes on and takes it.
        sidecar('two');
        const second = await waitForStart(appLog, 2);
        expect({ uid: second.uid, vars: second.vars }).toEqual({
          uid: NOBODY.uid,
          vars: { DB_PASSWORD: 'two' },
        });
        await stop(run);
        expect(starts(appLog).map((e) => e.vars?.DB_PASSWORD)).toEqual(['one', 'two']);
        expect(readFileSync(appLog, 'utf8')).not.toContain(rootOnlyValue);
        expect(run.stderr()).not.toContain(rootOnlyValue);
      },
    );
  });
});
