import type { Logger } from '../../log.js';
import type { Rendered } from '../../resolve.js';
import type { Timer, Timers } from './timers.js';

/**
 * A change: what the token, the leases and the watches notice is collected here, and acted on once, after
 * --debounce plus a random --splay, together with every change noticed meanwhile — one callback, one
 * re-resolution at a time, in order. When a lease's end is what makes the change, the action comes at the
 * latest halfway to that end, whatever the debounce and splay say, so that the command switches while the old
 * credential still works.
 */

/** The changes noticed since the last action. */
export interface Change {
  reasons: string[];
  /** Reads (plan read ids) to fetch again; the others are reused. */
  readIds: Set<string>;
  /** The env files or NAME_FILE sources changed: the environment is prepared again from them. */
  reprepare: boolean;
}

export interface ChangeDelay {
  debounceMs: number;
  splayMs: number;
  /** In [0, 1): where in the splay this action lands. */
  random: number;
  now: number;
  /** A lease's end (ms since the epoch), if that is what changes. */
  deadline?: number | undefined;
}

/** How long after noticing a change the action comes: debounce plus splay, at most half the time left. Pure. */
export function changeDelayMs({ debounceMs, splayMs, random, now, deadline }: ChangeDelay): number {
  const delay = debounceMs + random * splayMs;
  return deadline === undefined ? delay : Math.min(delay, Math.max(0, (deadline - now) / 2));
}

/** Same file content: texts equal, or bytes equal byte for byte (a Uint8Array is never `===` another). Pure. */
export function sameContent(a: string | Uint8Array | undefined, b: string | Uint8Array | undefined): boolean {
  if (typeof a === 'string' || typeof b === 'string' || a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Names of the variables whose value differs (never the values). Pure. */
export function changedVariables(a: Rendered, b: Rendered): string[] {
  const names = new Set<string>();
  for (const side of [a.env, b.env])
    for (const k of Object.keys(side)) if (a.env[k] !== b.env[k]) names.add(k);
  for (const side of [a.fileValues, b.fileValues]) {
    for (const k of Object.keys(side)) if (!sameContent(a.fileValues[k], b.fileValues[k])) names.add(k);
  }
  return [...names].sort();
}

/**
 * --pin: a pinned variable keeps the value the running command has (`current`) whatever `next` says — also when
 * it is gone from `next` —; only a variable new to the command takes its value from `next`. `held`: the pinned
 * variables whose value in `next` differs (warned about). Pure.
 */
export function holdPinned(
  current: Rendered,
  next: Rendered,
  pin: ReadonlySet<string>,
): { rendered: Rendered; held: string[] } {
  const env = { ...next.env };
  const fileValues = { ...next.fileValues };
  const held: string[] = [];
  for (const name of [...pin].sort()) {
    for (const [from, to] of [
      [current.env, env],
      [current.fileValues, fileValues],
    ] as const) {
      if (!Object.hasOwn(from, name)) continue;
      const value = from[name] as string;
      if (to[name] !== value) held.push(name);
      to[name] = value;
    }
  }
  return { rendered: { env, fileValues }, held };
}

/**
 * --pin: the pinned names that hold no reference (a typo, most likely: the variable meant is then not
 * protected). `referenced`: the variables of the plan and those rendered (imports included). Warned about, not
 * refused: an image may set VAULTRUN_PIN for deployments where the variable is a plain value. Pure.
 */
export function unreferencedPins(pin: ReadonlySet<string>, referenced: Iterable<string>): string[] {
  const known = new Set(referenced);
  return [...pin].filter((name) => !known.has(name)).sort();
}

export interface PendingChangeOptions {
  timers: Timers;
  log: Logger;
  debounceMs: number;
  splayMs: number;
  random?: () => number;
  /** Acts on the changes collected: one call at a time, in order. */
  apply: (change: Change) => Promise<void>;
}

export class PendingChange {
  private pending: Change | undefined;
  private timer: Timer | undefined;
  /** When the timer fires (ms since the epoch). */
  private dueAt = 0;
  private running: Promise<void> | undefined;

  constructor(private readonly options: PendingChangeOptions) {}

  /** Notes a change; see the top of this file for when the action comes. */
  notice(reason: string, readIds: readonly string[], reprepare: boolean, deadline?: number): void {
    const { timers, log } = this.options;
    if (timers.stopped) return;
    this.pending ??= { reasons: [], readIds: new Set(), reprepare: false };
    // Logged once per distinct reason while it waits: a poll that sees the same version again says nothing.
    if (!this.pending.reasons.includes(reason)) {
      this.pending.reasons.push(reason);
      log.debug('change noticed', { reason });
    }
    for (const id of readIds) this.pending.readIds.add(id);
    this.pending.reprepare ||= reprepare;
    const now = timers.now();
    const delay = changeDelayMs({
      debounceMs: this.options.debounceMs,
      splayMs: this.options.splayMs,
      random: (this.options.random ?? Math.random)(),
      now,
      deadline,
    });
    if (this.timer) {
      if (this.dueAt <= now + delay) return;
      timers.cancel(this.timer); // a lease ends sooner than the pending action would come
    }
    this.dueAt = now + delay;
    this.timer = timers.later(delay, async () => {
      this.timer = undefined;
      // One action at a time, in order: a change noticed while one runs waits for it. The action takes every
      // change noticed until it starts.
      const run = (this.running ?? Promise.resolve()).then(() => {
        const change = this.pending;
        this.pending = undefined;
        return change ? this.options.apply(change) : undefined;
      });
      this.running = run;
      try {
        await run;
      } finally {
        if (this.running === run) this.running = undefined;
      }
    });
  }

  /**
   * Takes the changes noticed and not acted on yet, now, instead of after their delay (their timer is
   * cancelled): a restart takes those noticed while the old command was stopping into the start that follows.
   * Undefined when nothing is pending.
   */
  take(): Change | undefined {
    const change = this.pending;
    this.pending = undefined;
    this.options.timers.cancel(this.timer);
    this.timer = undefined;
    return change;
  }

  /** The action under way, if any (to let it finish on exit). */
  get applying(): Promise<void> | undefined {
    return this.running;
  }
}
