// Helpers for the rotation tests (--watch): run vaultrun resident around an app, follow its JSON log lines as
// they come, follow the app's event log (test/fixtures/rotation-app.mjs, pg-app.mjs), and ask /proc whether a
// process still runs. Every wait polls a condition with a generous timeout (only to turn a hang into a failure
// that shows what was there): no assertion depends on how fast anything is.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { type RunOptions, type RunResult, spawnVaultrun } from './cli.js';
import { REPO_ROOT } from './openbao.js';

export const ROTATION_APP = join(REPO_ROOT, 'test/fixtures/rotation-app.mjs');
export const PG_APP = join(REPO_ROOT, 'test/fixtures/pg-app.mjs');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One line of vaultrun's JSON log. */
export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface Resident {
  child: ChildProcess;
  pid: number;
  result: Promise<RunResult>;
  /** Resolves when vaultrun itself has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** vaultrun's stderr so far. */
  stderr(): string;
  /** vaultrun's JSON log lines so far (other lines are skipped). */
  logs(): LogLine[];
  /** Waits until some log line satisfies `match`; returns it. */
  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Log lines whose message contains `text`. */
  count(text: string): number;
}

const appLogs = new Set<string>();

/**
 * After each test file: apps that a failed test left running (vaultrun killed by a timeout leaves its child,
 * which leads its own process group) are killed, with their groups.
 */
if (process.env.VITEST) {
  afterAll(() => {
    for (const file of appLogs) {
      for (const e of appEvents(file).filter((ev) => ev.event === 'start')) {
        for (const target of [-e.pid, e.pid, ...(e.ppid ? [-e.ppid] : [])]) {
          try {
            if (running(Math.abs(target))) process.kill(target, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    appLogs.clear();
  });
}

/**
 * Starts vaultrun (JSON logs) and follows its stderr. `opts.env.APP_LOG`, when set, names the app's event log:
 * apps still running after the test file are killed.
 */
export function startResident(args: string[], opts: RunOptions): Resident {
  if (opts.env?.APP_LOG) appLogs.add(opts.env.APP_LOG);
  const { child, result } = spawnVaultrun(['--log-format', 'json', ...args], {
    timeoutMs: 120_000,
    ...opts,
  });
  let stderr = '';
  child.stderr?.on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });
  const logs = (): LogLine[] =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      });
  return {
    child,
    pid: child.pid as number,
    result,
    exited,
    stderr: () => stderr,
    logs,
    count: (text) => logs().filter((l) => l.msg.includes(text)).length,
    async waitForLog(match, what, timeoutMs = 40_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs().find(match);
        if (hit) return hit;
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for vaultrun to log ${what}; stderr:\n${stderr.slice(-6000)}`);
        }
        await sleep(25);
      }
    },
  };
}

/** One event of the app's log. */
export interface AppEvent {
  event: string;
  pid: number;
  t: number;
  ppid?: number;
  uid?: number;
  gid?: number;
  groups?: number[];
  vars?: Record<string, string>;
  files?: Record<
    string,
    {
      path: string;
      content?: string;
      ino?: number;
      mode?: number;
      uid?: number;
      gid?: number;
      error?: string;
    }
  >;
  content?: string;
  user?: string;
  password?: string;
}

export function appEvents(file: string): AppEvent[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AppEvent);
}

/** The event names one process of the app logged, in order. */
export function eventsOf(file: string, pid: number | undefined): string[] {
  return appEvents(file)
    .filter((e) => e.pid === pid)
    .map((e) => e.event);
}

/** A resident vaultrun that notices changes fast: polling every second, 100 ms debounce, debug log. */
export const WATCH_FAST = ['--watch', '--poll-interval', '1s', '--debounce', '100ms', '--log-level', 'debug'];

export function starts(file: string): AppEvent[] {
  return appEvents(file).filter((e) => e.event === 'start');
}

/** Waits until the app's events satisfy `done`; returns them. */
export async function waitForEvents(
  file: string,
  done: (events: AppEvent[]) => boolean,
  what: string,
  timeoutMs = 40_000,
): Promise<AppEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = appEvents(file);
    if (done(events)) {
      // What vaultrun wrote to its stderr before the app acted is in the pipe already, but this process may not
      // have read it yet (a timer can run before the I/O of the same turn): two turns of the event loop, each
      // with its I/O poll, before the caller looks at vaultrun's log lines.
      for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
      return events;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; app events:\n${JSON.stringify(events, null, 1).slice(-6000)}`,
      );
    }
    await sleep(25);
  }
}

/** Waits for the n-th start of the app (1-based) and returns it. */
export async function waitForStart(file: string, n: number, timeoutMs = 40_000): Promise<AppEvent> {
  const events = await waitForEvents(
    file,
    (es) => es.filter((e) => e.event === 'start').length >= n,
    `start #${n} of the app`,
    timeoutMs,
  );
  return events.filter((e) => e.event === 'start')[n - 1] as AppEvent;
}

/** Whether a process runs: it exists in /proc and is not a zombie (an unreaped zombie runs no code). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Waits until the process no longer runs. */
export async function waitGone(pid: number, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (running(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still runs after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Waits until `check` resolves to true (polling). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 40_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}
