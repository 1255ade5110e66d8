import type { Logger } from '../../log.js';
import type { ReadRequest } from '../../refs/plan.js';
import type { SecretRead } from '../../vault/kv.js';
import type { Timer, Timers } from './timers.js';

/**
 * Secrets without a lease that say themselves when they change, read again exactly then — not at the next poll:
 *
 * - Database static roles (`database/static-creds/ROLE`): the answer has `last_vault_rotation`,
 *   `rotation_period` and `ttl`, the seconds until Vault rotates the password. The secret is read again
 *   `ttl` + STATIC_MARGIN_MS after it was read. Vault's rotation queue may rotate a little late (it checks every
 *   few seconds): a read that still gets the old password (same `last_vault_rotation`) is tried again after
 *   STATIC_MARGIN_MS, until the new one is there. The command is then restarted (or signalled) at once: no
 *   debounce, no splay — the old password no longer works.
 *
 * - Certificates issued on start (`>>vault:PKI/issue/ROLE#…`) without a lease (the role has no
 *   generate_lease): issued again at CERT_REFRESH (2/3) of the life they had left when issued (`expiration`),
 *   so the command switches while the old certificate is still valid. With a lease, leases.ts replaces it
 *   (at --lease-refresh of the lease's life) and it is not scheduled here.
 *
 * What is read again is handed to the change machinery (change.ts) with a deadline of "now".
 */

/** After the announced rotation, and between tries while Vault has not rotated yet. */
export const STATIC_MARGIN_MS = 500;

/** A certificate issued on start is issued again when this fraction of its life has passed. */
export const CERT_REFRESH = 2 / 3;

/**
 * When a read announces its own change, ms after it was read (`now`: when that was); undefined when it does
 * not. `write`: the secret was issued by a write reference. Pure.
 */
export function scheduledChangeMs(
  secret: Pick<SecretRead, 'data' | 'leaseId'>,
  write = false,
  now = 0,
): number | undefined {
  if (secret.leaseId) return undefined; // leases have their own clock (leases.ts)
  const { data } = secret;
  if (write) {
    if (typeof data.expiration !== 'number') return undefined;
    return Math.max(0, data.expiration * 1000 - now) * CERT_REFRESH;
  }
  if (
    typeof data.ttl === 'number' &&
    typeof data.rotation_period === 'number' &&
    typeof data.last_vault_rotation === 'string'
  ) {
    return Math.max(0, data.ttl) * 1000 + STATIC_MARGIN_MS;
  }
  return undefined;
}

/** The reads whose secret says when it changes (and so are not polled). Pure. */
export function scheduledReads(
  reads: readonly ReadRequest[],
  secrets: ReadonlyMap<string, SecretRead>,
): ReadRequest[] {
  return reads.filter((r) => {
    const secret = secrets.get(r.id);
    return (
      secret !== undefined &&
      r.version === undefined &&
      scheduledChangeMs(secret, r.write !== undefined, Date.now()) !== undefined
    );
  });
}

export interface ScheduledOptions {
  timers: Timers;
  log: Logger;
  /** What the command runs with now. */
  current(): { plan: { reads: readonly ReadRequest[] }; reads: ReadonlyMap<string, SecretRead> };
  /** Read these again now. */
  readAgain(reason: string, readIds: string[], deadline: number): void;
}

export class Scheduled {
  private readonly timers = new Map<string, { timer: Timer; secret: SecretRead }>();

  constructor(private readonly options: ScheduledOptions) {}

  /** Number of reads scheduled. */
  get size(): number {
    return this.timers.size;
  }

  /**
   * (Re)arms a timer for every read that announces its change, from what was read last; a read whose secret
   * did not change keeps its timer. Call after every start and every change applied.
   */
  arm(): void {
    const { timers, log } = this.options;
    const { plan, reads } = this.options.current();
    const due = new Set<string>();
    for (const read of scheduledReads(plan.reads, reads)) {
      const secret = reads.get(read.id);
      const ms = secret && scheduledChangeMs(secret, read.write !== undefined, timers.now());
      if (!secret || ms === undefined) continue;
      due.add(read.id);
      const armed = this.timers.get(read.id);
      if (armed?.secret === secret) continue;
      if (armed) timers.cancel(armed.timer);
      const timer = timers.later(ms, () => {
        this.timers.delete(read.id);
        const what = read.write
          ? `the certificate from ${read.path} is due for renewal`
          : `${read.path} rotates now`;
        this.options.readAgain(what, [read.id], timers.now());
      });
      this.timers.set(read.id, { timer, secret });
      log.debug('read again when it rotates', { path: read.path, in_ms: Math.round(ms) });
    }
    for (const [id, armed] of this.timers) {
      if (due.has(id)) continue;
      timers.cancel(armed.timer);
      this.timers.delete(id);
    }
  }
}

/** Whether a start read a secret that announces its change: a reason to stay resident, as a lease is. Pure. */
export function rotatesOnSchedule(resolution: {
  plan: { reads: readonly ReadRequest[] };
  reads: ReadonlyMap<string, SecretRead>;
}): boolean {
  return scheduledReads(resolution.plan.reads, resolution.reads).length > 0;
}
