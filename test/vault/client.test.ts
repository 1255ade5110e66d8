import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffMs, cutByDeadline, retryAfterMs } from '../../src/vault/client.js';
import { TransportError } from '../../src/vault/transport.js';

describe('retryAfterMs', () => {
  const NOW = Date.parse('2015-10-21T07:28:00Z');

  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ['', undefined],
    ['   ', undefined],
    // Seconds.
    ['0', 0],
    ['5', 5_000],
    [' 7 ', 7_000],
    ['120', 120_000],
    // HTTP dates (IMF-fixdate and the obsolete RFC 850 form), relative to now; past dates mean now.
    ['Wed, 21 Oct 2015 07:28:30 GMT', 30_000],
    ['Wed, 21 Oct 2015 07:30:00 GMT', 120_000],
    ['Wednesday, 21-Oct-15 07:28:30 GMT', 30_000],
    ['Wed, 21 Oct 2015 07:28:00 GMT', 0],
    ['Tue, 20 Oct 2015 07:28:00 GMT', 0],
    // Anything else is ignored (the caller falls back to its own backoff).
    ['soon', undefined],
    ['garbage', undefined],
    ['5s', undefined],
    ['1.5', undefined],
    ['-1', undefined],
    ['1e3', undefined],
    ['0x10', undefined],
    ['later 5', undefined],
    ['abc 2', undefined],
    ['1 2', undefined],
  ])('%j → %s', (header, expected) => {
    expect(retryAfterMs(header, NOW)).toBe(expected);
  });

  it('uses the current time by default', () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = retryAfterMs(inAMinute) as number;
    // toUTCString drops milliseconds: up to a second less, and a little time passes.
    expect(ms).toBeGreaterThan(58_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });
});

describe('backoffMs', () => {
  it.each<[number, number, number]>([
    [0, 0, 50],
    [0, 0.5, 100],
    [0, 0.999, 199],
    [1, 0.5, 200],
    [2, 0.5, 400],
    [3, 0.5, 800],
    [4, 0.5, 1_600],
    [4, 0.999, 3_196],
    [5, 0.999, 4_995],
    [5, 0.5, 2_500],
    [20, 0.5, 2_500],
    [2000, 0.5, 2_500],
    [10, 0, 50],
    [1, 0.1, 50],
  ])('attempt %i with random %f → %i ms', (attempt, random, expected) => {
    expect(backoffMs(attempt, () => random)).toBe(expected);
  });

  it('stays between 50 ms and the capped exponential step, as a whole number (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const ms = backoffMs(attempt, () => r);
          const step = Math.min(5_000, 200 * 2 ** attempt);
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(50);
          expect(ms).toBeLessThan(step);
        },
      ),
    );
  });

  it('grows with the attempt for the same random draw, until the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, () => 0.75));
    expect(delays).toEqual([150, 300, 600, 1_200, 2_400, 3_750, 3_750]);
  });

  it('uses Math.random by default', () => {
    for (let i = 0; i < 50; i++) {
      const ms = backoffMs(3);
      expect(ms).toBeGreaterThanOrEqual(50);
      expect(ms).toBeLessThan(1_600);
    }
  });
});

describe('cutByDeadline (attempt, its timeout, the client timeout, error)', () => {
  const timedOut = new TransportError('ETIMEDOUT', 'no complete answer within 300 ms');
  const noTimeLeft = new TransportError('ETIMEDOUT', 'no time left to send the request');
  it.each<[string, number, number | undefined, unknown, boolean]>([
    ['a retry with less than the client timeout, timed out', 2, 300, timedOut, true],
    ['a retry that found no time left (sent nothing)', 3, 0, noTimeLeft, true],
    ['a first attempt: nothing before it to report', 0, 300, timedOut, false],
    ['a first attempt that found no time left', 0, 0, noTimeLeft, false],
    ['a retry with the whole client timeout: Vault did not answer', 2, 60_000, timedOut, false],
    ['a retry that was never given a timeout', 2, undefined, timedOut, false],
    [
      'a refused connection is a reason of its own',
      2,
      300,
      new TransportError('ECONNREFUSED', 'refused'),
      false,
    ],
    ['an error that is not the transport', 2, 300, new Error('ETIMEDOUT'), false],
  ])('%s → %s', (_what, attempt, attemptTimeout, error, expected) => {
    expect(cutByDeadline(attempt, attemptTimeout, 60_000, error)).toBe(expected);
  });
});
