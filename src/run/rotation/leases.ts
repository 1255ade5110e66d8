import type { Config } from '../../config.js';
import { VaultrunError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Lease } from '../../resolve.js';
import { type Timer, type Timers, unreachableRetryMs } from './timers.js';

/**
 * Dynamic secrets' leases, and what happens when one nears its end:
 * - a renewable lease is renewed at 2/3 of its duration, asking for its original duration each time;
 * - a lease that cannot be extended any more (not renewable, or a renewal came back shorter: its max TTL is
 *   near) is replaced — its secret is read again — once `--lease-refresh` (default 0.67) of its life has
 *   passed, so that the command switches while the old credential still works; the action then comes at the
 *   latest halfway to the lease's end (change.ts);
 * - a renewal refused (revoked, expired, max TTL) has the secret read again at once;
 * - Vault unreachable: the renewal is retried; a lease that expires meanwhile is an error, and
 *   `--on-lease-expiry=stop` stops the command (exit 69), `keep` reads a fresh secret as soon as Vault answers;
 * - leases replaced by a new read are revoked once the command no longer uses them, and every lease at exit.
 */

export interface TrackedLease {
  lease: Lease;
  issuedAt: number;
  expiresAt: number;
  /** The duration asked for at each renewal: the lease's original duration. */
  incrementS: number;
  timer?: Timer;
  unreachableSince?: number;
}

/** When to renew a lease of `durationS` seconds: at 2/3 of it. Pure. */
export function leaseRenewalDelayMs(durationS: number): number {
  return (durationS * 1000 * 2) / 3;
}

/** When a lease that cannot be extended is replaced: `leaseRefresh` of its life after it was issued. Pure. */
export function refreshAt(lease: Pick<TrackedLease, 'issuedAt' | 'expiresAt'>, leaseRefresh: number): number {
  return lease.issuedAt + (lease.expiresAt - lease.issuedAt) * leaseRefresh;
}

/** Whether a renewal that gave `durationS` leaves the lease unable to go on: it is replaced instead. Pure. */
export function cannotBeExtended(
  renewed: { duration: number; renewable: boolean },
  incrementS: number,
): boolean {
  return !renewed.renewable || renewed.duration < incrementS;
}

/** How long a lease renewal may wait for Vault: half the time left, at least 1 s. Pure. */
export function leaseRenewalWaitMs(leftMs: number): number {
  return Math.max(1000, leftMs / 2);
}

/** What the leases need from Vault (the coordinator binds them to its client and token). */
export interface LeaseCalls {
  renew(lease: Lease, incrementS: number, waitMs: number): Promise<{ duration: number; renewable: boolean }>;
  revoke(lease: Lease, waitMs: number): Promise<void>;
}

export interface LeasesOptions {
  timers: Timers;
  log: Logger;
  settings: Pick<Config, 'leaseRefresh' | 'onLeaseExpiry' | 'revoke'>;
  /** Renew and replace; false for a plain --supervise (leases are only revoked at exit). */
  watching: boolean;
  /** Whether vaultrun has a connection to Vault (the calls need one). */
  connected(): boolean;
  calls: LeaseCalls;
  /** Have these reads fetched again; `deadline`: the lease's end. */
  readAgain(reason: string, readIds: string[], deadline?: number): void;
  /** --on-lease-expiry=stop: stops the command, vaultrun exits 69. */
  stopCommand(reason: string): Promise<void>;
  /** The variables that use a read, for the log (names only). */
  variablesOf(readId: string): string;
}

export class Leases {
  private readonly tracked = new Map<string, TrackedLease>();
  /** Leases replaced by a new read, not revoked yet (signal mode waits --stop-timeout first). */
  private retiring: Lease[] = [];

  constructor(private readonly options: LeasesOptions) {}

  get size(): number {
    return this.tracked.size;
  }

  has(leaseId: string): boolean {
    return this.tracked.has(leaseId);
  }

  /** The reads that hold a lease. */
  readIds(): string[] {
    return [...this.tracked.values()].map((l) => l.lease.readId);
  }

  /** Starts the clock of a lease just read: renewal, or replacement before its end. */
  track(lease: Lease): void {
    const state = this.add(lease);
    if (!this.options.watching) return;
    if (lease.renewable && lease.durationS > 0) {
      state.timer = this.options.timers.later(leaseRenewalDelayMs(lease.durationS), () => this.renew(state));
    } else {
      this.scheduleRefresh(state);
    }
  }

  /** While exiting: a lease just read is not renewed, only revoked with the others. */
  adopt(lease: Lease): void {
    if (!this.tracked.has(lease.leaseId)) this.add(lease);
  }

  private add(lease: Lease): TrackedLease {
    const now = this.options.timers.now();
    const state: TrackedLease = {
      lease,
      issuedAt: now,
      expiresAt: now + lease.durationS * 1000,
      incrementS: lease.durationS,
    };
    this.tracked.set(lease.leaseId, state);
    return state;
  }

  /**
   * A new resolution uses `current`: the leases of `before` it no longer uses stop being renewed and are
   * returned (to retire, then revoke); the new ones are tracked.
   */
  replace(before: readonly Lease[], current: readonly Lease[]): Lease[] {
    const ids = new Set(current.map((l) => l.leaseId));
    const replaced = before.filter((l) => !ids.has(l.leaseId));
    for (const lease of replaced) this.untrack(lease.leaseId);
    for (const lease of current) if (!this.tracked.has(lease.leaseId)) this.track(lease);
    return replaced;
  }

  /** Replaced leases wait here until revoked, so that an exit meanwhile revokes them too. */
  retire(replaced: readonly Lease[]): void {
    this.retiring.push(...replaced);
  }

  /** Revokes replaced leases once the command no longer uses them. */
  async revokeRetired(replaced: readonly Lease[]): Promise<void> {
    this.retiring = this.retiring.filter((l) => !replaced.includes(l));
    await this.revoke(replaced);
  }

  /**
   * On exit: revokes every lease, tracked or retiring; returns whether Vault was unreachable. `covered`: the
   * token that read them is revoked next, which revokes them too.
   */
  async revokeAll(covered: boolean): Promise<boolean> {
    const leases = [...this.tracked.values()].map((s) => s.lease).concat(this.retiring.splice(0));
    return this.revoke(leases, covered);
  }

  /** Forgets every lease (their timers are the coordinator's to stop). */
  clear(): void {
    this.tracked.clear();
  }

  private untrack(leaseId: string): void {
    const state = this.tracked.get(leaseId);
    if (!state) return;
    this.options.timers.cancel(state.timer);
    this.tracked.delete(leaseId);
  }

  private scheduleRefresh(state: TrackedLease): void {
    const { timers } = this.options;
    const { leaseRefresh } = this.options.settings;
    const at = refreshAt(state, leaseRefresh);
    timers.cancel(state.timer);
    this.options.log.debug('a lease that cannot be extended is replaced at --lease-refresh of its life', {
      path: state.lease.path,
      lease_refresh: leaseRefresh,
      life_s: Math.round((state.expiresAt - state.issuedAt) / 1000),
      replace_in_s: Math.max(0, Math.round((at - timers.now()) / 1000)),
    });
    state.timer = timers.later(at - timers.now(), () =>
      this.options.readAgain(
        `the lease of ${state.lease.path} cannot be extended and ends in ${Math.round((state.expiresAt - timers.now()) / 1000)} s`,
        [state.lease.readId],
        state.expiresAt,
      ),
    );
  }

  private async renew(state: TrackedLease): Promise<void> {
    const { timers, log } = this.options;
    if (!this.options.connected() || !this.tracked.has(state.lease.leaseId)) return;
    const remainingMs = state.expiresAt - timers.now();
    try {
      const renewed = await this.options.calls.renew(
        state.lease,
        state.incrementS,
        leaseRenewalWaitMs(remainingMs),
      );
      if (state.unreachableSince)
        log.info('Vault reachable again: lease renewed', { path: state.lease.path });
      state.unreachableSince = undefined;
      state.expiresAt = timers.now() + renewed.duration * 1000;
      log.debug('renewed a lease', { path: state.lease.path, duration_s: renewed.duration });
      if (cannotBeExtended(renewed, state.incrementS)) this.scheduleRefresh(state);
      else state.timer = timers.later(leaseRenewalDelayMs(renewed.duration), () => this.renew(state));
    } catch (error) {
      if (error instanceof VaultrunError && error.code === 'UNREACHABLE') {
        state.unreachableSince ??= timers.now();
        const left = state.expiresAt - timers.now();
        if (left <= 0) return this.expired(state);
        log.warn('Vault unreachable: could not renew a lease; retrying', {
          path: state.lease.path,
          expires_in_s: Math.round(left / 1000),
        });
        state.timer = timers.later(unreachableRetryMs(left), () => this.renew(state));
        return;
      }
      // Gone or refused (revoked, expired, max TTL): read a fresh secret now.
      this.options.readAgain(
        `the lease of ${state.lease.path} could not be renewed`,
        [state.lease.readId],
        state.expiresAt,
      );
    }
  }

  private async expired(state: TrackedLease): Promise<void> {
    this.options.log.error('a lease expired while Vault was unreachable: the credential no longer works', {
      path: state.lease.path,
      variables: this.options.variablesOf(state.lease.readId),
    });
    if (this.options.settings.onLeaseExpiry === 'stop') {
      await this.options.stopCommand('a lease expired while Vault was unreachable');
      return;
    }
    // keep: the command goes on; as soon as Vault answers again a fresh secret is read.
    this.options.readAgain(`the lease of ${state.lease.path} expired`, [state.lease.readId]);
  }

  /**
   * Revokes leases (needs `update` on sys/leases/revoke, which Vault's default policy does not grant); returns
   * whether Vault was unreachable. `covered`: the token that read them is revoked next, which revokes them too,
   * so a refusal is only worth a debug line.
   */
  private async revoke(leases: readonly Lease[], covered = false): Promise<boolean> {
    const { log } = this.options;
    if (!this.options.connected() || !this.options.settings.revoke || leases.length === 0) return false;
    let unreachable = false;
    await Promise.all(
      leases.map((l) =>
        this.options.calls.revoke(l, 5_000).then(
          () => log.info('revoked a lease', { path: l.path }),
          (error: unknown) => {
            const code = error instanceof VaultrunError ? error.code : 'error';
            if (code === 'UNREACHABLE') unreachable = true;
            if (covered && code === 'PERMISSION_DENIED') {
              log.debug('could not revoke a lease: it is revoked with the token', { path: l.path, code });
              return;
            }
            log.warn('could not revoke a lease', {
              path: l.path,
              code,
              hint:
                code === 'PERMISSION_DENIED'
                  ? 'grant update on sys/leases/revoke to the policy, or the lease stays valid until it expires'
                  : undefined,
            });
          },
        ),
      ),
    );
    return unreachable;
  }
}
