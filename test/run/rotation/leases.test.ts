import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../../src/errors.js';
import type { Lease } from '../../../src/resolve.js';
import {
  cannotBeExtended,
  type LeaseCalls,
  Leases,
  leaseRenewalDelayMs,
  leaseRenewalWaitMs,
  refreshAt,
} from '../../../src/run/rotation/leases.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import { FakeClock, recordingLogger } from '../../support/fake-clock.js';

describe('leaseRenewalDelayMs: at 2/3 of the duration', () => {
  it.each([
    [3600, 2_400_000],
    [30, 20_000],
    [0, 0],
  ])('%i s → %i ms', (duration, expected) => {
    expect(leaseRenewalDelayMs(duration)).toBe(expected);
  });
});

describe('refreshAt: --lease-refresh of the life since issue', () => {
  it.each([
    [0, 100_000, 0.67, 67_000],
    [0, 100_000, 0.5, 50_000],
    [0, 100_000, 0.9, 90_000],
    [10_000, 70_000, 0.5, 40_000], // renewed since: the life counts from the issue, to the new end
    [5_000, 5_000, 0.67, 5_000], // no life at all: at once
  ])('issued %i, ends %i, refresh %d → at %i', (issuedAt, expiresAt, leaseRefresh, expected) => {
    expect(refreshAt({ issuedAt, expiresAt }, leaseRefresh)).toBeCloseTo(expected, 6);
  });
});

describe('cannotBeExtended', () => {
  it.each([
    [{ duration: 3600, renewable: true }, 3600, false],
    [{ duration: 7200, renewable: true }, 3600, false],
    [{ duration: 1800, renewable: true }, 3600, true], // capped by the max TTL
    [{ duration: 3600, renewable: false }, 3600, true],
  ])('%j asked %i → %s', (renewed, increment, expected) => {
    expect(cannotBeExtended(renewed, increment)).toBe(expected);
  });
});

describe('leaseRenewalWaitMs', () => {
  it.each([
    [0, 1_000],
    [1_000, 1_000],
    [60_000, 30_000],
  ])('%i ms left → %i ms', (left, expected) => {
    expect(leaseRenewalWaitMs(left)).toBe(expected);
  });
});

function lease(id: string, durationS: number, renewable: boolean): Lease {
  return { leaseId: `lease-${id}`, readId: `read-${id}`, path: `database/creds/${id}`, durationS, renewable };
}

type Step = { duration: number; renewable: boolean } | VaultrunError;

function leases(
  options: {
    renewals?: Step[];
    revocations?: Array<VaultrunError | undefined>;
    watching?: boolean;
    onLeaseExpiry?: 'keep' | 'stop';
    leaseRefresh?: number;
  } = {},
) {
  const clock = new FakeClock();
  const start = clock.now();
  const { log, lines } = recordingLogger();
  const timers = new Timers(() => {}, clock);
  const events: string[] = [];
  const readAgain: Array<{ reason: string; readIds: string[]; at: number; deadline: number | undefined }> =
    [];
  const renewals = [...(options.renewals ?? [])];
  const revocations = [...(options.revocations ?? [])];
  const calls: LeaseCalls = {
    renew: async (l, increment, waitMs) => {
      events.push(`renew ${l.leaseId} +${increment}s at ${Math.round(clock.now() - start)} wait ${waitMs}`);
      const next = renewals.shift() ?? { duration: increment, renewable: true };
      if (next instanceof VaultrunError) throw next;
      return next;
    },
    revoke: async (l) => {
      events.push(`revoke ${l.leaseId}`);
      const next = revocations.shift();
      if (next) throw next;
    },
  };
  const tracked = new Leases({
    timers,
    log,
    settings: {
      leaseRefresh: options.leaseRefresh ?? 0.67,
      onLeaseExpiry: options.onLeaseExpiry ?? 'keep',
      revoke: true,
    },
    watching: options.watching ?? true,
    connected: () => true,
    calls,
    readAgain: (reason, readIds, deadline) =>
      readAgain.push({ reason, readIds, at: Math.round(clock.now() - start), deadline }),
    stopCommand: async (reason) => {
      events.push(`stop: ${reason}`);
    },
    variablesOf: (readId) => (readId === 'read-db' ? 'DB_USER,DB_PASSWORD' : ''),
  });
  return { clock, start, leases: tracked, events, readAgain, lines };
}

describe('Leases: what happens when a lease nears its end', () => {
  it('a renewable lease is renewed at 2/3 of its duration, asking for its original duration', async () => {
    const l = leases();
    l.leases.track(lease('db', 60, true));
    await l.clock.advance(39_999);
    expect(l.events).toEqual([]);
    await l.clock.advance(1);
    await l.clock.advance(40_000);
    expect(l.events).toEqual([
      'renew lease-db +60s at 40000 wait 10000',
      'renew lease-db +60s at 80000 wait 10000',
    ]);
    expect(l.readAgain).toEqual([]);
  });

  it.each([
    [0.67, 67_000],
    [0.5, 50_000],
    [0.9, 90_000],
  ])(
    'a lease that cannot be renewed is replaced at --lease-refresh=%d of its life (%i ms)',
    async (refresh, at) => {
      const l = leases({ leaseRefresh: refresh });
      l.leases.track(lease('db', 100, false));
      await l.clock.advance(at - 1);
      expect(l.readAgain).toEqual([]);
      await l.clock.advance(1);
      expect(l.readAgain).toEqual([
        {
          reason: `the lease of database/creds/db cannot be extended and ends in ${Math.round((100_000 - at) / 1000)} s`,
          readIds: ['read-db'],
          at,
          deadline: l.start + 100_000,
        },
      ]);
      expect(l.events).toEqual([]);
    },
  );

  it('a renewal capped by the max TTL: replaced at --lease-refresh of the life from issue to the new end', async () => {
    const l = leases({ renewals: [{ duration: 30, renewable: true }] });
    l.leases.track(lease('db', 60, true));
    await l.clock.advance(40_000); // renewed, but only to 70 s after issue
    await l.clock.advance(6_899);
    expect(l.readAgain).toEqual([]);
    await l.clock.advance(1); // 0.67 × 70 s = 46.9 s
    expect(l.readAgain).toEqual([
      {
        reason: 'the lease of database/creds/db cannot be extended and ends in 23 s',
        readIds: ['read-db'],
        at: 46_900,
        deadline: l.start + 70_000,
      },
    ]);
  });

  it('a refused renewal (revoked, expired) has the secret read again at once, before the end', async () => {
    const l = leases({ renewals: [new VaultrunError('PERMISSION_DENIED', 'denied')] });
    l.leases.track(lease('db', 60, true));
    await l.clock.advance(40_000);
    expect(l.readAgain).toEqual([
      {
        reason: 'the lease of database/creds/db could not be renewed',
        readIds: ['read-db'],
        at: 40_000,
        deadline: l.start + 60_000,
      },
    ]);
  });

  it('Vault unreachable: retried, and a lease that expires meanwhile is an error; keep reads it again', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const l = leases({ renewals: Array(10).fill(unreachable) });
    l.leases.track(lease('db', 3, true));
    await l.clock.advance(2_000); // 1 s left: retry in 0.5 s
    await l.clock.advance(500); // 0.5 s left: retry in 0.5 s
    expect(l.readAgain).toEqual([]);
    await l.clock.advance(500); // expired
    expect(l.events).toHaveLength(3);
    expect(
      l.lines().filter((x) => x.msg === 'Vault unreachable: could not renew a lease; retrying'),
    ).toHaveLength(2);
    expect(l.lines().find((x) => x.level === 'error')).toMatchObject({
      msg: 'a lease expired while Vault was unreachable: the credential no longer works',
      path: 'database/creds/db',
      variables: 'DB_USER,DB_PASSWORD',
    });
    expect(l.readAgain).toEqual([
      {
        reason: 'the lease of database/creds/db expired',
        readIds: ['read-db'],
        at: 3_000,
        deadline: undefined,
      },
    ]);
  });

  it('Vault unreachable and --on-lease-expiry=stop: the command is stopped when the lease expires', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const l = leases({ renewals: Array(10).fill(unreachable), onLeaseExpiry: 'stop' });
    l.leases.track(lease('db', 3, true));
    await l.clock.advance(3_000);
    expect(l.events.at(-1)).toBe('stop: a lease expired while Vault was unreachable');
    expect(l.readAgain).toEqual([]);
  });

  it('Vault back before the end: renewed, and the log says so', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const l = leases({ renewals: [unreachable] });
    l.leases.track(lease('db', 60, true));
    await l.clock.advance(40_000 + 6_667);
    expect(l.lines().some((x) => x.msg === 'Vault reachable again: lease renewed')).toBe(true);
    expect(l.readAgain).toEqual([]);
  });

  it('a plain --supervise (not watching) only keeps leases to revoke them', async () => {
    const l = leases({ watching: false });
    l.leases.track(lease('db', 60, true));
    l.leases.track(lease('other', 60, false));
    expect(l.clock.delays()).toEqual([]);
    expect(l.leases.size).toBe(2);
  });

  it('replaced leases stop being renewed, are revoked once retired, and at exit with the others', async () => {
    const l = leases();
    const old = lease('db', 60, true);
    l.leases.track(old);
    l.leases.track(lease('kept', 60, true));
    const fresh = { ...lease('db', 60, true), leaseId: 'lease-db-2' };
    const replaced = l.leases.replace([old, lease('kept', 60, true)], [fresh, lease('kept', 60, true)]);
    expect(replaced).toEqual([old]);
    expect(l.leases.readIds().sort()).toEqual(['read-db', 'read-kept']);
    expect(l.leases.has('lease-db')).toBe(false);
    l.leases.retire(replaced);
    await l.clock.advance(40_000);
    expect(l.events.sort()).toEqual([
      'renew lease-db-2 +60s at 40000 wait 10000',
      'renew lease-kept +60s at 40000 wait 10000',
    ]);
    // Exit before the replaced lease was revoked: revoked with the others.
    l.events.length = 0;
    expect(await l.leases.revokeAll(false)).toBe(false);
    expect(l.events.sort()).toEqual(['revoke lease-db', 'revoke lease-db-2', 'revoke lease-kept']);
  });

  it('revocation refused: a warning, or a debug line when the token revocation covers it; unreachable is reported', async () => {
    const denied = new VaultrunError('PERMISSION_DENIED', 'denied');
    const l = leases({ revocations: [denied, denied] });
    l.leases.track(lease('a', 60, true));
    expect(await l.leases.revokeAll(false)).toBe(false);
    expect(l.lines().find((x) => x.msg === 'could not revoke a lease')).toMatchObject({ level: 'warn' });
    l.leases.track(lease('b', 60, true));
    l.leases.clear();
    l.leases.track(lease('c', 60, true));
    await l.leases.revokeAll(true);
    expect(
      l.lines().find((x) => x.msg === 'could not revoke a lease: it is revoked with the token'),
    ).toMatchObject({
      level: 'debug',
    });
    const down = leases({ revocations: [new VaultrunError('UNREACHABLE', 'Vault unreachable')] });
    down.leases.track(lease('d', 60, true));
    expect(await down.leases.revokeAll(true)).toBe(true);
  });
});
