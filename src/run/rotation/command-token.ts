import { VaultrunError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ChildToken } from '../../vault/child-token.js';
import { type Timer, type Timers, unreachableRetryMs } from './timers.js';
import { renewalWaitMs, tokenRenewalDelayMs } from './token.js';

/**
 * The command's token (NAME=vault:login) while vaultrun stays resident: renewed at 2/3 of its TTL (renew-self,
 * with the token itself). When a renewal comes back capped (its max TTL is near), is refused, or the token
 * is not renewable, a new one is asked for — a change like any other: the coordinator creates it and restarts
 * the command (or runs the --on-change action) with it, then revokes the old one. While Vault is unreachable
 * the renewal is retried.
 */
export interface CommandTokenOptions {
  timers: Timers;
  log: Logger;
  current(): ChildToken | undefined;
  renew(token: string, waitMs: number): Promise<{ ttl: number; renewable: boolean }>;
  /** A new token is needed before `deadline` (ms since the epoch). */
  replace(reason: string, deadline: number): void;
}

export class CommandToken {
  private timer: Timer | undefined;
  private expiresAt = 0;

  constructor(private readonly options: CommandTokenOptions) {}

  /** Schedules the renewal of the current token (again after it was replaced). */
  start(): void {
    const token = this.options.current();
    if (token) this.schedule(token.ttlS);
  }

  private schedule(ttlS: number): void {
    const { timers } = this.options;
    timers.cancel(this.timer);
    if (ttlS <= 0) return;
    this.expiresAt = timers.now() + ttlS * 1000;
    this.timer = timers.later(tokenRenewalDelayMs(ttlS), () => this.renew());
  }

  private async renew(): Promise<void> {
    const { timers, log } = this.options;
    const token = this.options.current();
    if (!token) return;
    if (!token.renewable) return this.options.replace("the command's token is not renewable", this.expiresAt);
    const leftMs = this.expiresAt - timers.now();
    try {
      const renewed = await this.options.renew(token.token, renewalWaitMs(leftMs));
      log.debug("renewed the command's token", { ttl_s: renewed.ttl });
      if (!renewed.renewable || renewed.ttl < token.ttlS) {
        // Capped by its max TTL: a new token before the end.
        this.expiresAt = timers.now() + renewed.ttl * 1000;
        const expiresAt = this.expiresAt;
        this.timer = timers.later(tokenRenewalDelayMs(renewed.ttl), () =>
          this.options.replace("the command's token reaches its max TTL", expiresAt),
        );
        return;
      }
      this.schedule(renewed.ttl);
    } catch (error) {
      if (error instanceof VaultrunError && error.code === 'UNREACHABLE') {
        const left = this.expiresAt - timers.now();
        log.warn("Vault unreachable: could not renew the command's token; retrying", {
          expires_in_s: Math.round(Math.max(0, left) / 1000),
        });
        if (left <= 0) return this.options.replace("the command's token expired", this.expiresAt);
        this.timer = timers.later(unreachableRetryMs(left), () => this.renew());
        return;
      }
      this.options.replace("renewing the command's token was refused", this.expiresAt);
    }
  }
}
