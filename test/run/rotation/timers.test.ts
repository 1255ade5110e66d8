import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, Timers, timerDelayMs, unreachableRetryMs } from '../../../src/run/rotation/timers.js';
import { FakeClock } from '../../support/fake-clock.js';

function timers() {
  const clock = new FakeClock();
  const errors: unknown[] = [];
  return { clock, errors, timers: new Timers((error) => errors.push(error), clock) };
}

describe('timerDelayMs', () => {
  it.each([
    [-5_000, 0],
    [0, 0],
    [1_500, 1_500],
    [MAX_TIMER_MS, MAX_TIMER_MS],
    [MAX_TIMER_MS + 1, MAX_TIMER_MS],
    [30 * 24 * 3600 * 1000, MAX_TIMER_MS], // a 30-day lease's 2/3 would overflow Node's timer
  ])('%i ms → %i ms', (ms, expected) => {
    expect(timerDelayMs(ms)).toBe(expected);
  });
});

describe('unreachableRetryMs', () => {
  it.each([
    [0, 500],
    [900, 500],
    [3_000, 1_000],
    [24_000, 8_000],
    [30_000, 10_000],
    [3_600_000, 10_000],
  ])('%i ms left → retry in %i ms', (left, expected) => {
    expect(unreachableRetryMs(left)).toBe(expected);
  });
});

describe('Timers', () => {
  it('calls back after the delay, not before', async () => {
    const { clock, timers: t } = timers();
    const calls: number[] = [];
    t.later(1_000, () => {
      calls.push(clock.now());
    });
    await clock.advance(999);
    expect(calls).toEqual([]);
    await clock.advance(1);
    expect(calls).toHaveLength(1);
    expect(t.size).toBe(0);
  });

  it('clamps a delay beyond the maximum, and a past one to now', () => {
    const { clock, timers: t } = timers();
    t.later(MAX_TIMER_MS * 3, () => {});
    t.later(-10, () => {});
    expect(clock.delays()).toEqual([0, MAX_TIMER_MS]);
  });

  it('cancel() and stop() keep callbacks from running, also those scheduled after stop()', async () => {
    const { clock, timers: t } = timers();
    const calls: string[] = [];
    const a = t.later(10, () => {
      calls.push('a');
    });
    t.later(20, () => {
      calls.push('b');
    });
    t.cancel(a);
    t.cancel(undefined);
    expect(t.size).toBe(1);
    t.stop();
    expect(t.stopped).toBe(true);
    expect(clock.delays()).toEqual([]);
    t.later(5, () => {
      calls.push('c');
    });
    await clock.advance(100);
    expect(calls).toEqual([]);
  });

  it('reports a callback that throws or rejects, instead of throwing into the event loop', async () => {
    const { clock, errors, timers: t } = timers();
    t.later(1, () => {
      throw new Error('sync');
    });
    t.later(2, async () => {
      throw new Error('async');
    });
    await clock.advance(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync', 'async']);
  });
});
