import { execa } from 'execa';
import type { Logger } from '../log.js';
import { exitStatus, FORWARDED_SIGNALS, TERMINAL_SIGNALS } from './signals.js';

/**
 * Supervise mode: the command runs as our child; every forwardable signal we receive (every time, not just the
 * first) goes to it; we exit with its status (128+n if signal n killed it) only after it has exited, so its
 * cleanup always completes. Outside a terminal the child gets its own process group, so that a later stop can
 * reach a whole `sh -c` tree; in a terminal it stays in ours, and the signals the terminal sends to the whole
 * foreground group (Ctrl-C, Ctrl-\, Ctrl-Z, resize) are not sent a second time.
 */
export interface SuperviseOptions {
  file: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  log: Logger;
  /** Defaults to process.stdin.isTTY. */
  interactive?: boolean;
}

export async function supervise(options: SuperviseOptions): Promise<number> {
  const { log } = options;
  const interactive = options.interactive ?? Boolean(process.stdin.isTTY);
  if (process.pid === 1) {
    log.warn(
      'vaultrun is PID 1 in supervise mode: orphaned grandchildren will not be reaped; run it under an init (tini -- vaultrun …)',
    );
  }
  const [argv0, ...args] = options.argv;
  const child = execa(options.file, args, {
    argv0: argv0 ?? options.file,
    env: { ...options.env },
    extendEnv: false,
    stdio: 'inherit',
    reject: false,
    detached: !interactive,
    cleanup: true,
    windowsHide: true,
  });
  const pending: NodeJS.Signals[] = [];
  const forward = (signal: NodeJS.Signals) => {
    if (interactive && TERMINAL_SIGNALS.has(signal)) return;
    if (child.pid === undefined) {
      pending.push(signal);
      return;
    }
    try {
      process.kill(child.pid, signal);
      log.debug('forwarded signal', { signal, pid: child.pid });
    } catch {
      // The child is already gone; its exit is being handled.
    }
  };
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => forward(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    if (child.pid !== undefined) log.debug('started the command', { pid: child.pid });
    for (const signal of pending.splice(0)) forward(signal);
    const result = await child;
    if (result.failed && result.exitCode === undefined && !result.signal) {
      log.error('the command could not be started', { code: (result as { code?: string }).code });
      return 126;
    }
    const status = exitStatus(result.exitCode, result.signal);
    log.debug('the command exited', { status, signal: result.signal ?? undefined });
    return status;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
