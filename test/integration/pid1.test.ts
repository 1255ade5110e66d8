// vaultrun as a container's ENTRYPOINT, in a fresh PID namespace (unshare --pid --fork --mount-proc): the
// first process is PID 1, as in a container, and signals come from the parent namespace, as `docker stop` sends
// them. Real OpenBao, real processes, real signals; processes are observed from the host through /proc.
//
//   tini -- vaultrun -- app               (recommended) tini is PID 1: forwards SIGTERM, reaps orphans
//   tini -- vaultrun --supervise -- app   the same, vaultrun stays as the app's parent
//   vaultrun --supervise -- app           vaultrun is PID 1: forwards SIGTERM, warns, but cannot reap orphans
//   vaultrun -- app                       the app becomes PID 1: it gets SIGTERM only if it handles it
//
// Needs root and util-linux unshare, and tini: without them these tests fail with what to install.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, VAULTRUN_BIN } from '../support/cli.js';
import {
  namespaceInit,
  type Proc,
  proc,
  processTree,
  requireRoot,
  requireTool,
  type Spawned,
  spawnInPidNamespace,
  waitFor,
} from '../support/namespaces.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { maskHas, PROBE, readLines, reportFromFile, waitForLine, workDir } from '../support/processes.js';

const APP = join(REPO_ROOT, 'test/fixtures/pid1-app.sh');
const SECRET = 'pid1-secret-5d0c27e1';
const REF = 'vault:secret/app/pid1#password';
const SIGTERM = 15;
const TERM_EXIT = 7;
/** The warning vaultrun prints when it supervises as PID 1 (src/run/supervise.ts). */
const PID1_WARNING = /PID 1.*orphan.*not be reaped.*tini --/;

/** Signal-mask fields of /proc/PID/status (hex). */
function statusMask(pid: number, field: 'SigCgt' | 'SigPnd' | 'ShdPnd' | 'SigBlk'): string {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const value = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(text)?.[1];
  if (value === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return value;
}

/** Writes a line to a FIFO once its reader has opened it (non-blocking open: ENXIO until then). */
async function writeFifo(path: string, line: string): Promise<void> {
  const fd = await waitFor(() => {
    try {
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENXIO') return undefined;
      throw error;
    }
  }, `a reader on ${path}`);
  try {
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
}

interface Container extends Spawned {
  dir: string;
  log: string;
  /** Host pid of PID 1 of the namespace. */
  init: number;
  /** The app (from its `ready` line). */
  app: Proc;
}

describe('PID 1 in a fresh PID namespace', () => {
  let bao: OpenBao;
  let tini: string;

  beforeAll(async () => {
    requireRoot('the PID 1 tests');
    tini = requireTool('tini');
    requireTool('mkfifo');
    bao = await startOpenBao();
    await bao.kvPut('app/pid1', { password: SECRET });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** Starts argv as PID 1 of a new namespace with the app's environment; waits until the app is ready. */
  async function start(argv: string[], extraEnv: Record<string, string> = {}): Promise<Container> {
    const dir = workDir('vaultrun-pid1-');
    const log = join(dir, 'log');
    const fifo = spawnSync(requireTool('mkfifo'), [join(dir, 'release')]);
    expect(fifo.status, String(fifo.stderr)).toBe(0);
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      DB_PASSWORD: REF,
      APP_DIR: dir,
      APP_ORPHAN: '1',
      APP_TERM_EXIT: String(TERM_EXIT),
      ...extraEnv,
    });
    const spawned = spawnInPidNamespace(argv, { env });
    // A failed start never writes `ready`: report its output at once instead of timing out.
    let exited: RunResult | undefined;
    void spawned.result.then(
      (r) => {
        exited = r;
      },
      () => {},
    );
    const nsPid = await waitFor(() => {
      const ready = readLines(log).find((l) => l.startsWith('ready '));
      if (ready !== undefined) return Number(ready.slice('ready '.length));
      if (exited) {
        throw new Error(
          `exited (${exited.exitCode ?? exited.signal}) before the app was ready:\n${exited.stderr}`,
        );
      }
      return undefined;
    }, 'the app to be ready');
    const init = await namespaceInit(spawned.child.pid as number);
    const app = processTree(init).find((p) => p.nsPid === nsPid);
    if (!app) throw new Error(`the app (pid ${nsPid} in the namespace) not found under ${init}`);
    expect(readFileSync(join(dir, 'db_password'), 'utf8')).toBe(SECRET);
    return { ...spawned, dir, log, init, app };
  }

  /** The orphaned grandchild, once it has written its pid: host view. */
  async function orphan(c: Container): Promise<Proc> {
    const file = join(c.dir, 'orphan');
    const nsPid = Number(
      await waitFor(() => (existsSync(file) ? readFileSync(file, 'utf8') : undefined), file),
    );
    return waitFor(() => processTree(c.init).find((p) => p.nsPid === nsPid), `the orphan (pid ${nsPid})`);
  }

  function zombies(c: Container): Proc[] {
    return processTree(c.init).filter((p) => p.state === 'Z');
  }

  /** SIGTERM to PID 1 from outside the namespace (as `docker stop`); the app shuts down gracefully. */
  async function stopGracefully(c: Container): Promise<void> {
    process.kill(c.init, 'SIGTERM');
    const res = await c.result;
    expect(res.exitCode, `stderr:\n${res.stderr}`).toBe(TERM_EXIT);
    expect(res.signal).toBeNull();
    const lines = readLines(c.log);
    expect(lines.slice(-2)).toEqual(['signal TERM', 'cleanup-done']);
    expect(lines.filter((l) => l === 'signal TERM')).toHaveLength(1);
  }

  describe('tini -- vaultrun -- app (recommended)', () => {
    it('tini is PID 1 and the app replaced vaultrun as its child; SIGTERM reaches the app, its exit code comes back; the orphan is reaped', async () => {
      const c = await start([tini, '--', ...VAULTRUN_BIN, '--', '/bin/sh', APP]);
      expect(proc(c.init)?.comm).toBe('tini');
      expect(proc(c.init)?.nsPid).toBe(1);
      // Exec mode: nothing between tini and the app, and nothing of vaultrun left in the namespace.
      expect(c.app.ppid).toBe(c.init);
      expect(processTree(c.init).map((p) => p.comm)).not.toContain('vaultrun');
      expect(processTree(c.init).filter((p) => /node/.test(p.comm))).toEqual([]);

      const o = await orphan(c);
      expect(o.ppid, 'the orphan is re-parented to PID 1').toBe(c.init);
      await writeFifo(join(c.dir, 'release'), 'exit');
      await waitFor(() => (proc(o.pid) === undefined ? true : undefined), 'tini to reap the orphan');
      expect(zombies(c)).toEqual([]);

      await stopGracefully(c);
      expect((await c.result).stderr).not.toMatch(/PID 1/);
    });
  });

  describe('tini -- vaultrun --supervise -- app', () => {
    it('vaultrun stays between tini and the app, without the PID 1 warning; SIGTERM goes tini → vaultrun → app; the orphan is reaped by tini', async () => {
      const c = await start([tini, '--', ...VAULTRUN_BIN, '--supervise', '--', '/bin/sh', APP]);
      const supervisor = proc(c.app.ppid);
      expect(supervisor?.ppid, 'the app’s parent (vaultrun) is tini’s child').toBe(c.init);
      expect(supervisor?.nsPid).not.toBe(1);

      const o = await orphan(c);
      expect(o.ppid, 'orphans go to PID 1 (tini), not to vaultrun').toBe(c.init);
      await writeFifo(join(c.dir, 'release'), 'exit');
      await waitFor(() => (proc(o.pid) === undefined ? true : undefined), 'tini to reap the orphan');
      expect(zombies(c)).toEqual([]);

      await stopGracefully(c);
      expect((await c.result).stderr).not.toMatch(PID1_WARNING);
    });
  });

  describe('vaultrun --supervise -- app, vaultrun as PID 1 (no init)', () => {
    it('warns at startup that orphans will not be reaped', async () => {
      const c = await start([...VAULTRUN_BIN, '--supervise', '--', '/bin/sh', APP]);
      expect(proc(c.init)?.nsPid).toBe(1);
      expect(c.app.ppid, 'the app is vaultrun’s child').toBe(c.init);
      await stopGracefully(c);
      const { stderr } = await c.result;
      expect(stderr).toMatch(PID1_WARNING);
    });

    it('forwards SIGTERM sent to PID 1 (it has a handler, so the kernel delivers it): graceful shutdown, exit code back', async () => {
      const c = await start([...VAULTRUN_BIN, '--supervise', '--', '/bin/sh', APP]);
      // PID 1 only receives signals it handles: the handler must be installed by now (the app is running).
      expect(maskHas(statusMask(c.init, 'SigCgt'), SIGTERM)).toBe(true);
      await stopGracefully(c);
    });

    it('does not reap an orphaned grandchild: it stays a zombie while vaultrun runs', async () => {
      const c = await start([...VAULTRUN_BIN, '--supervise', '--', '/bin/sh', APP]);
      const o = await orphan(c);
      expect(o.ppid, 'the orphan is re-parented to PID 1 (vaultrun)').toBe(c.init);
      await writeFifo(join(c.dir, 'release'), 'exit');
      await waitFor(() => (proc(o.pid)?.state === 'Z' ? true : undefined), 'the orphan to exit');
      // The orphan's SIGCHLD reached vaultrun before this SIGUSR2 (both go through the same signal pipe of its
      // event loop, in order): once the app has the SIGUSR2, vaultrun has handled the SIGCHLD — and the
      // zombie is still there.
      process.kill(c.init, 'SIGUSR2');
      await waitForLine(c.log, 'signal USR2');
      expect(proc(o.pid)).toMatchObject({ state: 'Z', ppid: c.init });
      expect(zombies(c).map((p) => p.pid)).toEqual([o.pid]);
      await stopGracefully(c);
    });
  });

  describe('vaultrun -- app, vaultrun as PID 1 (no init): the app becomes PID 1', () => {
    it('an app that handles SIGTERM gets it and shuts down gracefully', async () => {
      const dir = workDir('vaultrun-pid1-');
      const signals = join(dir, 'signals');
      const out = join(dir, 'report.json');
      const env = baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        DB_PASSWORD: REF,
        PROBE_SIGNALS: signals,
        PROBE_OUT: out,
      });
      const run = spawnInPidNamespace(
        [...VAULTRUN_BIN, '--', process.execPath, PROBE, '--wait', '--term-exit', String(TERM_EXIT)],
        { env },
      );
      await waitForLine(signals, 'ready');
      const report = reportFromFile(out);
      expect(report.pid, 'the app is PID 1: vaultrun replaced itself').toBe(1);
      expect(report.ppid).toBe(0);
      expect(report.env.DB_PASSWORD).toBe(SECRET);
      const init = await namespaceInit(run.child.pid as number);
      process.kill(init, 'SIGTERM');
      const res = await run.result;
      expect(res.exitCode, res.stderr).toBe(TERM_EXIT);
      expect(readLines(signals)).toEqual(['ready', 'SIGTERM', 'cleanup-done']);
    });

    it('an app without a SIGTERM handler never gets it: the kernel drops signals to PID 1 that it does not handle', async () => {
      const dir = workDir('vaultrun-pid1-');
      const stop = join(dir, 'stop');
      expect(spawnSync(requireTool('mkfifo'), [stop]).status).toBe(0);
      const env = baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, DB_PASSWORD: REF, D: dir });
      // dash (Debian's /bin/sh) installs no SIGTERM handler when not interactive.
      const script = 'echo "ready $$" > "$D/log"; read -r line < "$D/stop"; exit 5';
      const run = spawnInPidNamespace([...VAULTRUN_BIN, '--', '/bin/sh', '-c', script], { env });
      await waitForLine(join(dir, 'log'), 'ready 1');
      const init = await namespaceInit(run.child.pid as number);
      expect(maskHas(statusMask(init, 'SigCgt'), SIGTERM)).toBe(false);

      process.kill(init, 'SIGTERM');
      // kill() has returned: the signal was either queued (pending, or already fatal) or dropped.
      expect(proc(init)?.state).toMatch(/^[RS]$/);
      expect(maskHas(statusMask(init, 'SigPnd'), SIGTERM)).toBe(false);
      expect(maskHas(statusMask(init, 'ShdPnd'), SIGTERM)).toBe(false);
      // Still alive and well: it ends on its own terms, not with 128+15.
      await writeFifo(stop, 'go');
      const res = await run.result;
      expect(res.exitCode, res.stderr).toBe(5);
      expect(res.signal).toBeNull();
    });
  });
});
