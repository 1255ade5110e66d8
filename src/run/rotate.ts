import { createHash } from 'node:crypto';
import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Config } from '../config.js';
import type { Owner } from '../env/secret-files.js';
import { EXIT_CODES, VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  fetchReads,
  type Lease,
  leasesOf,
  openVault,
  type Prepared,
  prepare,
  type Rendered,
  type Resolution,
  renderEnvironment,
  type VaultContext,
  writeFiles,
} from '../resolve.js';
import { login } from '../vault/auth.js';
import { pollVerdict } from '../vault/consistency.js';
import { readSecret, type SecretRead } from '../vault/kv.js';
import { currentVersion, renewLease, renewSelf, revokeLease, revokeSelf } from '../vault/lease.js';
import type { Controller } from './supervise.js';

/**
 * Rotation: what a resident vaultrun does while the command runs.
 *
 * - Token: renewed at 2/3 of its TTL; when it reaches its max TTL (or renewal is refused), vaultrun logs in
 *   again with the credentials it kept in memory, re-reads the dynamic secrets under the new token (leases die
 *   with the token that created them) and then revokes the old token.
 * - Leases: renewed at 2/3 of their duration; a lease that cannot be extended any more is replaced — a fresh
 *   secret is read — when `--lease-refresh` (default 0.67) of its life has passed, so the command switches
 *   while the old credential still works; the old lease is revoked once the command has switched.
 * - KV: every `--poll-interval` (±10%), one request per watched path: KV v2 asks the metadata for the current
 *   version (not the secret); KV v1 and other engines without a lease are read and compared. Pinned versions
 *   (`#KEY#3`) never change and are not polled.
 * - Files: the env files and NAME_FILE sources are watched (inotify on their directory, so renames by a
 *   sidecar and Kubernetes' symlink swaps are seen) and re-checked on every poll.
 * - A change is debounced (`--debounce`), delayed by a random `--splay` (both capped at half the time left to a
 *   lease's end when a lease is what changes), re-resolved (only what changed is read again) and compared:
 *   identical environment and files → nothing happens; otherwise `--on-change`: restart (stop signal to the
 *   process group, SIGKILL after `--stop-timeout` to whatever of the group is left, start again) or signal:SIG
 *   (rewrite the secret files atomically, send SIG). One re-resolution at a time, in order.
 * - Vault unreachable: the command keeps running; renewals and polls retry; warnings say when leases expire;
 *   `--on-lease-expiry=stop` stops the command (exit 69) when a lease expires before Vault is back.
 * - Exit: leases and the token vaultrun created are revoked (`--no-revoke` keeps them; a refused lease revocation
 *   is covered by revoking our own token), secret files removed; nothing more is tried when Vault is unreachable.
 */
const MAX_TIMER_MS = 2_147_483_647;

interface TrackedLease {
  lease: Lease;
  issuedAt: number;
  expiresAt: number;
  /** The duration asked for at each renewal: the lease's original duration. */
  incrementS: number;
  timer?: NodeJS.Timeout;
  unreachableSince?: number;
}

interface Pending {
  reasons: string[];
  refresh: Set<string>;
  reprepare: boolean;
}

export interface RotationOptions {
  config: Config;
  processEnv: Readonly<Record<string, string | undefined>>;
  log: Logger;
  resolution: Resolution;
  vault?: VaultContext;
  owner?: Owner;
  /** Poll, renew and watch; false for a plain --supervise (only the clean-up on exit). */
  watching: boolean;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Names of the variables whose value differs (never the values). Pure. */
export function changedVariables(a: Rendered, b: Rendered): string[] {
  const names = new Set<string>();
  for (const side of [a.env, b.env])
    for (const k of Object.keys(side)) if (a.env[k] !== b.env[k]) names.add(k);
  for (const side of [a.fileValues, b.fileValues]) {
    for (const k of Object.keys(side)) if (a.fileValues[k] !== b.fileValues[k]) names.add(k);
  }
  return [...names].sort();
}

export class Rotation {
  private readonly config: Config;
  private readonly log: Logger;
  private vault: VaultContext | undefined;
  private controller: Controller | undefined;
  private prepared: Prepared;
  private reads: Map<string, SecretRead>;
  private rendered: Rendered;
  private files: Record<string, string>;
  private readonly leases = new Map<string, TrackedLease>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private watchers: FSWatcher[] = [];
  private fileHashes = new Map<string, string>();
  private pending: Pending | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** When the pending debounce timer fires (ms since the epoch). */
  private debounceAt = 0;
  private applying: Promise<void> | undefined;
  private stopped = false;
  private tokenTimer: NodeJS.Timeout | undefined;
  /** When our token expires (ms since the epoch), as of its last login or renewal. */
  private tokenExpiresAt = 0;
  private tokenUnreachable = false;
  /** Tokens replaced by a new login, revoked once the command uses secrets read under the new one. */
  private retiredTokens: string[] = [];
  /** Leases replaced by a re-read, not revoked yet (signal mode waits --stop-timeout first). */
  private retiring: Lease[] = [];
  private metadataDenied = new Set<string>();
  /** Watched paths whose last check failed (not unreachable), with the error code: warned once. */
  private readonly pollFailures = new Map<string, string>();
  private pollWarned = false;
  /** Number of actions taken (restarts or signals): for tests through the debug log, and for the summary. */
  actions = 0;

  constructor(private readonly options: RotationOptions) {
    this.config = options.config;
    this.log = options.log;
    this.vault = options.vault;
    this.prepared = options.resolution.prepared;
    this.reads = options.resolution.reads;
    this.rendered = options.resolution.rendered;
    this.files = options.resolution.files;
  }

  /** Starts renewing, polling and watching once the command runs. */
  attach(controller: Controller): void {
    this.controller = controller;
    for (const lease of leasesOf(this.prepared.plan, this.reads)) this.track(lease);
    if (!this.options.watching) return;
    if (this.vault) this.scheduleTokenRenewal(this.vault.session.ttl);
    void this.hashFiles().then(() => this.watchFiles());
    this.schedulePoll();
    this.log.debug('watching for changes', {
      paths: this.pollable().length,
      files: this.prepared.sourceFiles.length,
      leases: this.leases.size,
      poll_interval_ms: this.config.pollIntervalMs,
    });
  }

  // ---- timers ----------------------------------------------------------------------------------------------

  private later(ms: number, fn: () => Promise<void> | void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (this.stopped) return;
        Promise.resolve()
          .then(fn)
          .catch((error: unknown) => this.reportBackground(error));
      },
      Math.max(0, Math.min(ms, MAX_TIMER_MS)),
    );
    this.timers.add(timer);
    return timer;
  }

  private cancel(timer: NodeJS.Timeout | undefined): void {
    if (!timer) return;
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  private reportBackground(error: unknown): void {
    if (error instanceof VaultrunError) {
      this.log.warn(error.message, { code: error.code, hint: error.hint });
    } else {
      this.log.error(
        `internal error in the supervisor (${error instanceof Error ? error.name : typeof error})`,
      );
    }
  }

  // ---- token -----------------------------------------------------------------------------------------------

  private scheduleTokenRenewal(ttlS: number): void {
    this.cancel(this.tokenTimer);
    if (!this.vault || ttlS <= 0) return; // a token without TTL (root, periodic without TTL) needs nothing
    this.tokenExpiresAt = Date.now() + ttlS * 1000;
    const base = this.vault.session.ttl;
    this.tokenTimer = this.later((ttlS * 1000 * 2) / 3, () => this.renewToken(base));
  }

  private async renewToken(baseTtlS: number): Promise<void> {
    const vault = this.vault;
    if (!vault) return;
    if (!vault.session.renewable) return this.relogin('the token is not renewable');
    const leftMs = this.tokenExpiresAt - Date.now();
    try {
      const { ttl, renewable } = await renewSelf(
        vault.client,
        vault.session.token,
        Math.max(1000, Math.min(leftMs / 2, 30_000)),
      );
      if (this.tokenUnreachable) this.log.info('Vault reachable again: token renewed');
      this.tokenUnreachable = false;
      this.log.debug('renewed the token', { ttl_s: ttl });
      if (!renewable || ttl < baseTtlS) {
        // Capped by the max TTL: this is the last stretch. Log in again before it ends.
        this.tokenExpiresAt = Date.now() + ttl * 1000;
        this.tokenTimer = this.later((ttl * 1000 * 2) / 3, () =>
          this.relogin('the token reaches its max TTL'),
        );
        return;
      }
      this.scheduleTokenRenewal(ttl);
    } catch (error) {
      if (error instanceof VaultrunError && error.code === 'UNREACHABLE') {
        this.tokenUnreachable = true;
        const left = this.tokenExpiresAt - Date.now();
        if (left <= 0) {
          return this.relogin('the token expired while Vault was unreachable');
        }
        this.log.warn('Vault unreachable: could not renew the token; retrying', {
          expires_in_s: Math.round(left / 1000),
        });
        this.tokenTimer = this.later(Math.min(10_000, Math.max(500, left / 3)), () =>
          this.renewToken(baseTtlS),
        );
        return;
      }
      return this.relogin('the token renewal was refused');
    }
  }

  private async relogin(reason: string): Promise<void> {
    const vault = this.vault;
    if (!vault) return;
    const settings = vault.session.relogin;
    if (!settings) {
      this.log.warn(`${reason}, and vaultrun cannot log in again (token given in VAULT_TOKEN)`, {
        hint: 'give a renewable token, a token file an agent keeps fresh, or use AppRole',
      });
      return;
    }
    let session: typeof vault.session;
    try {
      session = await login(vault.client, settings, this.log);
    } catch (error) {
      const hint =
        error instanceof VaultrunError && error.code === 'LOGIN_FAILED'
          ? 'an AppRole secret_id that was single-use (secret_id_num_uses=1) cannot log in twice: use a secret_id with more uses, or restart the container with a new one'
          : undefined;
      this.log.warn(`${reason}, and logging in again failed: retrying`, {
        error: error instanceof VaultrunError ? error.code : 'error',
        hint,
      });
      this.tokenTimer = this.later(30_000, () => this.relogin(reason));
      return;
    }
    const old = vault.session;
    this.vault = { ...vault, session };
    vault.mounts.token = session.token;
    this.log.info('logged in again', { reason, method: session.method });
    if (old.created) this.retiredTokens.push(old.token);
    const oldExpiry = this.tokenExpiresAt;
    this.scheduleTokenRenewal(session.ttl);
    const leased = [...this.leases.values()].map((l) => l.lease.readId);
    if (leased.length > 0) {
      // Leases die with the token that created them: read the dynamic secrets again under the new token.
      this.trigger(
        'the token was replaced: dynamic secrets are read again under the new one',
        leased,
        false,
        oldExpiry > 0 ? oldExpiry : undefined,
      );
    } else {
      await this.revokeRetiredTokens();
    }
  }

  private async revokeRetiredTokens(): Promise<void> {
    const vault = this.vault;
    if (!vault || !this.config.revoke) return;
    for (const token of this.retiredTokens.splice(0)) {
      await revokeSelf(vault.client, token, 5_000).catch((error: unknown) => {
        this.log.debug('could not revoke the replaced token', {
          code: error instanceof VaultrunError ? error.code : 'error',
        });
      });
    }
  }

  // ---- leases ----------------------------------------------------------------------------------------------

  private track(lease: Lease): void {
    const now = Date.now();
    const state: TrackedLease = {
      lease,
      issuedAt: now,
      expiresAt: now + lease.durationS * 1000,
      incrementS: lease.durationS,
    };
    this.leases.set(lease.leaseId, state);
    if (!this.options.watching) return;
    if (lease.renewable && lease.durationS > 0) {
      state.timer = this.later((lease.durationS * 1000 * 2) / 3, () => this.renew(state));
    } else {
      this.scheduleRefresh(state);
    }
  }

  private untrack(leaseId: string): TrackedLease | undefined {
    const state = this.leases.get(leaseId);
    if (state) {
      this.cancel(state.timer);
      this.leases.delete(leaseId);
    }
    return state;
  }

  private scheduleRefresh(state: TrackedLease): void {
    const at = state.issuedAt + (state.expiresAt - state.issuedAt) * this.config.leaseRefresh;
    this.cancel(state.timer);
    state.timer = this.later(at - Date.now(), () =>
      this.trigger(
        `the lease of ${state.lease.path} cannot be extended and ends in ${Math.round((state.expiresAt - Date.now()) / 1000)} s`,
        [state.lease.readId],
        false,
        state.expiresAt,
      ),
    );
  }

  private async renew(state: TrackedLease): Promise<void> {
    const vault = this.vault;
    if (!vault || !this.leases.has(state.lease.leaseId)) return;
    const remainingMs = state.expiresAt - Date.now();
    try {
      const { duration, renewable } = await renewLease(
        vault.client,
        vault.session.token,
        state.lease.leaseId,
        state.incrementS,
        state.lease.path,
        Math.max(1000, remainingMs / 2),
      );
      if (state.unreachableSince)
        this.log.info('Vault reachable again: lease renewed', { path: state.lease.path });
      state.unreachableSince = undefined;
      state.expiresAt = Date.now() + duration * 1000;
      this.log.debug('renewed a lease', { path: state.lease.path, duration_s: duration });
      if (!renewable || duration < state.incrementS) this.scheduleRefresh(state);
      else state.timer = this.later((duration * 1000 * 2) / 3, () => this.renew(state));
    } catch (error) {
      if (error instanceof VaultrunError && error.code === 'UNREACHABLE') {
        state.unreachableSince ??= Date.now();
        const left = state.expiresAt - Date.now();
        if (left <= 0) return this.expired(state);
        this.log.warn('Vault unreachable: could not renew a lease; retrying', {
          path: state.lease.path,
          expires_in_s: Math.round(left / 1000),
        });
        state.timer = this.later(Math.min(10_000, Math.max(500, left / 3)), () => this.renew(state));
        return;
      }
      // Gone or refused (revoked, expired, max TTL): read a fresh secret now.
      this.trigger(
        `the lease of ${state.lease.path} could not be renewed`,
        [state.lease.readId],
        false,
        state.expiresAt,
      );
    }
  }

  private async expired(state: TrackedLease): Promise<void> {
    this.log.error('a lease expired while Vault was unreachable: the credential no longer works', {
      path: state.lease.path,
      variables: this.variablesOf(state.lease.readId),
    });
    if (this.config.onLeaseExpiry === 'stop' && this.controller) {
      await this.controller.shutdown(EXIT_CODES.UNREACHABLE, 'a lease expired while Vault was unreachable');
      return;
    }
    // keep: the command goes on; as soon as Vault answers again a fresh secret is read.
    this.trigger(`the lease of ${state.lease.path} expired`, [state.lease.readId], false);
  }

  private variablesOf(readId: string): string {
    return this.prepared.plan.reads.find((r) => r.id === readId)?.variables.join(',') ?? '';
  }

  // ---- polling ---------------------------------------------------------------------------------------------

  /** Reads worth polling: no lease (leases have their own clock) and no pinned version. */
  private pollable(): Array<{ id: string; path: string }> {
    return this.prepared.plan.reads.filter(
      (r) => r.version === undefined && !this.reads.get(r.id)?.leaseId && this.reads.has(r.id),
    );
  }

  private schedulePoll(): void {
    const jitter = 0.9 + Math.random() * 0.2;
    this.later(this.config.pollIntervalMs * jitter, async () => {
      await this.pollOnce();
      this.schedulePoll();
    });
  }

  private async pollOnce(): Promise<void> {
    await this.checkFiles();
    const vault = this.vault;
    if (!vault) return;
    const waitMs = Math.max(1000, Math.min(this.config.waitMs, this.config.pollIntervalMs / 2));
    const changed: string[] = [];
    const reasons: string[] = [];
    let unreachable = false;
    await Promise.all(
      this.pollable().map(async (read) => {
        const before = this.reads.get(read.id);
        if (!before) return;
        try {
          const change = await this.checkRead(vault, read, before, waitMs);
          if (this.pollFailures.delete(read.id)) {
            this.log.info('a watched path can be checked again', { path: read.path });
          }
          if (change) {
            changed.push(read.id);
            reasons.push(change);
          }
        } catch (error) {
          if (!(error instanceof VaultrunError)) throw error;
          if (error.code === 'UNREACHABLE') {
            unreachable = true;
            return;
          }
          // Once per path and kind of failure, not at every interval.
          if (this.pollFailures.get(read.id) === error.code) return;
          this.pollFailures.set(read.id, error.code);
          this.log.warn('a watched path could not be checked; the command keeps running', {
            path: read.path,
            code: error.code,
          });
        }
      }),
    );
    if (unreachable && !this.pollWarned) {
      this.log.warn(
        'Vault unreachable: watched paths are checked again at the next interval; the command keeps running',
      );
    } else if (!unreachable && this.pollWarned) {
      this.log.info('Vault reachable again: watched paths were checked', { paths: this.pollable().length });
    }
    this.pollWarned = unreachable;
    if (changed.length > 0) this.trigger(reasons.join('; '), changed, false);
  }

  /** One request for a watched path (its KV v2 metadata, or the secret itself); the reason when it changed. */
  private async checkRead(
    vault: VaultContext,
    read: { id: string; path: string },
    before: SecretRead,
    waitMs: number,
  ): Promise<string | undefined> {
    const differs = (now: SecretRead) =>
      sha256(JSON.stringify(now.data)) !== sha256(JSON.stringify(before.data))
        ? `${read.path} changed`
        : undefined;
    const mount = await vault.mounts.mountFor(read.path);
    if (mount?.kvVersion === 2 && !this.metadataDenied.has(read.id)) {
      try {
        const polled = await currentVersion(vault.client, vault.session.token, read.path, mount, waitMs);
        if (polled === undefined) return undefined;
        // Only forward (src/vault/consistency.ts): an older version is a node that lags behind, not a change.
        const inUse =
          before.version === undefined
            ? undefined
            : { version: before.version, ...(before.createdTime ? { createdTime: before.createdTime } : {}) };
        const verdict = pollVerdict(inUse, vault.client.versions.get(read.path), polled);
        if (verdict === 'older') {
          this.log.debug('ignoring an older version of a watched path (a node that lags behind)', {
            path: read.path,
            version: polled.version,
            newest: vault.client.versions.get(read.path)?.version ?? before.version,
          });
          return undefined;
        }
        vault.client.versions.note(read.path, polled);
        return verdict === 'newer'
          ? `${read.path} changed (version ${before.version ?? '?'} → ${polled.version})`
          : undefined;
      } catch (error) {
        if (!(error instanceof VaultrunError) || error.code !== 'PERMISSION_DENIED') throw error;
        // Denied: the metadata only (policy without read on MOUNT/metadata/…), or everything (the token
        // expired or was revoked, Vault lost its data)? Only the first makes polling read the secret.
        const now = await readSecret(vault.client, vault.mounts, vault.session.token, read);
        this.metadataDenied.add(read.id);
        this.log.warn(
          'no read permission on the metadata of a watched path: polling reads the secret instead',
          {
            path: read.path,
            hint: 'grant read on MOUNT/metadata/PATH to save a full read per interval',
          },
        );
        return differs(now);
      }
    }
    return differs(await readSecret(vault.client, vault.mounts, vault.session.token, read));
  }

  // ---- files -----------------------------------------------------------------------------------------------

  private async hashFiles(): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    for (const file of this.prepared.sourceFiles) {
      hashes.set(file, await readFile(file, 'utf8').then(sha256, () => 'missing'));
    }
    if (this.fileHashes.size === 0) this.fileHashes = hashes;
    return hashes;
  }

  private watchFiles(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const dirs = new Map<string, Set<string>>();
    for (const file of this.prepared.sourceFiles) {
      const names = dirs.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      dirs.set(dirname(file), names);
    }
    for (const [dir, names] of dirs) {
      try {
        const watcher = fsWatch(dir, { persistent: false }, (_event, name) => {
          // Kubernetes swaps a ..data symlink; sidecars rename temporary files: any event may concern us.
          if (name === null || names.has(name.toString()) || name.toString().startsWith('..')) {
            void this.checkFiles();
          }
        });
        watcher.on('error', () => {});
        this.watchers.push(watcher);
      } catch (error) {
        this.log.warn('cannot watch a directory; changes are seen at the next poll', {
          dir,
          code: (error as NodeJS.ErrnoException).code,
        });
      }
    }
  }

  private async checkFiles(): Promise<void> {
    if (this.prepared.sourceFiles.length === 0) return;
    const before = this.fileHashes;
    const now = await this.hashFiles();
    const changed = [...now].filter(([file, hash]) => before.get(file) !== hash).map(([file]) => file);
    if (changed.length === 0) return;
    this.fileHashes = now;
    this.trigger(`${changed.join(', ')} changed`, [], true);
  }

  // ---- acting on changes -----------------------------------------------------------------------------------

  /**
   * Notes a change; the action follows after --debounce plus a random --splay, together with every change
   * noticed meanwhile. `deadline` (a lease's end): the action comes at the latest halfway to it, whatever the
   * debounce and splay say, so that the app switches while the old credential still works.
   */
  private trigger(reason: string, refresh: readonly string[], reprepare: boolean, deadline?: number): void {
    if (this.stopped) return;
    this.pending ??= { reasons: [], refresh: new Set(), reprepare: false };
    this.pending.reasons.push(reason);
    for (const id of refresh) this.pending.refresh.add(id);
    this.pending.reprepare ||= reprepare;
    this.log.debug('change noticed', { reason });
    const now = Date.now();
    let delay = this.config.debounceMs + Math.random() * this.config.splayMs;
    if (deadline !== undefined) delay = Math.min(delay, Math.max(0, (deadline - now) / 2));
    if (this.debounceTimer) {
      if (this.debounceAt <= now + delay) return;
      this.cancel(this.debounceTimer); // a lease ends sooner than the pending action would come
    }
    this.debounceAt = now + delay;
    this.debounceTimer = this.later(delay, async () => {
      this.debounceTimer = undefined;
      // One apply at a time, in order: a change noticed while one runs waits for it.
      const run = (this.applying ?? Promise.resolve()).then(() => this.apply());
      this.applying = run;
      try {
        await run;
      } finally {
        if (this.applying === run) this.applying = undefined;
      }
    });
  }

  private async apply(): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending || this.stopped || !this.controller) return;
    const reason = pending.reasons.join('; ');
    let prepared = this.prepared;
    let reads = this.reads;
    let rendered: Rendered;
    try {
      if (pending.reprepare) prepared = await prepare(this.config, this.options.processEnv, this.log);
      let results = new Map();
      if (prepared.plan.vars.length > 0) {
        this.vault ??= await openVault(this.config, this.log);
        ({ results, reads } = await fetchReads(this.vault, prepared.plan, this.reads, pending.refresh));
      }
      rendered = renderEnvironment(this.config, prepared, results, this.log);
    } catch (error) {
      const code = error instanceof VaultrunError ? error.code : 'error';
      this.log.error('could not resolve the changed secrets: the command keeps running with the old values', {
        reason,
        code,
        error: error instanceof VaultrunError ? error.message : undefined,
      });
      if (code === 'UNREACHABLE') {
        // Try again later with the same work.
        this.later(Math.min(this.config.pollIntervalMs, 15_000), () =>
          this.trigger(reason, [...pending.refresh], pending.reprepare),
        );
      }
      return;
    }
    if (this.stopped) return this.adoptForRevocation(prepared, reads);
    const changed = changedVariables(this.rendered, rendered);
    const oldLeases = leasesOf(this.prepared.plan, this.reads);
    if (changed.length === 0) {
      this.log.debug('re-resolved: nothing changed for the command', { reason });
    } else {
      const { env, files } = await writeFiles(this.config, rendered, this.log, this.options.owner);
      this.files = files;
      // vaultrun began to exit meanwhile (the command ended by itself): no action, only the clean-up.
      if (this.stopped) return this.adoptForRevocation(prepared, reads);
      this.actions++;
      const variables = changed.join(',');
      if (this.config.onChange.action === 'restart') {
        this.log.info('secrets changed: restarting the command', { reason, variables });
        await this.controller.restart(env, `${variables} changed`);
      } else {
        const envOnly = changed.filter((name) => !(name in rendered.fileValues));
        if (envOnly.length > 0) {
          this.log.warn('changed environment variables reach the command only by a restart', {
            variables: envOnly.join(','),
            hint: 'use NAME_FILE=vault:… for values an app re-reads on a signal, or --on-change=restart',
          });
        }
        this.log.info(`secrets changed: sending ${this.config.onChange.signal} to the command`, {
          reason,
          variables,
        });
        this.controller.signal(this.config.onChange.signal);
      }
    }
    // Adopt the new state; leases that were replaced are revoked once the command no longer uses them.
    this.prepared = prepared;
    this.reads = reads;
    this.rendered = rendered;
    const current = new Set(leasesOf(prepared.plan, reads).map((l) => l.leaseId));
    const replaced = oldLeases.filter((l) => !current.has(l.leaseId));
    for (const lease of replaced) this.untrack(lease.leaseId);
    for (const lease of leasesOf(prepared.plan, reads))
      if (!this.leases.has(lease.leaseId)) this.track(lease);
    if (pending.reprepare) {
      this.fileHashes = new Map();
      await this.hashFiles();
      this.watchFiles();
    }
    // Until revoked, replaced leases stay in `retiring`, so that an exit meanwhile revokes them too.
    this.retiring.push(...replaced);
    const retire = async () => {
      this.retiring = this.retiring.filter((l) => !replaced.includes(l));
      await this.revokeLeases(replaced);
      await this.revokeRetiredTokens();
    };
    if (this.config.onChange.action === 'signal' && changed.length > 0) {
      // The app switches on its own after the signal: give it the stop timeout before the old lease goes.
      this.later(this.config.stopTimeoutMs, retire);
    } else {
      await retire();
    }
  }

  /** While exiting: leases just read are not acted on, but revoked with the others by dispose(). */
  private adoptForRevocation(prepared: Prepared, reads: Map<string, SecretRead>): void {
    for (const lease of leasesOf(prepared.plan, reads)) {
      if (this.leases.has(lease.leaseId)) continue;
      const now = Date.now();
      this.leases.set(lease.leaseId, {
        lease,
        issuedAt: now,
        expiresAt: now + lease.durationS * 1000,
        incrementS: lease.durationS,
      });
    }
  }

  /**
   * Revokes leases (needs `update` on sys/leases/revoke, which Vault's default policy does not grant); returns
   * whether Vault was unreachable. `covered`: the token that read them is revoked next, which revokes them too,
   * so a refusal is only worth a debug line.
   */
  private async revokeLeases(leases: readonly Lease[], covered = false): Promise<boolean> {
    const vault = this.vault;
    if (!vault || !this.config.revoke || leases.length === 0) return false;
    let unreachable = false;
    await Promise.all(
      leases.map((l) =>
        revokeLease(vault.client, vault.session.token, l.leaseId, l.path, 5_000).then(
          () => this.log.info('revoked a lease', { path: l.path }),
          (error: unknown) => {
            const code = error instanceof VaultrunError ? error.code : 'error';
            if (code === 'UNREACHABLE') unreachable = true;
            if (covered && code === 'PERMISSION_DENIED') {
              this.log.debug('could not revoke a lease: it is revoked with the token', {
                path: l.path,
                code,
              });
              return;
            }
            this.log.warn('could not revoke a lease', {
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

  /** On exit: stop everything, revoke what we created (unless --no-revoke), remove secret files. */
  async dispose(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.watchers) w.close();
    // A re-resolution under way finishes first (it acts on nothing now), so that the leases it read are
    // revoked too — but not for long: it may be retrying an unreachable Vault.
    if (this.applying) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.applying.catch(() => {}),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 5_000);
        }),
      ]);
      clearTimeout(timer);
    }
    const vault = this.vault;
    if (vault && this.config.revoke) {
      const leases = [...this.leases.values()].map((s) => s.lease).concat(this.retiring.splice(0));
      // Leases die with the token that read them: when that token is ours, its revocation covers them.
      const unreachable = await this.revokeLeases(leases, vault.session.created);
      if (!unreachable) {
        await this.revokeRetiredTokens();
        if (vault.session.created) {
          await revokeSelf(vault.client, vault.session.token, 5_000).then(
            () => this.log.debug('revoked the token'),
            (error: unknown) =>
              this.log.warn('could not revoke the token', {
                code: error instanceof VaultrunError ? error.code : 'error',
              }),
          );
        }
      } else {
        this.log.warn('Vault unreachable on exit: leases and the token stay valid until they expire');
      }
    }
    this.leases.clear();
    vault?.client.close();
    await Promise.all(Object.values(this.files).map((file) => unlink(file).catch(() => {})));
  }
}
