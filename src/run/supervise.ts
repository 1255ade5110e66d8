import type { ChildProcess } from 'node:child_process';
import type { Logger, Masker } from '../log.js';
import { groupAlive, signalGroup, waitGroupGone } from './group.js';
import { pumpMasked } from './mask.js';
import { exitStatus, FORWARDED_SIGNALS, TERMINAL_SIGNALS } from './signals.js';

/**
 * Supervise mode: the command runs as our child; every forwardable signal we receive (every time, not just the
 * first) goes to it; we exit with its status (128+n if signal n killed it) only after it has exited, so its
 * cleanup always completes. Outside a terminal the child gets its own process group, so that a stop for a
 * restart reaches a whole `sh -c` tree; in a terminal it stays in ours, and the signals the terminal sends to
 * the whole foreground group (Ctrl-C, Ctrl-\, Ctrl-Z, resize) are not sent a second time.
 *
 * A rotation (run/rotation/) drives the running supervisor through the Controller: restart with a new
 * environment, send a signal, or shut down with a given status.
 */
export interface SuperviseOptions {
  file: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  log: Logger;
  /** Defaults to process.stdin.isTTY. */
  interactive?: boolean;
  /** Restart and shutdown: signal to the child's process group, then SIGKILL after the timeout. */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
  /** Run the command as this user (--user). */
  uid?: number;
  gid?: number;
  /** Called once the first child runs. */
  onStart?: (controller: Controller) => void;
  /** Called after the last child exited, before the signal handlers are removed (revocation, file removal). */
  onExit?: () => Promise<void>;
  /**
   * --mask: the command's stdout and stderr are pipes through run/mask.ts, which replaces every value this
   * masker holds (read live: values added by a rotation are masked from then on). Default: inherited as is.
   */
  mask?: Masker;
}

/** What the next child starts with, decided once the old one has stopped; `reason` replaces the restart's. */
export interface NextStart {
  env: Readonly<Record<string, string>>;
  reason?: string;
}

export interface Controller {
  /**
   * Stops the current child (stop signal to its group, SIGKILL after the timeout) and starts a new one. `next`
   * is its environment, or a function called once the old child is gone (it must not reject) that says what
   * the new one starts with: a change noticed during the stop is taken into this start.
   */
  restart(next: Readonly<Record<string, string>> | (() => Promise<NextStart>), reason: string): Promise<void>;
  /** Sends a signal to the current child. */
  signal(signal: NodeJS.Signals): void;
  /** Stops the child and makes the supervisor exit with `status` (instead of the child's). */
  shutdown(status: number, reason: string): Promise<void>;
  readonly pid: number | undefined;
  /** Number of children started so far. */
  readonly starts: number;
}

interface Running {
  process: ChildProcess;
  pid: number | undefined;
  exited: boolean;
  done: Promise<number>;
  /** --mask: resolves when all of its output has been written. */
  output: Promise<unknown> | undefined;
}

export async function supervise(options: SuperviseOptions): Promise<number> {
  const { log } = options;
  const interactive = options.interactive ?? Boolean(process.stdin.isTTY);
  const stopSignal = options.stopSignal ?? 'SIGTERM';
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  if (process.pid === 1) {
    log.warn(
      'vaultrun is PID 1 in supervise mode: orphaned grandchildren will not be reaped; run it under an init (tini -- vaultrun …)',
    );
  }
  // Node's own spawn, loaded here: exec mode never needs it. (Not execa: half of the bundle's size, so more to
  // load and a larger start-up snapshot for every start, for nothing vaultrun uses.)
  const { spawn: spawnChild } = process.getBuiltinModule('node:child_process');
  const [argv0, ...args] = options.argv;
  let starts = 0;
  const spawn = (env: Readonly<Record<string, string>>): Running => {
    const child = spawnChild(options.file, args, {
      argv0: argv0 ?? options.file,
      env: { ...env },
      stdio: options.mask ? ['inherit', 'pipe', 'pipe'] : 'inherit',
      detached: !interactive,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    // If vaultrun itself exits while the command still runs (an internal error), the command goes too.
    const cleanup = () => {
      if (!running.exited) child.kill();
    };
    process.once('exit', cleanup);
    starts++;
    const { mask } = options;
    const masked =
      mask && child.stdout && child.stderr
        ? Promise.all([
            pumpMasked(child.stdout, process.stdout, () => mask.list()),
            pumpMasked(child.stderr, process.stderr, () => mask.list()),
          ])
        : undefined;
    // The status comes from the child's exit, not from the end of its stdout/stderr pipes (--mask), which
    // waits until every copy is closed: a daemon it left behind must not keep vaultrun waiting. The masked
    // output is drained at the very end, once the process group is gone.
    const running: Running = {
      process: child,
      pid: child.pid,
      exited: false,
      output: masked,
      done: new Promise<number>((resolve) => {
        child.once('exit', (code, signal) => {
          running.exited = true;
          process.off('exit', cleanup);
          resolve(exitStatus(code, signal));
        });
        child.on('error', (error: NodeJS.ErrnoException) => {
          // Only a failed start ends the child here (a failed kill of a running one is an 'error' too).
          if (child.pid !== undefined || running.exited) return;
          running.exited = true;
          process.off('exit', cleanup);
          log.error('the command could not be started', { code: error.code });
          resolve(126);
        });
      }),
    };
    log.debug('started the command', { pid: running.pid });
    return running;
  };

  // The handlers go in before the command starts: a signal that came between the start and their installation
  // would find Node's default (SIGTERM, SIGINT, SIGHUP… end the process), so vaultrun would die and leave the
  // command running, orphaned. They run from the event loop, so never before the set-up below is complete.
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => forward(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const removeHandlers = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
  let current: Running;
  try {
    current = spawn(options.env);
  } catch (error) {
    removeHandlers();
    throw error;
  }
  let restarting: Promise<void> | undefined;
  let shutdownStatus: number | undefined;
  let stopping = false;

  const sendTo = (running: Running, signal: NodeJS.Signals, group: boolean) => {
    if (running.pid === undefined || running.exited) return;
    try {
      process.kill(group && !interactive ? -running.pid : running.pid, signal);
    } catch {
      // Already gone: its exit is being handled.
    }
  };

  /** Outside a terminal the child leads its own process group: a restart or an exit waits for all of it. */
  const ownGroup = (running: Running): running is Running & { pid: number } =>
    !interactive && running.pid !== undefined;
  const groupLeft = (running: Running): boolean => ownGroup(running) && groupAlive(running.pid);

  /**
   * Stop signal to the group, SIGKILL to the group after the timeout; resolves when the child has exited and
   * (outside a terminal) nothing of its process group runs any more — an `sh -c` wrapper may die at once while
   * the real app, its child, is still stopping or ignores the signal.
   */
  const stop = async (running: Running, reason: string): Promise<void> => {
    if (running.exited && !groupLeft(running)) return;
    log.info('stopping the command', { reason, signal: stopSignal, pid: running.pid });
    const deadline = Date.now() + stopTimeoutMs;
    if (ownGroup(running)) signalGroup(running.pid, stopSignal);
    else sendTo(running, stopSignal, false);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    let outcome = await Promise.race([running.done.then(() => 'exited' as const), killed]);
    clearTimeout(timer);
    if (outcome === 'exited' && ownGroup(running) && !(await waitGroupGone(running.pid, deadline))) {
      outcome = 'timeout';
    }
    if (outcome === 'timeout') {
      log.warn('the command did not stop in time: killing its process group', {
        timeout_ms: stopTimeoutMs,
        pid: running.pid,
      });
      if (ownGroup(running)) signalGroup(running.pid, 'SIGKILL');
      else sendTo(running, 'SIGKILL', false);
      await running.done;
      // SIGKILL cannot be refused: what is left only has to be taken down by the kernel.
      if (ownGroup(running)) await waitGroupGone(running.pid, Date.now() + 5_000);
    }
  };

  const controller: Controller = {
    get pid() {
      return current.pid;
    },
    get starts() {
      return starts;
    },
    signal: (signal) => sendTo(current, signal, false),
    restart: (next, reason) => {
      if (stopping) return Promise.resolve();
      const previous = restarting ?? Promise.resolve();
      restarting = previous.then(async () => {
        if (stopping) return;
        await stop(current, reason);
        if (stopping) return;
        const start = typeof next === 'function' ? await next() : { env: next };
        if (stopping) return;
        current = spawn(start.env);
        log.info('restarted the command', { reason: start.reason ?? reason, pid: current.pid });
      });
      const mine = restarting;
      return mine.finally(() => {
        if (restarting === mine) restarting = undefined;
      });
    },
    shutdown: async (status, reason) => {
      shutdownStatus = status;
      stopping = true;
      await stop(current, reason);
    },
  };

  const forward = (signal: NodeJS.Signals) => {
    // A stop request ends restarts even when the terminal delivered it to the command itself (Ctrl-C).
    if (signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGQUIT') stopping = true;
    if (interactive && TERMINAL_SIGNALS.has(signal)) return;
    sendTo(current, signal, false);
    log.debug('forwarded signal', { signal, pid: current.pid });
  };
  try {
    options.onStart?.(controller);
    let status: number;
    for (;;) {
      const running = current;
      status = await running.done;
      if (restarting) await restarting.catch(() => {});
      if (current !== running && !stopping) continue; // replaced by a restart: supervise the new one
      if (current !== running) status = await current.done; // a restart raced with a stop signal
      break;
    }
    stopping = true; // from here on a restart asked for by a rotation starts nothing
    log.debug('the command exited', { status });
    // The command is gone, but not necessarily all it started (`sh -c 'app; …'` stopped by a forwarded
    // SIGTERM leaves the app running): the rest of its group gets the stop signal, then SIGKILL.
    if (groupLeft(current)) await stop(current, 'the command exited, processes of its group still run');
    await current.output; // the last bytes of its (masked) output are written before vaultrun exits
    if (options.onExit) await options.onExit();
    return shutdownStatus ?? status;
  } finally {
    removeHandlers();
  }
}
