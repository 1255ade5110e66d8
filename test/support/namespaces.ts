// Helpers for the tests that run vaultrun the way a container runs its ENTRYPOINT, without a container engine:
// in a fresh PID namespace (`unshare --pid --fork --mount-proc`, so the first process is PID 1, as in a
// container), optionally chrooted into a slim Debian root (scripts/rootfs.sh, scripts/rootfs-exec.sh).
//
// They need root and util-linux's unshare (and tini, debootstrap for some tests): without them the tests FAIL
// with a message saying what is missing — they never skip. CI runs as root and installs them (.ci/run).
//
// Processes are observed from the host: a process in the namespace has a host pid (what /proc here shows) and
// a namespace pid (the last field of NSpid in /proc/PID/status). Signals are sent from the host to host pids,
// as `docker stop` / `docker kill` do (from the parent namespace).
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type RunResult, spawnVaultrun } from './cli.js';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PACKAGE_OF: Record<string, string> = {
  unshare: 'util-linux',
  mount: 'mount',
  tini: 'tini',
  debootstrap: 'debootstrap',
  chroot: 'coreutils',
};

/** Fails (never skips) when not root: PID and mount namespaces need CAP_SYS_ADMIN. */
export function requireRoot(what: string): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      `${what} needs root (it creates PID and mount namespaces with unshare; uid is ${uid}). ` +
        'Run the tests as root, as CI does (bash .ci/run).',
    );
  }
}

/** The absolute path of a system tool; fails with the package to install when it is missing. */
export function requireTool(name: string): string {
  const dirs = [...SYSTEM_PATH.split(delimiter), ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(
    `'${name}' not found on ${SYSTEM_PATH}: apt-get install ${PACKAGE_OF[name] ?? name} (bash .ci/run installs it)`,
  );
}

export interface Spawned {
  child: ChildProcess;
  /** Exit status etc. of the outer process (unshare: PID 1's status, 128+n when signal n killed it). */
  result: Promise<RunResult>;
}

/**
 * Spawns a command (no shell) in its own process group, capturing stdout and stderr; after timeoutMs (a guard
 * against hangs, default 60 s) the group is SIGKILLed and the result rejects.
 */
export function spawnCaptured(
  argv: string[],
  opts: { env: Record<string, string>; cwd?: string; timeoutMs?: number },
): Spawned {
  if (argv.length === 0) throw new Error('empty command');
  // The CLI runner, with this command line instead of vaultrun's (same capture, group kill and clean-up).
  return spawnVaultrun([], { ...opts, bin: argv, stdin: 'ignore' });
}

/**
 * Runs argv as PID 1 of a new PID namespace (with its own /proc), as a container engine runs an ENTRYPOINT.
 * `--kill-child`: if unshare dies, PID 1 gets SIGKILL, and with it the whole namespace.
 */
export function spawnInPidNamespace(
  argv: string[],
  opts: { env: Record<string, string>; cwd?: string; timeoutMs?: number },
): Spawned {
  requireRoot('running a command in a new PID namespace');
  const unshare = requireTool('unshare');
  return spawnCaptured([unshare, '--pid', '--fork', '--mount-proc', '--kill-child', '--', ...argv], opts);
}

export interface Proc {
  /** Host pid. */
  pid: number;
  ppid: number;
  /** R, S, D, Z, T, … (the state field of /proc/PID/stat). */
  state: string;
  comm: string;
  /** The pid inside the innermost PID namespace (last field of NSpid), when readable. */
  nsPid: number | undefined;
}

/** One process from /proc (works for zombies too); undefined when it is gone. */
export function proc(pid: number): Proc | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: it ends at the last ')'.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const [state = '?', ppid = '0'] = stat.slice(close + 2).split(' ');
  let nsPid: number | undefined;
  try {
    const nspid = /^NSpid:\s*(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const last = nspid?.trim().split(/\s+/).pop();
    nsPid = last === undefined ? undefined : Number(last);
  } catch {
    nsPid = undefined;
  }
  return { pid, ppid: Number(ppid), state, comm: stat.slice(open + 1, close), nsPid };
}

/** The process and all its descendants (host view), zombies included. */
export function processTree(root: number): Proc[] {
  const all: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = proc(Number(name));
    if (p) all.push(p);
  }
  const tree: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    const p = all.find((x) => x.pid === pid);
    if (p) tree.push(p);
    for (const c of all) if (c.ppid === pid) queue.push(c.pid);
  }
  return tree;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until `get` returns a value other than undefined. The timeout (generous) only turns a hang into a
 * failure naming what was awaited; it is not a measurement.
 */
export async function waitFor<T>(get: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The host pid of PID 1 of the namespace an unshare process created (its only child). */
export function namespaceInit(unsharePid: number): Promise<number> {
  return waitFor(() => {
    const child = processTree(unsharePid).find((p) => p.ppid === unsharePid);
    // Until unshare's child has exec'd PID 1's program it is still "unshare".
    return child && child.comm !== 'unshare' ? child.pid : undefined;
  }, `PID 1 of the namespace created by unshare (pid ${unsharePid})`);
}
