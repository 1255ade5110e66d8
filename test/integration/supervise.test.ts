// Supervise mode (--supervise): vaultrun runs the command as its child, forwards signals to it (every time),
// and exits with its status (128+n when signal n killed it) only after it has exited. Real OpenBao, real
// processes, real signals. stdin is a pipe here (not a TTY), so the child gets its own process group.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun, spawnVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  maskHas,
  PROBE,
  type ProbeReport,
  procStat,
  readLines,
  reportFromFile,
  reportFromStdout,
  waitForFile,
  waitForLine,
  workDir,
  writeFile,
} from '../support/processes.js';

const SECRET = 'supervise-mode-secret-2c9e04';
const REF = 'vault:secret/app/sup#password';

interface Supervised {
  child: ChildProcess;
  pid: number;
  result: Promise<RunResult>;
  /** Resolves when the vaultrun process itself exits (its stdout may stay open while the app holds it). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signals: string;
  probe: ProbeReport;
  /** vaultrun's stderr so far. */
  stderr: () => string;
}

/**
 * The probe runs in its own process group: when a test fails half-way, killing vaultrun's group (the harness
 * does that) would leave it running. Kill the apps left behind after each test (pid → a word of its cmdline).
 */
const probes = new Map<number, string>();
afterEach(() => {
  for (const [pid, word] of probes) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  probes.clear();
});

/** Waits for vaultrun itself to exit (not for the streams the app shares) and checks its status. */
async function expectExit(run: Supervised, status: number): Promise<void> {
  const { code, signal } = await run.exited;
  expect({ code, signal }, run.stderr()).toEqual({ code: status, signal: null });
}

describe('supervise mode', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.kvPut('app/sup', { password: SECRET });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  function refEnv(extra: Record<string, string> = {}): Record<string, string> {
    return baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, DB_PASSWORD: REF, ...extra });
  }

  /** Starts `vaultrun --supervise node probe --wait …` and waits until the probe's handlers are installed. */
  async function startWaitingProbe(probeArgs: string[] = []): Promise<Supervised> {
    const dir = workDir();
    const signals = join(dir, 'signals');
    const out = join(dir, 'report.json');
    const { child, result } = spawnVaultrun(['--supervise', 'node', PROBE, '--wait', ...probeArgs], {
      env: refEnv({ PROBE_SIGNALS: signals, PROBE_OUT: out }),
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => res({ code, signal }));
    });
    let stderr = '';
    child.stderr?.on('data', (d: string) => {
      stderr += d;
    });
    await waitForFile(out);
    const probe = reportFromFile(out);
    probes.set(probe.pid, 'probe.mjs');
    await waitForLine(signals, 'ready');
    expect(probe.env.DB_PASSWORD).toBe(SECRET);
    return { child, pid: child.pid as number, result, exited, signals, probe, stderr: () => stderr };
  }

  describe('the command is a child', () => {
    it('runs with vaultrun as its parent (a new pid), after resolving a reference', async () => {
      const { child, result } = spawnVaultrun(['--supervise', 'node', PROBE], { env: refEnv() });
      const res = await result;
      expect(res.exitCode, res.stderr).toBe(0);
      const report = reportFromStdout(res.stdout);
      expect(report.ppid).toBe(child.pid);
      expect(report.pid).not.toBe(child.pid);
      expect(report.env.DB_PASSWORD).toBe(SECRET);
      expect(report.env.VAULT_TOKEN).toBeUndefined();
      expect(res.stderr).toContain('resolved 1 reference');
    });

    it('also with --supervise after other options and the command after --, and via VAULTRUN_SUPERVISE', async () => {
      const a = spawnVaultrun(['--log-level', 'warn', '--supervise', '--', 'node', PROBE], { env: refEnv() });
      const ra = await a.result;
      expect(ra.exitCode, ra.stderr).toBe(0);
      expect(reportFromStdout(ra.stdout).ppid).toBe(a.child.pid);
      const b = spawnVaultrun(['node', PROBE], { env: refEnv({ VAULTRUN_SUPERVISE: 'true' }) });
      const rb = await b.result;
      expect(rb.exitCode, rb.stderr).toBe(0);
      expect(reportFromStdout(rb.stdout).ppid).toBe(b.child.pid);
    });

    it('gets its own process group (stdin is not a terminal)', async () => {
      const run = await startWaitingProbe();
      const vr = procStat(run.pid);
      const app = procStat(run.probe.pid);
      expect(app.ppid).toBe(run.pid);
      expect(vr.pgrp).toBe(run.pid); // spawnVaultrun starts vaultrun as a group leader
      expect(app.pgrp).toBe(run.probe.pid);
      expect(app.pgrp).not.toBe(vr.pgrp);
      process.kill(run.pid, 'SIGTERM');
      await expectExit(run, 0);
    });

    it('argv is passed exactly', async () => {
      const args = [
        'two words',
        '',
        'double "quotes"',
        "single 'quotes'",
        '--flag',
        '--supervise',
        '-h',
        '--',
        'ünïcødé ✓ 日本語 🚀',
        '$HOME',
        '*',
        'line1\nline2',
        REF,
      ];
      const res = await runVaultrun(['--supervise', 'node', PROBE, ...args], { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(reportFromStdout(res.stdout).argv).toEqual(args);
    });

    it('argv[0] is the command as given, not the path found on PATH', async () => {
      const script = 'tr "\\0" "\\n" < /proc/$$/cmdline';
      const res = await runVaultrun(['--supervise', 'sh', '-c', script, 'zero'], { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe(`sh\n-c\n${script}\nzero\n`);
    });

    it('stdout holds only the app’s output; stdin is the app’s', async () => {
      const dir = workDir();
      const out = join(dir, 'report.json');
      const res = await runVaultrun(['--supervise', 'node', PROBE, '--print', 'hello from the app'], {
        env: refEnv({ PROBE_OUT: out }),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe('hello from the app\n');
      expect(res.stderr).toContain('resolved 1 reference');
      expect(reportFromFile(out).env.DB_PASSWORD).toBe(SECRET);
      const cat = await runVaultrun(['--supervise', 'cat'], { env: refEnv(), input: 'piped\ninput\n' });
      expect(cat.exitCode, cat.stderr).toBe(0);
      expect(cat.stdout).toBe('piped\ninput\n');
    });

    it('gets stdin, stdout and stderr in blocking mode', async () => {
      const script = 'for fd in 0 1 2; do grep flags /proc/$$/fdinfo/$fd; done';
      const res = await runVaultrun(['--supervise', 'sh', '-c', script], { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      const flags = [...res.stdout.matchAll(/^flags:\s*([0-7]+)$/gm)].map((m) =>
        Number.parseInt(m[1] ?? '', 8),
      );
      expect(flags, res.stdout).toHaveLength(3);
      expect(flags.map((f) => (f & 0o4000) !== 0)).toEqual([false, false, false]);
    });

    it('starts with SIGPIPE and SIGXFSZ not ignored', async () => {
      const res = await runVaultrun(['--supervise', 'sh', '-c', 'grep SigIgn /proc/self/status'], {
        env: refEnv(),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(res.stdout)?.[1];
      expect(mask, res.stdout).toBeDefined();
      expect(maskHas(mask as string, 13)).toBe(false);
      expect(maskHas(mask as string, 25)).toBe(false);
    });

    it('a command not found exits 127, a file without the x bit 126, with a clear message', async () => {
      const dir = workDir();
      writeFile(join(dir, 'plain'), '#!/bin/sh\necho should-not-run\n', 0o644);
      const missing = await runVaultrun(['--supervise', 'vr-no-such-command'], { env: refEnv() });
      expect(missing.exitCode).toBe(127);
      expect(missing.stderr).toContain('command not found on PATH: vr-no-such-command');
      const plain = await runVaultrun(['--supervise', './plain'], { env: refEnv(), cwd: dir });
      expect(plain.exitCode).toBe(126);
      expect(plain.stdout).toBe('');
      expect(plain.stderr).toContain('command is not an executable file: ./plain');
    });
  });

  describe('exit status', () => {
    it.each([0, 3, 42])('passes the command’s exit code %i through', async (code) => {
      const res = await runVaultrun(['--supervise', 'node', PROBE, '--exit', String(code)], {
        env: refEnv(),
      });
      expect(res.exitCode, res.stderr).toBe(code);
      expect(res.signal).toBeNull();
    });

    it.each([
      ['SIGTERM', 143],
      ['SIGKILL', 137],
      ['SIGINT', 130],
      ['SIGHUP', 129],
    ])('a command killed by %s gives %i (vaultrun itself exits normally)', async (signal, status) => {
      const res = await runVaultrun(['--supervise', 'node', PROBE, '--die-by', signal], { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(status);
      expect(res.signal).toBeNull();
    });
  });

  it('a forwarded SIGTERM kills a command without a handler: 143', async () => {
    const dir = workDir();
    const started = join(dir, 'started');
    // `exec`: the pid that wrote the file is the one running sleep (default SIGTERM disposition).
    const { child, result } = spawnVaultrun(
      ['--supervise', 'sh', '-c', 'echo "$$" > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 600', started],
      { env: refEnv() },
    );
    await waitForFile(started);
    const appPid = Number(readFileSync(started, 'utf8'));
    probes.set(appPid, 'sleep');
    expect(procStat(appPid).ppid).toBe(child.pid);
    process.kill(child.pid as number, 'SIGTERM');
    const res = await result;
    expect(res.exitCode, res.stderr).toBe(143);
    expect(res.signal).toBeNull();
  });

  describe('signal forwarding', () => {
    // All of these are sent to vaultrun's pid only (not its group): the child can only get them from vaultrun.
    it.each(['SIGTERM', 'SIGINT'] as const)(
      'forwards %s, and the command stops gracefully',
      async (signal) => {
        const run = await startWaitingProbe(['--term-exit', '9']);
        process.kill(run.pid, signal);
        await expectExit(run, 9);
        expect(readLines(run.signals)).toEqual(['ready', signal, 'cleanup-done']);
      },
    );

    it.each([
      'SIGHUP',
      'SIGQUIT',
      'SIGUSR1',
      'SIGUSR2',
      'SIGWINCH',
      'SIGCONT',
      'SIGTSTP',
      'SIGTTIN',
      'SIGTTOU',
      'SIGALRM',
      'SIGPWR',
    ] as const)('forwards %s', async (signal) => {
      const run = await startWaitingProbe(['--term-exit', '9']);
      process.kill(run.pid, signal);
      await waitForLine(run.signals, signal);
      // vaultrun is still there and still forwarding.
      expect(procStat(run.pid).pid).toBe(run.pid);
      process.kill(run.pid, 'SIGTERM');
      await expectExit(run, 9);
      expect(readLines(run.signals)).toEqual(['ready', signal, 'SIGTERM', 'cleanup-done']);
    });

    it.each(['SIGHUP', 'SIGUSR1', 'SIGWINCH'] as const)(
      'forwards %s every time, not only the first',
      async (signal) => {
        const run = await startWaitingProbe(['--term-exit', '9']);
        for (let n = 1; n <= 3; n++) {
          process.kill(run.pid, signal);
          await waitForLine(run.signals, signal, n);
        }
        process.kill(run.pid, 'SIGTERM');
        await expectExit(run, 9);
        expect(readLines(run.signals)).toEqual(['ready', signal, signal, signal, 'SIGTERM', 'cleanup-done']);
      },
    );

    it.each(['SIGTERM', 'SIGINT'] as const)(
      'forwards a second %s while the command is still cleaning up, and keeps waiting for it',
      async (signal) => {
        // A grace period far longer than the test: the command only ends when the test kills it.
        const run = await startWaitingProbe(['--grace', '600000', '--term-exit', '9']);
        process.kill(run.pid, signal);
        await waitForLine(run.signals, signal, 1);
        process.kill(run.pid, signal);
        await waitForLine(run.signals, signal, 2);
        expect(procStat(run.pid).pid).toBe(run.pid); // vaultrun did not give up on the second one
        process.kill(run.probe.pid, 'SIGKILL');
        await expectExit(run, 137);
        expect(readLines(run.signals)).toEqual(['ready', signal, signal]);
      },
    );

    it.each(['SIGURG', 'SIGCHLD'] as const)('does not forward %s', async (signal) => {
      const run = await startWaitingProbe(['--term-exit', '9']);
      process.kill(run.pid, signal);
      // Markers: anything vaultrun forwarded because of `signal` reaches the probe before these.
      process.kill(run.pid, 'SIGUSR2');
      await waitForLine(run.signals, 'SIGUSR2');
      process.kill(run.pid, 'SIGWINCH');
      await waitForLine(run.signals, 'SIGWINCH');
      // Control: the probe does log `signal` when it gets one.
      process.kill(run.probe.pid, signal);
      await waitForLine(run.signals, signal);
      process.kill(run.pid, 'SIGTERM');
      await expectExit(run, 9);
      expect(readLines(run.signals)).toEqual([
        'ready',
        'SIGUSR2',
        'SIGWINCH',
        signal,
        'SIGTERM',
        'cleanup-done',
      ]);
    });

    it('a signal sent to vaultrun’s process group reaches the command once (it is not in that group)', async () => {
      const run = await startWaitingProbe(['--term-exit', '9']);
      process.kill(-run.pid, 'SIGHUP');
      await waitForLine(run.signals, 'SIGHUP');
      // Marker: a duplicate SIGHUP would have arrived before it.
      process.kill(run.pid, 'SIGUSR2');
      await waitForLine(run.signals, 'SIGUSR2');
      process.kill(-run.pid, 'SIGTERM');
      await expectExit(run, 9);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGHUP', 'SIGUSR2', 'SIGTERM', 'cleanup-done']);
    });

    it('on SIGTERM, exits only after the command has finished its cleanup, with its status', async () => {
      const run = await startWaitingProbe(['--grace', '500', '--term-exit', '7']);
      let linesAtExit: string[] = [];
      let probeAliveAtExit = true;
      const exited = run.exited.then((e) => {
        linesAtExit = readLines(run.signals);
        probeAliveAtExit = existsSync(`/proc/${run.probe.pid}`);
        return e;
      });
      process.kill(run.pid, 'SIGTERM');
      const { code, signal } = await exited;
      expect(signal).toBeNull();
      expect(code).toBe(7);
      expect(linesAtExit).toEqual(['ready', 'SIGTERM', 'cleanup-done']);
      expect(probeAliveAtExit).toBe(false);
    });
  });
});
