/**
 * Milliseconds on the monotonic clock (a changed wall clock neither stretches nor cuts what it measures).
 * process.hrtime, not performance.now: the first use of the global `performance` loads Node's perf_hooks
 * modules, about a millisecond of every start (docs/performance.md).
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1000 + ns / 1e6;
}

/**
 * A time budget on the monotonic clock (monotonicMs).
 * A start has one (`--wait`) for everything it asks Vault; each request's retries and timeouts are bounded by
 * what is left of it, and a message about it says the time really spent.
 */
export class Deadline {
  readonly budgetMs: number;
  readonly startedAt: number;
  readonly at: number;
  private readonly now: () => number;

  constructor(budgetMs: number, now: () => number = monotonicMs) {
    this.budgetMs = budgetMs;
    this.now = now;
    this.startedAt = now();
    this.at = this.startedAt + budgetMs;
  }

  remainingMs(): number {
    return Math.max(0, this.at - this.now());
  }

  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  /** The one that ends first. */
  static earliest(a: Deadline, b: Deadline | undefined): Deadline {
    return b !== undefined && b.at < a.at ? b : a;
  }
}

/** "2.0", "31.4": seconds with one decimal, rounded down (never more than the time really spent). */
export function secondsText(ms: number): string {
  return (Math.floor(Math.max(0, ms) / 100) / 10).toFixed(1);
}
