/**
 * A time budget on the monotonic clock (performance.now: a changed wall clock neither stretches nor cuts it).
 * A start has one (`--wait`) for everything it asks Vault; each request's retries and timeouts are bounded by
 * what is left of it, and a message about it says the time really spent.
 */
export class Deadline {
  readonly budgetMs: number;
  readonly startedAt: number;
  readonly at: number;
  private readonly now: () => number;

  constructor(budgetMs: number, now: () => number = () => performance.now()) {
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
