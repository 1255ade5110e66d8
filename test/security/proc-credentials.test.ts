// Property: in resident mode, the command cannot recover vaultrun's credentials (role_id, secret_id, token)
// from what the kernel shows about vaultrun (/proc/<vaultrun pid>/environ, cmdline, mem, fd/*) nor from the
// fds it inherited. The command is a hostile fixture (test/fixtures/proc-spy.mjs) that scans all of them for
// the credential bytes and reports where it found which (labels only). Real OpenBao, real users: as the same
// non-root uid (nobody, through util-linux setpriv) with the execute-only single executable and with
// `node vaultrun.cjs`, as root with a container's capabilities (no CAP_SYS_PTRACE), and with --user.
//
// This machine has no Yama LSM (/proc/sys/kernel/yama is absent), so nothing else protects vaultrun's memory.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { BUNDLE, singleExecutable } from '../support/exe.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? 'setpriv';
const SPY = join(REPO_ROOT, 'test/fixtures/proc-spy.mjs');

function idsOf(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name} in /etc/passwd`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}
const NOBODY = idsOf('nobody');
const AS_NOBODY = [SETPRIV, `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--'];
/** What Docker gives root by default lacks CAP_SYS_PTRACE: the whole container (vaultrun and command). */
const CONTAINER_ROOT = [SETPRIV, '--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', '--'];

interface Place {
  open: boolean;
  error?: string;
  hits?: string[];
  bytes?: number;
}
interface SpyReport {
  ppid: number;
  uid: number;
  environ: Place;
  cmdline: Place;
  mem: Place;
  parentFds: Place & { fds?: Array<{ fd: number; target?: string }> };
  ownFds: Place & { fds?: Array<{ fd: number; target?: string }> };
}

describe('the command cannot recover our credentials from /proc (resident mode)', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  let roleId: string;
  let token: string;
  /** World-searchable; files nobody may read. */
  let dir: string;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('these tests need root: they switch users with setpriv');
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('proc/app', { key: sensitive.add('secret', unique('proc-secret')) });
    await bao.writePolicy('proc', 'path "secret/data/proc/*" { capabilities = ["read"] }');
    roleId = sensitive.add('role_id', (await bao.setupAppRole({ role: 'proc', policies: ['proc'] })).roleId);
    token = sensitive.add('token', await bao.createToken({ policies: ['proc'] }));
    dir = tempDir('vaultrun-proc-');
    chmodSync(dir, 0o755);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function newSecretId(): Promise<string> {
    const res = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      'auth/approle/role/proc/secret-id',
      {},
    );
    return sensitive.add('secret_id', res.data.secret_id);
  }

  /**
   * `[prefix] VAULTRUN --supervise [args] -- [commandPrefix] node proc-spy.mjs`; returns the spy's report.
   * `credentials`: the credential variables vaultrun gets, which are also what the spy looks for.
   */
  async function spy(opts: {
    vaultrun: string[];
    credentials: Record<string, string>;
    /** What the spy looks for; default: the credentials. */
    needles?: Record<string, string>;
    args?: string[];
    commandPrefix?: string[];
  }): Promise<SpyReport> {
    const id = unique('run');
    const needles = join(dir, `${id}-needles.json`);
    const report = join(dir, `${id}-report.json`);
    writeFileSync(needles, JSON.stringify(opts.needles ?? opts.credentials), { mode: 0o644 });
    writeFileSync(report, '', { mode: 0o666 });
    chmodSync(report, 0o666);
    const res = await runVaultrun(
      [
        '--supervise',
        ...(opts.args ?? []),
        '--',
        ...(opts.commandPrefix ?? []),
        process.execPath,
        SPY,
        needles,
        report,
      ],
      {
        bin: opts.vaultrun,
        cwd: dir,
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULTRUN_LOG_LEVEL: 'debug',
          X: 'vault:secret/proc/app#key',
          ...opts.credentials,
        }),
      },
    );
    const output = `${res.stdout}${res.stderr}`;
    expect(res.exitCode, output).toBe(0);
    expectNoLeaks(output, sensitive);
    return JSON.parse(readFileSync(report, 'utf8')) as SpyReport;
  }

  const approle = async () => ({ VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: await newSecretId() });

  /** Nothing found anywhere, and the memory was not even readable. */
  function expectNothing(report: SpyReport): void {
    expect(report.environ.hits ?? [], 'credential in /proc/<vaultrun>/environ').toEqual([]);
    expect(report.cmdline.hits ?? [], 'credential in /proc/<vaultrun>/cmdline').toEqual([]);
    expect(report.parentFds.hits ?? [], "credential behind one of vaultrun's fds").toEqual([]);
    expect(report.ownFds.hits ?? [], 'credential behind an inherited fd').toEqual([]);
    expect(report.mem.hits ?? [], 'credential in /proc/<vaultrun>/mem').toEqual([]);
    expect(report.mem.open, '/proc/<vaultrun>/mem could be opened').toBe(false);
  }

  it('same uid (non-root), execute-only single executable: nothing readable at all', async () => {
    // Installed as a Dockerfile would: owned by root, mode 0711. The kernel starts an executable its user
    // cannot read as non-dumpable: /proc/<pid>/ then belongs to root.
    const exe = join(dir, 'vaultrun');
    copyFileSync(singleExecutable(), exe);
    chmodSync(exe, 0o711);
    const report = await spy({ vaultrun: [...AS_NOBODY, exe], credentials: await approle() });
    expect(report.uid).toBe(NOBODY.uid);
    expectNothing(report);
    expect(report.environ.open).toBe(false);
  });

  it('same uid (non-root), node vaultrun.cjs: environ, cmdline and fds hold no credential', async () => {
    // A readable program (node) runs dumpable: without Yama (ptrace_scope >= 1) the same uid can still read
    // vaultrun's memory — the documented residual of this form. What vaultrun can close, it closes.
    const runs: Array<Record<string, string>> = [
      await approle(),
      { VAULT_TOKEN: token },
      { BAO_TOKEN: token },
    ];
    for (const credentials of runs) {
      const report = await spy({ vaultrun: [...AS_NOBODY, process.execPath, BUNDLE], credentials });
      expect(report.uid).toBe(NOBODY.uid);
      expect(report.environ.open, 'the same uid reads environ').toBe(true);
      expect(report.environ.hits, 'credential in /proc/<vaultrun>/environ').toEqual([]);
      expect(report.cmdline.hits).toEqual([]);
      expect(report.parentFds.hits).toEqual([]);
      expect(report.ownFds.hits).toEqual([]);
    }
  });

  it('same uid, node vaultrun.cjs: a password in VAULT_ADDR / BAO_ADDR is not in environ or cmdline', async () => {
    for (const name of ['VAULT_ADDR', 'BAO_ADDR']) {
      const password = sensitive.add('address password', unique('addrpw'));
      const pair = `proxyuser:${password}`;
      const addr = bao.addr.replace('://', `://${pair}@`);
      const report = await spy({
        vaultrun: [...AS_NOBODY, process.execPath, BUNDLE],
        // VAULT_ADDR empty: BAO_ADDR is the address used.
        credentials: { VAULT_TOKEN: token, VAULT_ADDR: '', [name]: addr },
        needles: {
          token,
          password,
          pair,
          basic: sensitive.add('basic', Buffer.from(pair).toString('base64')),
        },
      });
      expect(report.environ.open, 'the same uid reads environ').toBe(true);
      expect(report.environ.hits, `${name}'s password in /proc/<vaultrun>/environ`).toEqual([]);
      expect(report.cmdline.hits).toEqual([]);
      expect(report.parentFds.hits).toEqual([]);
      expect(report.ownFds.hits).toEqual([]);
    }
  });

  it('root in a container (no CAP_SYS_PTRACE), command as root too: nothing readable', async () => {
    for (const credentials of [await approle(), { VAULT_TOKEN: token }]) {
      const report = await spy({ vaultrun: [...CONTAINER_ROOT, process.execPath, BUNDLE], credentials });
      expect(report.uid).toBe(0);
      expectNothing(report);
    }
  });

  it('root with --user nobody: nothing readable', async () => {
    const report = await spy({
      vaultrun: [process.execPath, BUNDLE],
      args: ['--user', 'nobody'],
      credentials: await approle(),
    });
    expect(report.uid).toBe(NOBODY.uid);
    expectNothing(report);
  });

  it('the command inherits no fd beyond what it would have when started directly', async () => {
    const kinds = (r: SpyReport) =>
      (r.ownFds.fds ?? [])
        .filter((f) => f.fd > 2)
        .map((f) => (f.target ?? '').replace(/\[\d+\]|\d+$/g, ''))
        .sort();
    const viaVaultrun = await spy({ vaultrun: [process.execPath, BUNDLE], credentials: await approle() });
    // The same spy, started directly with the same kind of stdio (pipes), as a baseline of Node's own fds.
    const needles = join(dir, 'direct-needles.json');
    const report = join(dir, 'direct-report.json');
    writeFileSync(needles, JSON.stringify({ role_id: roleId }));
    const direct = spawnSync(process.execPath, [SPY, needles, report], { stdio: ['pipe', 'pipe', 'pipe'] });
    expect(direct.status, String(direct.stderr)).toBe(0);
    const baseline = JSON.parse(readFileSync(report, 'utf8')) as SpyReport;
    expect(kinds(viaVaultrun)).toEqual(kinds(baseline));
  });
});
