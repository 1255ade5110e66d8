import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { leaseTerms } from '../../src/vault/lease-terms.js';

// What a broken or hostile server may put in the lease fields of an answer. A NaN or negative duration would
// become a timer Node fires at once — a renewal sent again and again — so anything but a finite number ≥ 0 is
// refused, and the value is never repeated in the message.
describe('leaseTerms: the lease fields of an answer, checked', () => {
  it.each([
    [
      'a dynamic secret',
      { lease_id: 'database/creds/app/x1', lease_duration: 3600, renewable: true },
      ['database/creds/app/x1', 3600, true],
    ],
    ['KV (no lease)', { lease_id: '', lease_duration: 0, renewable: false }, ['', 0, false]],
    ['fields left out', {}, ['', 0, false]],
    ['null fields', { lease_id: null, lease_duration: null, renewable: null }, ['', 0, false]],
    ['no block at all', undefined, ['', 0, false]],
    ['a block that is not an object', 'text', ['', 0, false]],
    ['a fractional duration', { lease_duration: 0.5 }, ['', 0.5, false]],
    ['a duration beyond any timer (clamped by the timers)', { lease_duration: 1e300 }, ['', 1e300, false]],
  ])('%s', (_what, block, [leaseId, leaseDuration, renewable]) => {
    expect(leaseTerms(block, 'reading x')).toEqual({ leaseId, leaseDuration, renewable });
  });

  it.each([
    ['lease_duration', { lease_duration: 'soon-7x9' }, 'a number of seconds ≥ 0'],
    ['lease_duration', { lease_duration: -5 }, 'a number of seconds ≥ 0'],
    ['lease_duration', { lease_duration: [60] }, 'a number of seconds ≥ 0'],
    ['lease_id', { lease_id: 42 }, 'a string'],
    ['renewable', { renewable: 'yes-7x9' }, 'true or false'],
  ])(
    'a malformed %s: VAULT_ERROR naming the request and the field, not the value',
    (field, block, expected) => {
      let caught: unknown;
      try {
        leaseTerms(block, 'renewing the lease of database/creds/app');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(VaultrunError);
      const error = caught as VaultrunError;
      expect(error.code).toBe('VAULT_ERROR');
      expect(error.message).toBe(
        `the answer to renewing the lease of database/creds/app has a malformed ${field} (not ${expected})`,
      );
      expect(error.message).not.toContain('7x9');
    },
  );
});
