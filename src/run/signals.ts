import { constants } from 'node:os';

/**
 * Signals a supervisor forwards to its child. Not forwarded: SIGCHLD (about our own child), SIGPIPE and
 * SIGXFSZ/SIGXCPU (about our own I/O and limits), SIGURG (out-of-band data; Go runtimes use it internally),
 * SIGSEGV/SIGBUS/SIGFPE/SIGILL (faults, not messages), SIGKILL/SIGSTOP (cannot be caught).
 */
export const FORWARDED_SIGNALS = [
  'SIGTERM',
  'SIGINT',
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
  'SIGVTALRM',
  'SIGPROF',
  'SIGIO',
  'SIGPWR',
  'SIGSYS',
  'SIGTRAP',
  'SIGABRT',
] as const satisfies readonly NodeJS.Signals[];

/** Signals a terminal sends to the whole foreground process group: a child in our group already got them. */
export const TERMINAL_SIGNALS: ReadonlySet<string> = new Set(['SIGINT', 'SIGQUIT', 'SIGTSTP', 'SIGWINCH']);

export function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number>)[name];
}

/** Exit status for a child: its code, or 128 + n when signal n killed it (as shells report it). */
export function exitStatus(code: number | null | undefined, signal: string | null | undefined): number {
  if (typeof code === 'number') return code;
  if (signal) return 128 + (signalNumber(signal) ?? 0);
  return 1;
}
