import { VaultrunError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AuthSettings, Session } from '../../vault/auth-types.js';
import { type Timer, type Timers, unreachableRetryMs } from './timers.js';

/**
 * Our token: renewed at 2/3 of its TTL; when a renewal comes back capped (the max TTL is near) or is refused,
 * vaultrun logs in again before the end with the credentials it kept in memory, has the dynamic secrets read
 * again under the new token (leases die with the token that created them), and revokes the old token once the
 * command uses them. While Vault is unreachable the renewal is retried; a token that expired meanwhile is
 * replaced by a new login.
 */

/** When to renew a token that lasts `ttlS` seconds: at 2/3 of it. Pure. */
export function tokenRenewalDelayMs(ttlS: number): number {
  return (ttlS * 1000 * 2) / 3;
}

/** What follows a renewal that gave `ttlS`: the next renewal, or — capped by the max TTL — a new login. Pure. */
export function afterRenewal(
  renewed: { ttl: number; renewable: boolean },
  baseTtlS: number,
): { next: 'renew' | 'login'; inMs: number } {
  const capped = !renewed.renewable || renewed.ttl < baseTtlS;
  return { next: capped ? 'login' : 'renew', inMs: tokenRenewalDelayMs(renewed.ttl) };
}

/** How long a renewal may wait for Vault: half the time left, between 1 s and 30 s. Pure. */
export function renewalWaitMs(leftMs: number): number {
  return Math.max(1000, Math.min(leftMs / 2, 30_000));
}

/** After a failed login, the next try comes after this. */
export const LOGIN_RETRY_MS = 30_000;

/** What the token needs from Vault (the coordinator binds them to its client). */
export interface TokenCalls {
  renew(token: string, waitMs: number): Promise<{ ttl: number; renewable: boolean }>;
  login(settings: AuthSettings): Promise<Session>;
  revoke(token: string, waitMs: number): Promise<void>;
}

export interface OurTokenOptions {
  timers: Timers;
  log: Logger;
  /** --revoke: replaced tokens are revoked. */
  revoke: boolean;
  /** The current session; undefined without a connection to Vault. */
  session(): Session | undefined;
  calls: TokenCalls;
  /** A new login replaced the session. */
  replaceSession(session: Session): void;
  /** The reads that hold leases (read under the old token). */
  leasedReads(): string[];
  /** The command holds a child of our token (NAME=vault:login): it dies with the old token. */
  childToken?(): boolean;
  /** Have these reads fetched again; `deadline`: when the old token (and so its leases) ends. */
  readAgain(reason: string, readIds: string[], deadline?: number): void;
}

export class OurToken {
  private timer: Timer | undefined;
  /** When the token expires (ms since the epoch), as of its last login or renewal. */
  private expiresAt = 0;
  private unreachable = false;
  /** Tokens replaced by a new login, revoked once the command uses secrets read under the new one. */
  private retired: string[] = [];
  /** The login under way, if any. */
  private loggingIn: Promise<void> | undefined;
  /** Why a login is due and waits for its retry (the last one failed); undefined when none is. */
  private loginDue: string | undefined;

  constructor(private readonly options: OurTokenOptions) {}

  /** Schedules the renewal of the current token. */
  start(): void {
    const session = this.options.session();
    if (session) this.scheduleRenewal(session.ttl);
  }

  private scheduleRenewal(ttlS: number): void {
    const { timers } = this.options;
    timers.cancel(this.timer);
    const session = this.options.session();
    this.expiresAt = ttlS > 0 ? timers.now() + ttlS * 1000 : 0;
    if (!session || ttlS <= 0) return; // a token without TTL (root, periodic without TTL) needs nothing
    const base = session.ttl;
    this.timer = timers.later(tokenRenewalDelayMs(ttlS), () => this.renew(base));
  }

  private async renew(baseTtlS: number): Promise<void> {
    const { timers, log } = this.options;
    const session = this.options.session();
    if (!session) return;
    if (!session.renewable) return this.login('the token is not renewable');
    const leftMs = this.expiresAt - timers.now();
    try {
      const renewed = await this.options.calls.renew(session.token, renewalWaitMs(leftMs));
      if (this.unreachable) log.info('Vault reachable again: token renewed');
      this.unreachable = false;
      log.debug('renewed the token', { ttl_s: renewed.ttl });
      const { next, inMs } = afterRenewal(renewed, baseTtlS);
      if (next === 'login') {
        // Capped by the max TTL: this is the last stretch. Log in again before it ends.
        this.expiresAt = timers.now() + renewed.ttl * 1000;
        this.timer = timers.later(inMs, () => this.login('the token reaches its max TTL'));
        return;
      }
      this.scheduleRenewal(renewed.ttl);
    } catch (error) {
      if (error instanceof VaultrunError && error.code === 'UNREACHABLE') {
        this.unreachable = true;
        const left = this.expiresAt - timers.now();
        if (left <= 0) {
          return this.login('the token expired while Vault was unreachable');
        }
        log.warn('Vault unreachable: could not renew the token; retrying', {
          expires_in_s: Math.round(left / 1000),
        });
        this.timer = timers.later(unreachableRetryMs(left), () => this.renew(baseTtlS));
        return;
      }
      return this.login('the token renewal was refused');
    }
  }

  /**
   * Whether the current token cannot be used until a new login: one is under way, or waits for its retry, or
   * the token is known to have expired (Vault was unreachable). Requests made meanwhile would be refused
   * (permission denied) for a reason that is ours, not the policies'. Never for a session vaultrun cannot log
   * in again with (VAULT_TOKEN).
   */
  get due(): boolean {
    if (!this.options.session()?.relogin) return false;
    if (this.loggingIn !== undefined || this.loginDue !== undefined) return true;
    return this.expiresAt > 0 && this.options.timers.now() >= this.expiresAt;
  }

  /**
   * Resolves once the token can be used: at once when no login is due; otherwise after the login under way,
   * or after a login started now (instead of at its retry). Whether the token can be used then.
   */
  async ready(): Promise<boolean> {
    if (!this.due) return true;
    if (this.loggingIn) await this.loggingIn;
    else {
      this.options.timers.cancel(this.timer);
      await this.login(this.loginDue ?? 'the token expired while Vault was unreachable');
    }
    return !this.due;
  }

  /**
   * A poll found the token unusable until a new login (`due`): the login is tried now rather than at its 30 s
   * retry, so that vaultrun is back as soon as Vault is; joins a login under way. Never throws.
   */
  nudge(): void {
    if (!this.due || this.loggingIn) return;
    void this.ready().catch(() => {});
  }

  private login(reason: string): Promise<void> {
    // One login at a time: a retry timer or ready() that comes meanwhile joins the one under way.
    if (this.loggingIn) return this.loggingIn;
    const attempt = this.loginOnce(reason).finally(() => {
      this.loggingIn = undefined;
    });
    this.loggingIn = attempt;
    return attempt;
  }

  private async loginOnce(reason: string): Promise<void> {
    const { timers, log } = this.options;
    const old = this.options.session();
    if (!old) return;
    const settings = old.relogin;
    if (!settings) {
      log.warn(`${reason}, and vaultrun cannot log in again (token given in VAULT_TOKEN)`, {
        hint: 'give a renewable token, a token file an agent keeps fresh, or use AppRole',
      });
      return;
    }
    let session: Session;
    try {
      session = await this.options.calls.login(settings);
    } catch (error) {
      const hint =
        error instanceof VaultrunError && error.code === 'LOGIN_FAILED'
          ? 'an AppRole secret_id that was single-use (secret_id_num_uses=1) cannot log in twice: use a secret_id with more uses, or restart the container with a new one'
          : undefined;
      // Warned once until a login succeeds; the retries (every 30 s, or at a poll: nudge) at debug level.
      const fields = { error: error instanceof VaultrunError ? error.code : 'error', hint };
      if (this.loginDue === undefined) log.warn(`${reason}, and logging in again failed: retrying`, fields);
      else log.debug(`${reason}, and logging in again failed again: retrying`, fields);
      this.loginDue = reason;
      timers.cancel(this.timer);
      this.timer = timers.later(LOGIN_RETRY_MS, () => this.login(reason));
      return;
    }
    this.loginDue = undefined;
    this.options.replaceSession(session);
    log.info('logged in again', { reason, method: session.method });
    if (old.created) this.retired.push(old.token);
    const oldExpiry = this.expiresAt;
    this.scheduleRenewal(session.ttl);
    const leased = this.options.leasedReads();
    if (leased.length > 0 || this.options.childToken?.()) {
      // Leases (and child tokens) die with the token that created them: read the dynamic secrets again, and
      // create the command's token again, under the new token; the old one is revoked after that change.
      this.options.readAgain(
        leased.length > 0
          ? 'the token was replaced: dynamic secrets are read again under the new one'
          : "the token was replaced: the command's token is created again under the new one",
        leased,
        oldExpiry > 0 ? oldExpiry : undefined,
      );
    } else {
      await this.revokeRetired();
    }
  }

  /** Revokes the tokens a new login replaced (unless --no-revoke). */
  async revokeRetired(): Promise<void> {
    if (!this.options.session() || !this.options.revoke) return;
    for (const token of this.retired.splice(0)) {
      await this.options.calls.revoke(token, 5_000).catch((error: unknown) => {
        this.options.log.debug('could not revoke the replaced token', {
          code: error instanceof VaultrunError ? error.code : 'error',
        });
      });
    }
  }

  /** On exit: the replaced tokens, then the current one if vaultrun created it (unless --no-revoke). */
  async revokeAll(): Promise<void> {
    await this.revokeRetired();
    const session = this.options.session();
    if (!session?.created || !this.options.revoke) return;
    await this.options.calls.revoke(session.token, 5_000).then(
      () => this.options.log.debug('revoked the token'),
      (error: unknown) =>
        this.options.log.warn('could not revoke the token', {
          code: error instanceof VaultrunError ? error.code : 'error',
        }),
    );
  }
}
