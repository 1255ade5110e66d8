import { spawn } from 'node:child_process';
import type { Logger, Masker } from '../../log.js';
import { pumpMasked } from '../mask.js';
import { exitStatus } from '../signals.js';

/**
 * --change-hook: a command run on each change, before the --on-change action. It gets the command's new
 * environment (the secrets included: it is the command's environment, with its secret files already
 * rewritten) plus VAULTRUN_CHANGED, the names of the changed variables (never their values), comma-separated.
 * It runs as the command does (--user), its output goes to vaultrun's stderr (masked under --mask), and it
 * gets --stop-timeout to finish: then it is killed. Its exit status is logged; a failed hook does not stop the
 * action.
 */

/** Pure: a single word is run as it is (no shell needed); anything else is a line for /bin/sh -c. */
export function hookArgv(command: string): string[] {
  const line = command.trim();
  return /^[^\s"'`$;&|<>()\\*?~#]+$/.test(line) ? [line] : ['/bin/sh', '-c', line];
}

/** Pure: the hook's environment: the command's, plus VAULTRUN_CHANGED (names only). */
export function hookEnv(
  env: Readonly<Record<string, string>>,
  changed: readonly string[],
): Record<string, string> {
  return { ...env, VAULTRUN_CHANGED: changed.join(',') };
}

export interface HookOptions {
  command: string;
  env: Readonly<Record<string, string>>;
  changed: readonly string[];
  log: Logger;
  timeoutMs: number;
  uid?: number;
  gid?: number;
  mask?: Masker;
}

/** Runs the hook; resolves with its exit status (126/127 when it could not run, 128+n when killed). */
export function runHook(options: HookOptions): Promise<number> {
  const { log } = options;
  const [file = '', ...args] = hookArgv(options.command);
  const { mask } = options;
  return new Promise<number>((resolve) => {
    const child = spawn(file, args, {
      env: hookEnv(options.env, options.changed),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    const values = () => (mask ? mask.list() : []);
    const output = Promise.all([
      child.stdout ? pumpMasked(child.stdout, process.stderr, values) : undefined,
      child.stderr ? pumpMasked(child.stderr, process.stderr, values) : undefined,
    ]);
    const timer = setTimeout(() => {
      log.warn('the change hook did not finish in time: killing it', { timeout_ms: options.timeoutMs });
      child.kill('SIGKILL');
    }, options.timeoutMs);
    let settled = false;
    const done = (status: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void output.then(() => resolve(status));
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      log.error('the change hook could not be started', { code: error.code });
      done(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => done(exitStatus(code, signal)));
  });
}
