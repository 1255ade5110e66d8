import { describe, expect, it } from 'vitest';
import type { ReadRequest } from '../../../src/refs/plan.js';
import {
  rotatesOnSchedule,
  Scheduled,
  STATIC_MARGIN_MS,
  scheduledChangeMs,
} from '../../../src/run/rotation/scheduled.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import { pollableReads } from '../../../src/run/rotation/watch.js';
import type { SecretRead } from '../../../src/vault/kv.js';
import { FakeClock, recordingLogger } from '../../support/fake-clock.js';

function secret(data: Record<string, unknown>, leaseId = ''): SecretRead {
  return { data, leaseId, leaseDuration: leaseId ? 60 : 0, renewable: false };
}

const staticCreds = (ttl: number, rotated = '2026-01-01T00:00:00Z') =>
  secret({
    username: 'app',
    password: 'pw',
    ttl,
    rotation_period: 10,
    last_vault_rotation: rotated,
  });

describe('scheduledChangeMs: a static role is read again ttl + margin after it was read', () => {
  it.each([
    ['static role, 9 s to go', staticCreds(9), 9_000 + STATIC_MARGIN_MS],
    ['static role due now (Vault rotates late)', staticCreds(0), STATIC_MARGIN_MS],
    ['static role, negative ttl', staticCreds(-3), STATIC_MARGIN_MS],
    ['KV secret with a field named ttl', secret({ ttl: 5, password: 'x' }), undefined],
    ['ttl as a string', secret({ ttl: '5', rotation_period: 10, last_vault_rotation: 'x' }), undefined],
    [
      'with a lease (its own clock)',
      secret({ ttl: 5, rotation_period: 10, last_vault_rotation: 'x' }, 'l1'),
      undefined,
    ],
    ['dynamic creds', secret({ username: 'u', password: 'p' }, 'database/creds/app/1'), undefined],
  ])('%s', (_name, s, expected) => {
    expect(scheduledChangeMs(s)).toBe(expected);
  });
});

const reads: ReadRequest[] = [
  { id: 'database/static-creds/app', path: 'database/static-creds/app', variables: ['DB_PASSWORD'] },
  { id: 'secret/kv', path: 'secret/kv', variables: ['X'] },
];

describe('static roles are scheduled, not polled', () => {
  it('pollableReads leaves them out; rotatesOnSchedule sees them', () => {
    const secrets = new Map([
      ['database/static-creds/app', staticCreds(9)],
      ['secret/kv', secret({ a: 'b' })],
    ]);
    expect(pollableReads(reads, secrets).map((r) => r.id)).toEqual(['secret/kv']);
    expect(rotatesOnSchedule({ plan: { reads }, reads: secrets })).toBe(true);
    expect(rotatesOnSchedule({ plan: { reads }, reads: new Map([['secret/kv', secret({ a: 'b' })]]) })).toBe(
      false,
    );
  });
});

describe('Scheduled', () => {
  function setup(first: SecretRead) {
    const clock = new FakeClock();
    const timers = new Timers((e) => {
      throw e;
    }, clock);
    const secrets = new Map<string, SecretRead>([['database/static-creds/app', first]]);
    const calls: Array<{ at: number; reason: string; ids: string[]; deadline: number }> = [];
    const scheduled = new Scheduled({
      timers,
      log: recordingLogger().log,
      current: () => ({ plan: { reads }, reads: secrets }),
      readAgain: (reason, ids, deadline) => calls.push({ at: clock.now(), reason, ids, deadline }),
    });
    return { clock, secrets, calls, scheduled, start: clock.now() };
  }

  it('reads again exactly at ttl + margin, with a deadline of now (no debounce, no splay)', async () => {
    const { clock, calls, scheduled, start } = setup(staticCreds(9));
    scheduled.arm();
    expect(clock.delays()).toEqual([9_000 + STATIC_MARGIN_MS]);
    await clock.advance(9_000 + STATIC_MARGIN_MS - 1);
    expect(calls).toEqual([]);
    await clock.advance(1);
    expect(calls).toEqual([
      {
        at: start + 9_000 + STATIC_MARGIN_MS,
        reason: 'database/static-creds/app rotates now',
        ids: ['database/static-creds/app'],
        deadline: start + 9_000 + STATIC_MARGIN_MS,
      },
    ]);
  });

  it('re-arming with the same secret keeps the timer; a new read (not rotated yet: ttl 0) retries after the margin; a rotated one waits a period', async () => {
    const { clock, secrets, calls, scheduled } = setup(staticCreds(2));
    scheduled.arm();
    scheduled.arm();
    expect(clock.delays()).toEqual([2_000 + STATIC_MARGIN_MS]);
    await clock.advance(2_000 + STATIC_MARGIN_MS);
    expect(calls).toHaveLength(1);
    secrets.set('database/static-creds/app', staticCreds(0)); // Vault has not rotated yet
    scheduled.arm();
    expect(clock.delays()).toEqual([STATIC_MARGIN_MS]);
    await clock.advance(STATIC_MARGIN_MS);
    expect(calls).toHaveLength(2);
    secrets.set('database/static-creds/app', staticCreds(10, '2026-01-01T00:00:10Z'));
    scheduled.arm();
    expect(clock.delays()).toEqual([10_000 + STATIC_MARGIN_MS]);
  });

  it('a read no longer in the plan loses its timer', () => {
    const { clock, secrets, scheduled } = setup(staticCreds(5));
    scheduled.arm();
    expect(scheduled.size).toBe(1);
    secrets.clear();
    scheduled.arm();
    expect(scheduled.size).toBe(0);
    expect(clock.delays()).toEqual([]);
  });
});
