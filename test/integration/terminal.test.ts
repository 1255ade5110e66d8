// Supervise mode in a terminal (docs/running.md): when vaultrun's stdin is a TTY the command
// stays in vaultrun's process group — the terminal's foreground group — and the signals the terminal sends to
// that whole group (Ctrl-C SIGINT, Ctrl-\ SIGQUIT, Ctrl-Z SIGTSTP, a resize SIGWINCH) are not sent a second
// time; every other signal is still forwarded. The opposite of the pipe case in supervise.test.ts.
//
// The terminal is a real pty made by util-linux `script -qfec CMD /dev/null`: it runs CMD (`exec vaultrun …`)
// as the leader of a new session whose controlling terminal is the pty, and copies its own stdin to the pty's
// master — so writing \x03 to script's stdin is typing Ctrl-C. Real OpenBao, real processes and signals.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, VAULTRUN_BIN } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  PROBE,
  type ProbeReport,
  readLines,
  reportFromFile,
  waitForFile,
  waitForLine,
  workDir,
} from '../support/processes.js';
import { expectNoLeaks, Sensitive, unique } from '../support/resolution.js';

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
const STTY = ['/usr/bin/stty', '/bin/stty'].find((p) => existsSync(p));
const REF = 'vault:secret/app/tty#password';
/**
 * Sent to vaultrun's pid after the signal under test, and forwarded: anything vaultrun forwarded because of that
 * signal reaches the probe before it. SIGPWR (30) is the highest-numbered signal the probe handles, and the
 * kernel delivers pending signals lowest number first, so even when both are pending at once the order holds.
 */
const MARKER = 'SIGPWR';

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface ProcStat {
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
  /** The foreground process group of the controlling terminal. */
  tpgid: number;
}

/** /proc/<pid>/stat fields after comm (which may contain spaces and parentheses). */
function procStat(pid: number): ProcStat {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text
    .slice(text.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // state ppid pgrp session tty_nr tpgid …
  return { ppid: f[1] ?? -1, pgrp: f[2] ?? -1, session: f[3] ?? -1, ttyNr: f[4] ?? -1, tpgid: f[5] ?? -1 };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

interface InTerminal {
  script: ChildProcess;
  /** script's exit: with -e, the status of the command it ran (vaultrun). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the pty showed (vaultrun's stderr, echoed keys), \r\n line ends. */
  output: () => string;
  /** Types on the terminal (writes to the pty's master through script). */
  type: (text: string) => void;
  vaultrun: number;
  probe: ProbeReport;
  signals: string;
  /** The pty, as vaultrun's stdin. */
  tty: string;
}

/** Processes to kill after each test (pid → a word of its cmdline), and script's process groups. */
const leftovers = new Map<number, string>();
const scripts = new Set<ChildProcess>();
afterEach(() => {
  for (const script of scripts) {
    try {
      if (script.pid !== undefined) process.kill(-script.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  scripts.clear();
  for (const [pid, word] of leftovers) {
    try {
      if (cmdline(pid).includes(word)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  leftovers.clear();
});

describe('supervise mode in a terminal', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const secret = sensitive.add('secret', unique('terminal-secret'));

  beforeAll(async () => {
    if (!SCRIPT || !STTY) throw new Error('util-linux `script` and coreutils `stty` are needed');
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/tty', { password: secret });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /**
   * `script -qfec "exec vaultrun --supervise -- node probe.mjs --wait …" /dev/null`; waits until the probe's
   * signal handlers are installed.
   */
  async function startInTerminal(probeArgs: string[] = []): Promise<InTerminal> {
    const dir = workDir('vaultrun-tty-');
    const signals = join(dir, 'signals');
    const out = join(dir, 'report.json');
    const argv = [...VAULTRUN_BIN, '--supervise', '--', process.execPath, PROBE, '--wait', ...probeArgs];
    const command = `exec ${argv.map(shellQuote).join(' ')}`;
    const script = spawn(SCRIPT as string, ['-qfec', command, '/dev/null'], {
      env: baseEnv({
        SHELL: '/bin/sh',
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        VAULTRUN_LOG_LEVEL: 'debug',
        DB_PASSWORD: REF,
        PROBE_SIGNALS: signals,
        PROBE_OUT: out,
      }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    scripts.add(script);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      script.once('exit', (code, signal) => res({ code, signal }));
    });
    let output = '';
    script.stdout?.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    script.stderr?.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    script.stdin?.on('error', () => {});
    const type = (text: string) => {
      script.stdin?.write(text);
    };

    await waitForFile(out);
    const probe = reportFromFile(out);
    leftovers.set(probe.pid, 'probe.mjs');
    const vaultrun = probe.ppid;
    leftovers.set(vaultrun, 'vaultrun');
    expect(cmdline(vaultrun)).toContain('vaultrun');
    expect(probe.env.DB_PASSWORD).toBe(secret);
    await waitForLine(signals, 'ready');
    const tty = readlinkSync(`/proc/${vaultrun}/fd/0`);
    return { script, exited, output: () => output, type, vaultrun, probe, signals, tty };
  }

  /** script (so vaultrun) exited with the status; nothing secret was shown on the terminal. */
  async function expectExit(run: InTerminal, status: number): Promise<void> {
    const { code, signal } = await run.exited;
    expect({ code, signal }, run.output()).toEqual({ code: status, signal: null });
    expect(existsSync(`/proc/${run.vaultrun}`) && cmdline(run.vaultrun).includes('vaultrun')).toBe(false);
    expectNoLeaks(run.output(), sensitive);
  }

  /** Sends the marker to vaultrun and waits until the probe has it (see MARKER). */
  async function marker(run: InTerminal, count = 1): Promise<void> {
    process.kill(run.vaultrun, MARKER);
    await waitForLine(run.signals, MARKER, count);
  }

  /** SIGTERM to vaultrun: forwarded (not a terminal signal); the probe cleans up and exits 9. */
  async function stop(run: InTerminal): Promise<void> {
    process.kill(run.vaultrun, 'SIGTERM');
    await expectExit(run, 9);
  }

  it('the command stays in vaultrun’s process group, the terminal’s foreground group', async () => {
    const run = await startInTerminal(['--term-exit', '9']);
    expect(run.tty).toMatch(/^\/dev\/pts\/\d+$/);
    const vr = procStat(run.vaultrun);
    const app = procStat(run.probe.pid);
    // vaultrun leads the session script made, and its group is the terminal's foreground group.
    expect(vr.session).toBe(run.vaultrun);
    expect(vr.pgrp).toBe(run.vaultrun);
    expect(vr.ttyNr).not.toBe(0);
    expect(vr.tpgid).toBe(run.vaultrun);
    // The command: vaultrun's child, in its group (not a group of its own, as with a pipe), same terminal.
    expect(app.ppid).toBe(run.vaultrun);
    expect(app.pgrp).toBe(vr.pgrp);
    expect(app.pgrp).not.toBe(run.probe.pid);
    expect(app.session).toBe(vr.session);
    expect(app.ttyNr).toBe(vr.ttyNr);
    expect(app.tpgid).toBe(vr.pgrp);
    expect(readlinkSync(`/proc/${run.probe.pid}/fd/0`)).toBe(run.tty);
    await stop(run);
    expect(readLines(run.signals)).toEqual(['ready', 'SIGTERM', 'cleanup-done']);
  });

  describe('the terminal’s signals reach the command once, from the terminal', () => {
    it.each([
      ['Ctrl-\\', 'SIGQUIT', '\x1c'],
      ['Ctrl-Z', 'SIGTSTP', '\x1a'],
    ])('%s: %s once', async (_key, signal, char) => {
      const run = await startInTerminal(['--term-exit', '9']);
      run.type(char);
      await waitForLine(run.signals, signal);
      await marker(run);
      expect(readLines(run.signals)).toEqual(['ready', signal, MARKER]);
      // vaultrun got it too (it is in the group) and is still running and forwarding.
      await stop(run);
      expect(readLines(run.signals)).toEqual(['ready', signal, MARKER, 'SIGTERM', 'cleanup-done']);
    });

    it('a resize: SIGWINCH once', async () => {
      const run = await startInTerminal(['--term-exit', '9']);
      // TIOCSWINSZ on the pty: the kernel sends SIGWINCH to its foreground group, as a terminal emulator does.
      // One dimension only: `stty rows R cols C` makes two ioctls, so two real SIGWINCHs (usually merged).
      const stty = spawnSync(STTY as string, ['-F', run.tty, 'rows', '41'], { encoding: 'utf8' });
      expect(stty.status, stty.stderr).toBe(0);
      const size = spawnSync(STTY as string, ['-F', run.tty, 'size'], { encoding: 'utf8' });
      expect(size.stdout.trim()).toBe('41 0');
      await waitForLine(run.signals, 'SIGWINCH');
      await marker(run);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGWINCH', MARKER]);
      await stop(run);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGWINCH', MARKER, 'SIGTERM', 'cleanup-done']);
    });

    it('Ctrl-C: SIGINT once; the command stops, vaultrun waits for it and exits with its status', async () => {
      const run = await startInTerminal(['--grace', '300', '--term-exit', '9']);
      run.type('\x03');
      await waitForLine(run.signals, 'SIGINT');
      await expectExit(run, 9);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGINT', 'cleanup-done']);
    });

    it('Ctrl-C during a long cleanup: no second SIGINT from vaultrun', async () => {
      // The command takes far longer than the test to clean up: it only ends when the test kills it.
      const run = await startInTerminal(['--grace', '600000', '--term-exit', '9']);
      run.type('\x03');
      await waitForLine(run.signals, 'SIGINT');
      await marker(run);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGINT', MARKER]);
      // A second Ctrl-C is again one SIGINT.
      run.type('\x03');
      await waitForLine(run.signals, 'SIGINT', 2);
      await marker(run, 2);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGINT', MARKER, 'SIGINT', MARKER]);
      process.kill(run.probe.pid, 'SIGKILL');
      await expectExit(run, 137);
    });
  });

  describe('sent with kill to vaultrun’s pid alone', () => {
    // In a terminal these are expected from the terminal, which sends them to the command as well: vaultrun
    // does not pass them on, so a `kill -INT <vaultrun>` reaches vaultrun only (and does not stop it).
    it.each(['SIGINT', 'SIGQUIT', 'SIGTSTP', 'SIGWINCH'] as const)(
      '%s is not forwarded, and vaultrun keeps running',
      async (signal) => {
        const run = await startInTerminal(['--term-exit', '9']);
        process.kill(run.vaultrun, signal);
        await marker(run);
        expect(readLines(run.signals)).toEqual(['ready', MARKER]);
        expect(procStat(run.vaultrun).ppid).toBe(run.script.pid);
        // Control: the probe does log the signal when it gets one (and SIGINT makes it stop).
        process.kill(run.probe.pid, signal);
        await waitForLine(run.signals, signal);
        if (signal === 'SIGINT') {
          await expectExit(run, 9);
          expect(readLines(run.signals)).toEqual(['ready', MARKER, signal, 'cleanup-done']);
        } else {
          await stop(run);
          expect(readLines(run.signals)).toEqual(['ready', MARKER, signal, 'SIGTERM', 'cleanup-done']);
        }
      },
    );

    it.each(['SIGUSR2', 'SIGHUP', 'SIGUSR1', 'SIGALRM', 'SIGCONT'] as const)(
      '%s (not a terminal signal) is forwarded, once',
      async (signal) => {
        const run = await startInTerminal(['--term-exit', '9']);
        process.kill(run.vaultrun, signal);
        await waitForLine(run.signals, signal);
        await marker(run);
        expect(readLines(run.signals)).toEqual(['ready', signal, MARKER]);
        await stop(run);
        expect(readLines(run.signals)).toEqual(['ready', signal, MARKER, 'SIGTERM', 'cleanup-done']);
      },
    );

    it('SIGTERM is forwarded: the command stops, vaultrun exits with its status', async () => {
      const run = await startInTerminal(['--grace', '300', '--term-exit', '7']);
      process.kill(run.vaultrun, 'SIGTERM');
      await expectExit(run, 7);
      expect(readLines(run.signals)).toEqual(['ready', 'SIGTERM', 'cleanup-done']);
    });
  });
});
