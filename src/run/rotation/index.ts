import type { Config } from '../../config.js';
import type { ReadAs } from '../../env/read-limited.js';
import { type Owner, removeSecretFiles } from '../../env/secret-files.js';
import { EXIT_CODES, VaultrunError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { IMPORT_SETTING } from '../../refs/imports.js';
import {
  ensureChildToken,
  fetchReads,
  type Lease,
  leasesOf,
  needsVault,
  openVault,
  type Prepared,
  prepare,
  type Rendered,
  type Resolution,
  renderEnvironment,
  type VaultContext,
  writeFiles,
} from '../../resolve.js';
import { login } from '../../vault/auth.js';
import type { Session } from '../../vault/auth-types.js';
import type { SecretRead } from '../../vault/kv.js';
import { renewLease, renewSelf, revokeLease, revokeSelf } from '../../vault/lease.js';
import type { Controller } from '../supervise.js';
import { type Change, changedVariables, holdPinned, PendingChange, unreferencedPins } from './change.js';
import { CommandToken } from './command-token.js';
import { runHook } from './hook.js';
import { Leases } from './leases.js';
import { Scheduled } from './scheduled.js';
import { type Clock, systemClock, type Timer, Timers } from './timers.js';
import { OurToken } from './token.js';
import { Watch } from './watch.js';

/**
 * Rotation: what a resident vaultrun does while the command runs. This file is the coordinator: it wires the
 * concerns below through callbacks, applies a change, and cleans up at exit.
 *
 * - Token (token.ts): renewed at 2/3 of its TTL; at its max TTL (or when renewal is refused) vaultrun logs in
 *   again, has the dynamic secrets read again under the new token, then revokes the old one.
 * - Leases (leases.ts): renewed at 2/3 of their duration; replaced before their end (`--lease-refresh`) when they
 *   cannot be extended; revoked once replaced, and at exit.
 * - Watch (watch.ts): KV paths polled every `--poll-interval` (±10%), env files and NAME_FILE sources watched.
 * - Change (change.ts): debounced (`--debounce`), delayed by a random `--splay`, then applied here, one at a
 *   time: re-resolved (only what changed is read again) and compared: identical environment and files →
 *   nothing happens; otherwise `--on-change`: restart (stop signal to the process group, SIGKILL after
 *   `--stop-timeout` to whatever of the group is left, start again — with a change noticed during the stop
 *   taken in: lateChange), signal:SIG (rewrite the secret files
 *   atomically, send SIG), exit (stop the command, exit 75 for the orchestrator to start a new container) or
 *   none (rewrite the files only). `--change-hook` runs before that action (hook.ts). `--pin` variables keep
 *   the value the command started with: a change to them alone is warned about, not acted on.
 * - Timers (timers.ts): every wait goes through one Timers, stopped at exit.
 * - Vault unreachable: the command keeps running; renewals and polls retry; warnings say when leases expire;
 *   `--on-lease-expiry=stop` stops the command (exit 69) when a lease expires before Vault is back.
 * - Exit: leases and the token vaultrun created are revoked (`--no-revoke` keeps them; a refused lease revocation
 *   is covered by revoking our own token), secret files removed; nothing more is tried when Vault is unreachable.
 */

export interface RotationOptions {
  config: Config;
  processEnv: Readonly<Record<string, string | undefined>>;
  log: Logger;
  resolution: Resolution;
  vault?: VaultContext;
  owner?: Owner;
  /** --user: whom env files and NAME_FILE sources are read (and hashed) as. */
  readAs?: ReadAs;
  /** Poll, renew and watch; false for a plain --supervise (only the clean-up on exit). */
  watching: boolean;
  /** Time and timeouts; the system's by default. */
  clock?: Clock;
}

/** A resolution of the command's environment: what was prepared, read and rendered. */
interface Resolved {
  prepared: Prepared;
  reads: Map<string, SecretRead>;
  rendered: Rendered;
}

/** Its secret files written: the command's environment, and the files by variable. */
interface Written {
  env: Record<string, string>;
  files: Record<string, string>;
}

export class Rotation {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly timers: Timers;
  private readonly token: OurToken;
  private readonly leases: Leases;
  private readonly watch: Watch;
  private readonly scheduled: Scheduled;
  private readonly change: PendingChange;
  private readonly commandToken: CommandToken;
  /** The command's token must be replaced at the next change (capped, refused, or our token replaced). */
  private newCommandToken = false;
  /** The command's tokens a change replaced: revoked once the command has the new one, or on exit. */
  private retiredCommandTokens: string[] = [];
  private vault: VaultContext | undefined;
  private controller: Controller | undefined;
  private prepared: Prepared;
  private reads: Map<string, SecretRead>;
  private rendered: Rendered;
  private files: Record<string, string>;
  /** While a restart waits for the old command to stop: what the new one starts with (polls compare with it). */
  private resolving: { prepared: Prepared; reads: Map<string, SecretRead> } | undefined;
  /** Number of actions taken (restarts or signals): for tests through the debug log, and for the summary. */
  actions = 0;

  constructor(private readonly options: RotationOptions) {
    const { config, log } = options;
    this.config = config;
    this.log = log;
    this.vault = options.vault;
    this.prepared = options.resolution.prepared;
    this.reads = options.resolution.reads;
    this.rendered = options.resolution.rendered;
    this.files = options.resolution.files;
    this.timers = new Timers((error) => this.reportBackground(error), options.clock ?? systemClock);
    const timers = this.timers;
    // The Vault calls below run only while vaultrun has a connection (the modules check first).
    const client = () => {
      if (!this.vault) throw new Error('no connection to Vault');
      return this.vault.client;
    };
    const token = () => this.vault?.session.token ?? '';
    this.change = new PendingChange({
      timers,
      log,
      debounceMs: config.debounceMs,
      splayMs: config.splayMs,
      apply: (change) => this.apply(change),
    });
    this.leases = new Leases({
      timers,
      log,
      settings: config,
      watching: options.watching,
      connected: () => this.vault !== undefined,
      calls: {
        renew: (lease, incrementS, waitMs) =>
          renewLease(client(), token(), lease.leaseId, incrementS, lease.path, waitMs),
        revoke: (lease, waitMs) => revokeLease(client(), token(), lease.leaseId, lease.path, waitMs),
      },
      readAgain: (reason, readIds, deadline) => this.change.notice(reason, readIds, false, deadline),
      stopCommand: async (reason) => this.controller?.shutdown(EXIT_CODES.UNREACHABLE, reason),
      variablesOf: (readId) =>
        this.prepared.plan.reads.find((r) => r.id === readId)?.variables.join(',') ?? '',
    });
    this.token = new OurToken({
      timers,
      log,
      revoke: config.revoke,
      session: () => this.vault?.session,
      calls: {
        renew: (tokenToRenew, waitMs) => renewSelf(client(), tokenToRenew, waitMs),
        login: (settings) => login(client(), settings, log),
        revoke: (tokenToRevoke, waitMs) => revokeSelf(client(), tokenToRevoke, waitMs),
      },
      replaceSession: (session) => this.replaceSession(session),
      leasedReads: () => this.leases.readIds(),
      childToken: () => this.vault?.childToken !== undefined,
      readAgain: (reason, readIds, deadline) => this.change.notice(reason, readIds, false, deadline),
    });
    this.scheduled = new Scheduled({
      timers,
      log,
      current: () => ({ plan: this.prepared.plan, reads: this.reads }),
      readAgain: (reason, readIds, deadline) => this.change.notice(reason, readIds, false, deadline),
    });
    this.commandToken = new CommandToken({
      timers,
      log,
      current: () => this.vault?.childToken,
      renew: (tokenToRenew, waitMs) => renewSelf(client(), tokenToRenew, waitMs),
      replace: (reason, deadline) => {
        this.newCommandToken = true;
        this.change.notice(reason, [], false, deadline);
      },
    });
    this.watch = new Watch({
      timers,
      log,
      pollIntervalMs: config.pollIntervalMs,
      waitMs: config.waitMs,
      ...(options.readAs ? { readAs: options.readAs } : {}),
      vault: () => this.vault,
      current: () => this.resolving ?? { prepared: this.prepared, reads: this.reads },
      tokenDue: () => this.token.due,
      loginNow: () => this.token.nudge(),
      changed: (reason, readIds, reprepare) => this.change.notice(reason, readIds, reprepare),
    });
  }

  /** Starts renewing, polling and watching once the command runs. */
  attach(controller: Controller): void {
    this.controller = controller;
    for (const lease of leasesOf(this.prepared.plan, this.reads)) this.leases.track(lease);
    // A pinned dynamic secret would keep a value whose lease is replaced and revoked: say so once.
    const leased = new Set(leasesOf(this.prepared.plan, this.reads).map((l) => l.readId));
    const pinnedLeased = this.prepared.plan.reads
      .filter((r) => leased.has(r.id))
      .flatMap((r) => r.variables.filter((v) => this.config.pin.has(v)));
    if (pinnedLeased.length > 0) {
      this.log.warn('--pin names dynamic secrets: their old value stops working once its lease is replaced', {
        variables: [...new Set(pinnedLeased)].sort().join(','),
        hint: 'pin static values only (KV), such as a key that encrypts data at rest',
      });
    }
    const referenced = [
      ...this.prepared.plan.reads.flatMap((r) => r.variables),
      ...this.prepared.loginVars,
      ...(this.rendered.imported ?? []),
      ...Object.keys(this.rendered.fileValues),
    ].filter((name) => name !== IMPORT_SETTING);
    const stray = unreferencedPins(this.config.pin, referenced);
    if (stray.length > 0) {
      // Names only, never a value.
      const names = [...new Set(referenced)].sort();
      this.log.warn('--pin names variables that hold no Vault reference: pinning them does nothing', {
        variables: stray.join(','),
        hint: `check the spelling; the variables with references are: ${names.join(', ') || 'none'}`,
      });
    }
    if (!this.options.watching) return;
    this.token.start();
    this.commandToken.start();
    this.watch.start();
    this.scheduled.arm();
    this.log.debug('watching for changes', {
      paths: this.watch.pollable().length,
      files: this.prepared.sourceFiles.length,
      leases: this.leases.size,
      poll_interval_ms: this.config.pollIntervalMs,
    });
  }

  private get stopped(): boolean {
    return this.timers.stopped;
  }

  private replaceSession(session: Session): void {
    const vault = this.vault;
    if (!vault) return;
    this.vault = { ...vault, session };
    vault.mounts.token = session.token;
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

  /** How long a change that could not be applied (Vault unreachable, files not written) waits to be tried again. */
  private get retryMs(): number {
    return Math.min(this.config.pollIntervalMs, 15_000);
  }

  /** Notices the same change again after retryMs: the same reads, the same re-preparation. */
  private retryLater(reason: string, pending: Change): void {
    this.timers.later(this.retryMs, () =>
      this.change.notice(reason, [...pending.readIds], pending.reprepare),
    );
  }

  /** Acts on a change: re-resolves what changed and, if the command's environment or files differ, restarts or signals it. */
  private async apply(pending: Change): Promise<void> {
    try {
      await this.applyChange(pending);
    } finally {
      // Secrets that announce their next change (static roles): from what the command now runs with.
      if (!this.stopped && this.options.watching) this.scheduled.arm();
    }
  }

  /**
   * Resolves a change on top of `base` (what was resolved last): only what changed is read again; the
   * command's token is created again when it must be; --pin variables keep the command's value. Throws
   * what the resolution threw.
   */
  private async resolveChange(pending: Change, base: Resolved, reason: string): Promise<Resolved> {
    // A new login due (the token expired while Vault was unreachable): it comes first, never a request with
    // the dead token. If it fails, the requests below fail too, and resolveFailed waits for it.
    await this.token.ready();
    let prepared = base.prepared;
    let reads = base.reads;
    if (pending.reprepare)
      prepared = await prepare(this.config, this.options.processEnv, this.log, this.options.readAs);
    let results = new Map();
    if (needsVault(prepared)) {
      this.vault ??= await openVault(this.config, this.log);
      ({ results, reads } = await fetchReads(this.vault, prepared.plan, base.reads, pending.readIds));
      const child = this.vault.childToken;
      if (child && (this.newCommandToken || child.parent !== this.vault.session.token)) {
        // A new token for the command, under our current token.
        this.vault.childToken = undefined;
        try {
          await ensureChildToken(this.vault, prepared, this.config, this.log);
        } catch (error) {
          this.vault.childToken = child;
          throw error;
        }
        this.retiredCommandTokens.push(child.token);
        this.newCommandToken = false;
        this.commandToken.start();
      } else {
        await ensureChildToken(this.vault, prepared, this.config, this.log);
      }
    }
    let rendered = renderEnvironment(this.config, prepared, results, this.log, this.vault?.childToken?.token);
    if (this.config.pin.size > 0) {
      const pinned = holdPinned(this.rendered, rendered, this.config.pin);
      rendered = pinned.rendered;
      if (pinned.held.length > 0) {
        this.log.warn('pinned variables changed in Vault: the command keeps their old value (--pin)', {
          variables: pinned.held.join(','),
          reason,
          hint: 'restart the container (or vaultrun) to hand the new value over, once it is safe to',
        });
      }
    }
    return { prepared, reads, rendered };
  }

  /** The secret files of a change could not be written (the caller retries it later): logged, saying what `keeps`. */
  private writeFailed(error: unknown, reason: string, keeps: string): void {
    this.log.error(`could not write the changed secret files: ${keeps}`, {
      reason,
      code: error instanceof VaultrunError ? error.code : 'error',
      error: error instanceof VaultrunError ? error.message : undefined,
      retry_in_s: Math.round(this.retryMs / 1000),
    });
  }

  /** A change could not be resolved: the command keeps its values; an unreachable Vault is tried again later. */
  private resolveFailed(error: unknown, reason: string, pending: Change, keeps: string): void {
    const code = error instanceof VaultrunError ? error.code : 'error';
    if (this.token.due) {
      // Our own token cannot be used until a new login (a refusal would be ours, not the policies'): the
      // change waits for that login, which warns itself when it fails.
      this.log.debug('a new login is due: the change is tried again after it', { reason, code });
      this.retryLater(reason, pending);
      return;
    }
    this.log.error(`could not resolve the changed secrets: ${keeps}`, {
      reason,
      code,
      error: error instanceof VaultrunError ? error.message : undefined,
    });
    if (code === 'UNREACHABLE') this.retryLater(reason, pending);
  }

  private async applyChange(pending: Change): Promise<void> {
    if (this.stopped || !this.controller) return;
    const reason = pending.reasons.join('; ');
    let prepared: Prepared;
    let reads: Map<string, SecretRead>;
    let rendered: Rendered;
    try {
      ({ prepared, reads, rendered } = await this.resolveChange(
        pending,
        { prepared: this.prepared, reads: this.reads, rendered: this.rendered },
        reason,
      ));
    } catch (error) {
      this.resolveFailed(error, reason, pending, 'the command keeps running with the old values');
      return;
    }
    if (this.stopped) return this.adoptForRevocation(prepared, reads);
    const changed = changedVariables(this.rendered, rendered);
    const oldLeases = leasesOf(this.prepared.plan, this.reads);
    const action = this.config.onChange;
    if (changed.length === 0) {
      this.log.debug('re-resolved: nothing changed for the command', { reason });
    } else {
      let written: { env: Record<string, string>; files: Record<string, string> };
      try {
        written = await writeFiles(this.config, rendered, this.log, this.options.owner);
      } catch (error) {
        // The new secret files could not be written (the runtime directory removed, replaced or full): the
        // command keeps its files and values. What this attempt read under a new lease is revoked (the next
        // attempt reads again), and the change is tried again later, as for an unreachable Vault.
        this.writeFailed(error, reason, 'the command keeps running with the old values');
        const unused = leasesOf(prepared.plan, reads).filter((l) => !this.leases.has(l.leaseId));
        await this.leases.revokeRetired(unused);
        this.retryLater(reason, pending);
        return;
      }
      const { env, files } = written;
      this.files = files;
      // vaultrun began to exit meanwhile (the command ended by itself): no action, only the clean-up.
      if (this.stopped) return this.adoptForRevocation(prepared, reads);
      this.actions++;
      const variables = changed.join(',');
      if (this.config.changeHook) await this.runHook(env, changed, reason);
      if (this.stopped) return this.adoptForRevocation(prepared, reads);
      if (action.action === 'restart') {
        this.log.info('secrets changed: restarting the command', { reason, variables });
        // A change noticed while the old command stops is taken into the start that follows (lateChange).
        let latest: Resolved & Written = { prepared, reads, rendered, env, files };
        const superseded: Lease[] = [];
        this.resolving = { prepared, reads };
        try {
          await this.controller.restart(async () => {
            // Whatever happens here, the command is started again (the old one has stopped).
            try {
              const late = await this.lateChange(latest, changed);
              latest = late.resolved;
              superseded.push(...late.superseded);
              return { env: latest.env, ...(late.changed ? { reason: `${late.changed} changed` } : {}) };
            } catch (error) {
              this.log.error(
                'a change noticed while the command was stopping failed: it starts with the values read before',
                {
                  code: error instanceof VaultrunError ? error.code : 'error',
                },
              );
              return { env: latest.env };
            }
          }, `${variables} changed`);
        } finally {
          this.resolving = undefined;
        }
        ({ prepared, reads, rendered } = latest);
        this.files = latest.files;
        await this.leases.revokeRetired(superseded);
      } else if (action.action === 'exit') {
        this.log.info(
          `secrets changed: stopping the command and exiting with ${EXIT_CODES.SECRETS_CHANGED} (--on-change=exit)`,
          { reason, variables },
        );
        // What this change read is revoked with the rest on exit (dispose).
        this.adoptForRevocation(prepared, reads);
        await this.controller.shutdown(EXIT_CODES.SECRETS_CHANGED, `${variables} changed`);
        return;
      } else {
        const envOnly = changed.filter((name) => !(name in rendered.fileValues));
        if (envOnly.length > 0) {
          this.log.warn('changed environment variables reach the command only by a restart', {
            variables: envOnly.join(','),
            hint: 'use NAME_FILE=vault:… for values an app re-reads on a signal, or --on-change=restart',
          });
        }
        if (action.action === 'signal') {
          this.log.info(`secrets changed: sending ${action.signal} to the command`, { reason, variables });
          this.controller.signal(action.signal);
        } else {
          this.log.info('secrets changed: files rewritten, the command left alone (--on-change=none)', {
            reason,
            variables,
          });
        }
      }
    }
    // Adopt the new state; leases that were replaced are revoked once the command no longer uses them.
    this.prepared = prepared;
    this.reads = reads;
    this.rendered = rendered;
    const replaced = this.leases.replace(oldLeases, leasesOf(prepared.plan, reads));
    if (pending.reprepare) await this.watch.rewatch();
    this.leases.retire(replaced);
    const retire = async () => {
      await this.revokeRetiredCommandTokens();
      await this.leases.revokeRetired(replaced);
      await this.token.revokeRetired();
    };
    if ((action.action === 'signal' || action.action === 'none') && changed.length > 0) {
      // The app switches on its own (after the signal): give it the stop timeout before the old lease goes.
      this.timers.later(this.config.stopTimeoutMs, retire);
    } else {
      await retire();
    }
  }

  /**
   * Called by a restart once the old command has stopped: the changes noticed meanwhile are taken at once
   * (not after their debounce) and resolved on top of `base`, what the restart was about to start with; their
   * files are written and the change hook runs again for them. Returns what the command starts with, the
   * leases `base` read that it no longer uses (to revoke), and the variables that differ from what the old
   * command had, when the late change made a difference. A late change that cannot be resolved or written is
   * handled as any change that fails (logged, tried again when Vault was unreachable); the command then starts
   * with `base`.
   */
  private async lateChange(
    base: Resolved & Written,
    changedBefore: string[],
  ): Promise<{ resolved: Resolved & Written; superseded: Lease[]; changed?: string }> {
    const late = this.change.take();
    if (!late || this.stopped) return { resolved: base, superseded: [] };
    const reason = late.reasons.join('; ');
    let next: Resolved;
    try {
      next = await this.resolveChange(late, base, reason);
    } catch (error) {
      this.resolveFailed(error, reason, late, 'the command starts with the values read before');
      return { resolved: base, superseded: [] };
    }
    // Leases read for `base` alone (never handed to a command) and not kept by `next`.
    const unused = (from: Resolved, to: Resolved) => {
      const kept = new Set(leasesOf(to.prepared.plan, to.reads).map((l) => l.leaseId));
      return leasesOf(from.prepared.plan, from.reads).filter(
        (l) => !kept.has(l.leaseId) && !this.leases.has(l.leaseId),
      );
    };
    const changed = changedVariables(base.rendered, next.rendered);
    if (changed.length === 0) {
      this.log.debug('re-resolved while the command was stopping: nothing changed for the command', {
        reason,
      });
      return { resolved: { ...next, env: base.env, files: base.files }, superseded: unused(base, next) };
    }
    let written: Written;
    try {
      written = await writeFiles(this.config, next.rendered, this.log, this.options.owner);
    } catch (error) {
      this.writeFailed(error, reason, 'the command starts with the values read before');
      await this.leases.revokeRetired(unused(next, base));
      this.retryLater(reason, late);
      // Some of base's files may have been overwritten before the failure: write them again if possible.
      const rewritten = await writeFiles(this.config, base.rendered, this.log, this.options.owner).catch(
        () => undefined,
      );
      return { resolved: { ...base, ...rewritten }, superseded: [] };
    }
    const variables = [...new Set([...changedBefore, ...changed])].sort();
    this.log.info('secrets changed again while the command was stopping: it starts with the newest values', {
      reason,
      variables: changed.join(','),
    });
    if (this.config.changeHook) await this.runHook(written.env, changed, reason);
    return {
      resolved: { ...next, ...written },
      superseded: unused(base, next),
      changed: changedVariables(this.rendered, next.rendered).join(',') || variables.join(','),
    };
  }

  /** The command's tokens a change replaced (unless --no-revoke): revoke-self, with each of them. */
  private async revokeRetiredCommandTokens(): Promise<void> {
    const vault = this.vault;
    if (!vault || !this.config.revoke) return;
    for (const token of this.retiredCommandTokens.splice(0)) {
      await revokeSelf(vault.client, token, 5_000).catch((error: unknown) =>
        this.log.debug("could not revoke the command's replaced token", {
          code: error instanceof VaultrunError ? error.code : 'error',
        }),
      );
    }
  }

  /** --change-hook: run and waited for (at most --stop-timeout); its status is logged, never fatal. */
  private async runHook(env: Record<string, string>, changed: string[], reason: string): Promise<void> {
    const command = this.config.changeHook;
    if (!command) return;
    const { owner } = this.options;
    const status = await runHook({
      command,
      env,
      changed,
      log: this.log,
      timeoutMs: this.config.stopTimeoutMs,
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      ...(this.config.mask ? { mask: this.log.masker } : {}),
    });
    const fields = { status, variables: changed.join(','), reason };
    if (status === 0) this.log.info('the change hook ran', fields);
    else this.log.warn('the change hook failed; going on with --on-change', fields);
  }

  /** While exiting: leases just read are not acted on, but revoked with the others by dispose(). */
  private adoptForRevocation(prepared: Prepared, reads: Map<string, SecretRead>): void {
    for (const lease of leasesOf(prepared.plan, reads)) this.leases.adopt(lease);
  }

  /** On exit: stop everything, revoke what we created (unless --no-revoke), remove secret files. */
  async dispose(): Promise<void> {
    this.timers.stop();
    this.watch.close();
    // A re-resolution under way finishes first (it acts on nothing now), so that the leases it read are
    // revoked too — but not for long: it may be retrying an unreachable Vault.
    const applying = this.change.applying;
    if (applying) {
      const clock = this.timers.clock;
      let timer: Timer | undefined;
      await Promise.race([
        applying.catch(() => {}),
        new Promise((resolve) => {
          timer = clock.setTimeout(() => resolve(undefined), 5_000);
        }),
      ]);
      if (timer) clock.clearTimeout(timer);
    }
    const vault = this.vault;
    await this.revokeRetiredCommandTokens();
    if (vault?.childToken && this.config.revoke) {
      // The command's token: revoked by itself (also when our token is one we were given, never revoked).
      await revokeSelf(vault.client, vault.childToken.token, 5_000).then(
        () => this.log.debug("revoked the command's token"),
        (error: unknown) =>
          this.log.warn("could not revoke the command's token: it expires with its TTL", {
            code: error instanceof VaultrunError ? error.code : 'error',
          }),
      );
    }
    if (vault && this.config.revoke) {
      // Leases die with the token that read them: when that token is ours, its revocation covers them.
      const unreachable = await this.leases.revokeAll(vault.session.created);
      if (!unreachable) {
        await this.token.revokeAll();
      } else {
        this.log.warn('Vault unreachable on exit: leases and the token stay valid until they expire');
      }
    }
    this.leases.clear();
    vault?.client.close();
    // Only this process's own files and directory: another vaultrun sharing the runtime directory keeps its.
    await removeSecretFiles();
  }
}
