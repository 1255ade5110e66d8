import { createLogger, type Logger } from '../../src/log.js';
import type { Clock, Timer } from '../../src/run/rotation/timers.js';

/**
 * A fake Clock for the rotation's unit tests: time moves only when a test calls advance(), which fires the
 * timers due on the way, in order, and lets the promise chains they start run to their end. No real waiting.
 */
export class FakeClock implements Clock {
  private time: number;
  private queue: Array<{ at: number; order: number; fn: () => void; handle: Timer }> = [];
  private order = 0;

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const handle = {};
    this.queue.push({ at: this.time + ms, order: this.order++, fn, handle });
    return handle;
  }

  clearTimeout(timer: Timer): void {
    this.queue = this.queue.filter((t) => t.handle !== timer);
  }

  /** The delays, from now, of the timers not fired yet, soonest first. */
  delays(): number[] {
    return this.queue.map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer due meanwhile (and those they schedule) in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const due = this.queue.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (!due) break;
      this.queue = this.queue.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
      await settle();
    }
    this.time = end;
  }
}

/** Lets every promise chain started so far run (microtasks drain before a macrotask). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A debug logger that keeps its JSON lines, to assert what was logged. */
export function recordingLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', write: (line) => lines.push(line) });
  return { log, lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** `random` that returns the given values in turn (the last one repeatedly). */
export function randomSequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}
