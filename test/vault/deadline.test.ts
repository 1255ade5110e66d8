import { describe, expect, it } from 'vitest';
import { Deadline, secondsText } from '../../src/vault/deadline.js';

function clock(start = 1000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('Deadline', () => {
  it('counts down on the clock it is given, never below 0, and says how long it ran', () => {
    const c = clock();
    const d = new Deadline(2000, c.now);
    expect(d.remainingMs()).toBe(2000);
    c.advance(1500);
    expect(d.remainingMs()).toBe(500);
    expect(d.elapsedMs()).toBe(1500);
    c.advance(1000);
    expect(d.remainingMs()).toBe(0);
    expect(d.elapsedMs()).toBe(2500);
  });

  it('earliest() picks the one that ends first; undefined is no limit', () => {
    const c = clock();
    const start = new Deadline(2000, c.now);
    c.advance(500);
    const own = new Deadline(2000, c.now);
    expect(Deadline.earliest(own, start)).toBe(start);
    expect(Deadline.earliest(start, own)).toBe(start);
    expect(Deadline.earliest(own, undefined)).toBe(own);
    const short = new Deadline(100, c.now);
    expect(Deadline.earliest(short, start)).toBe(short);
  });
});

describe('secondsText', () => {
  it.each([
    [0, '0.0'],
    [-5, '0.0'],
    [99, '0.0'],
    [2000, '2.0'],
    [2099, '2.0'],
    [2100, '2.1'],
    [31_449, '31.4'],
  ])('%d ms → %s (rounded down: never more than the time spent)', (ms, text) => {
    expect(secondsText(ms)).toBe(text);
  });
});
