/**
 * The timers a rotation schedules on. Every module of run/rotation/ waits through a Timers, never through
 * setTimeout or Date.now directly, so that tests drive the schedule with a fake Clock instead of waiting.
 */

/** The longest delay Node's setTimeout accepts (about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A scheduled callback, to cancel. */
export type Timer = object;

/** Time and timeouts: the system's, or a test's fake. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** The delay a timer really waits: a past moment is now, beyond MAX_TIMER_MS is clamped to it. Pure. */
export function timerDelayMs(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_MS));
}

/**
 * While Vault is unreachable, a renewal (of our token or of a lease) is tried again after a third of the time
 * left before it expires, at least every 10 s and at most every 0.5 s. Pure.
 */
export function unreachableRetryMs(leftMs: number): number {
  return Math.min(10_000, Math.max(500, leftMs / 3));
}

export class Timers {
  private readonly scheduled = new Set<Timer>();
  private isStopped = false;

  /** `onError`: a callback that failed (its error is reported, never thrown into the event loop). */
  constructor(
    private readonly onError: (error: unknown) => void,
    readonly clock: Clock = systemClock,
  ) {}

  now(): number {
    return this.clock.now();
  }

  /** Calls `fn` after `ms` (clamped, see timerDelayMs), unless stop() came first. */
  later(ms: number, fn: () => Promise<void> | void): Timer {
    const timer = this.clock.setTimeout(() => {
      this.scheduled.delete(timer);
      if (this.isStopped) return;
      Promise.resolve()
        .then(fn)
        .catch((error: unknown) => this.onError(error));
    }, timerDelayMs(ms));
    this.scheduled.add(timer);
    return timer;
  }

  cancel(timer: Timer | undefined): void {
    if (!timer) return;
    this.clock.clearTimeout(timer);
    this.scheduled.delete(timer);
  }

  /** Cancels every timer; none fires from now on. */
  stop(): void {
    this.isStopped = true;
    for (const timer of this.scheduled) this.clock.clearTimeout(timer);
    this.scheduled.clear();
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  /** Timers scheduled and not fired yet. */
  get size(): number {
    return this.scheduled.size;
  }
}
