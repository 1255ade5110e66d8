import { describe, expect, it } from 'vitest';
import { exitStatus, FORWARDED_SIGNALS, signalNumber, TERMINAL_SIGNALS } from '../../src/run/signals.js';

describe('exitStatus', () => {
  it.each<[number | null | undefined, string | null | undefined, number]>([
    [0, null, 0],
    [1, null, 1],
    [3, undefined, 3],
    [255, null, 255],
    // A code wins over a signal.
    [0, 'SIGTERM', 0],
    [2, 'SIGKILL', 2],
    // Killed by a signal: 128 + n, as shells report it.
    [null, 'SIGTERM', 128 + 15],
    [null, 'SIGKILL', 128 + 9],
    [null, 'SIGINT', 128 + 2],
    [null, 'SIGHUP', 128 + 1],
    [null, 'SIGQUIT', 128 + 3],
    [null, 'SIGABRT', 128 + 6],
    [null, 'SIGSEGV', 128 + 11],
    [undefined, 'SIGTERM', 143],
    // Neither: a failure.
    [null, null, 1],
    [undefined, undefined, 1],
    [null, '', 1],
  ])('code %s, signal %s → %i', (code, signal, expected) => {
    expect(exitStatus(code, signal)).toBe(expected);
  });
});

describe('signalNumber', () => {
  it.each<[string, number | undefined]>([
    ['SIGTERM', 15],
    ['SIGKILL', 9],
    ['SIGHUP', 1],
    ['SIGUSR1', process.platform === 'linux' ? 10 : 30],
    ['TERM', undefined],
    ['SIGNOPE', undefined],
    ['constructor', undefined],
    ['toString', undefined],
  ])('%s → %s', (name, n) => {
    expect(signalNumber(name)).toBe(n);
  });
});

describe('FORWARDED_SIGNALS', () => {
  it('forwards the signals a container runtime and an operator send', () => {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']) {
      expect(FORWARDED_SIGNALS).toContain(s);
    }
  });

  it('never forwards signals that cannot be caught, that are about us, or that are faults', () => {
    for (const s of [
      'SIGKILL',
      'SIGSTOP',
      'SIGCHLD',
      'SIGPIPE',
      'SIGXFSZ',
      'SIGXCPU',
      'SIGURG',
      'SIGSEGV',
      'SIGBUS',
      'SIGFPE',
      'SIGILL',
    ]) {
      expect(FORWARDED_SIGNALS).not.toContain(s);
    }
  });

  it('lists each signal once, and only signals this platform knows', () => {
    expect(new Set(FORWARDED_SIGNALS).size).toBe(FORWARDED_SIGNALS.length);
    if (process.platform === 'linux') {
      for (const s of FORWARDED_SIGNALS) expect(signalNumber(s), s).toBeTypeOf('number');
    }
  });

  it('has the terminal signals among the forwarded ones', () => {
    for (const s of TERMINAL_SIGNALS) expect(FORWARDED_SIGNALS).toContain(s);
    expect([...TERMINAL_SIGNALS].sort()).toEqual(['SIGINT', 'SIGQUIT', 'SIGTSTP', 'SIGWINCH']);
  });
});
