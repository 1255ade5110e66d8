import { VaultrunError } from '../errors.js';

/**
 * A lease as an answer states it: its id ("" for none), its duration in seconds, whether it can be renewed (the
 * names of a SecretRead's lease fields, kv.ts).
 */
export interface LeaseTerms {
  leaseId: string;
  leaseDuration: number;
  renewable: boolean;
}

/**
 * Pure: the lease fields of an answer from Vault — a read, a lease renewal, an issuance, or the `auth` block of a
 * token — checked. An absent field (or null) means no lease: "", 0, false. A field of another type, or a
 * duration that is not a finite number ≥ 0, makes the answer malformed: an error (VAULT_ERROR, exit 76 at a
 * start), never a NaN or negative timer. Node fires such a timer at once, so a renewal scheduled on it would be
 * sent again and again — a request storm a broken or hostile server could start. The value itself is never
 * repeated in the message.
 */
export function leaseTerms(block: unknown, what: string): LeaseTerms {
  const b = (typeof block === 'object' && block !== null ? block : {}) as Record<string, unknown>;
  const malformed = (field: string, expected: string) =>
    new VaultrunError('VAULT_ERROR', `the answer to ${what} has a malformed ${field} (not ${expected})`, {
      hint: 'is VAULT_ADDR a Vault, and nothing in between rewriting its answers?',
    });
  const { lease_id: id, lease_duration: duration, renewable } = b;
  if (id != null && typeof id !== 'string') throw malformed('lease_id', 'a string');
  if (duration != null && (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0)) {
    throw malformed('lease_duration', 'a number of seconds ≥ 0');
  }
  if (renewable != null && typeof renewable !== 'boolean') throw malformed('renewable', 'true or false');
  return {
    leaseId: (id as string | null | undefined) ?? '',
    leaseDuration: (duration as number | null | undefined) ?? 0,
    renewable: (renewable as boolean | null | undefined) ?? false,
  };
}
