import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type ReadAs, readLimited } from '../../env/read-limited.js';
import { MAX_ENV_FILE_BYTES } from '../../env/sources.js';
import { VaultrunError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ReadRequest } from '../../refs/plan.js';
import { type Prepared, sha256, type VaultContext } from '../../resolve.js';
import { pollVerdict } from '../../vault/consistency.js';
import { readSecret, type SecretRead } from '../../vault/kv.js';
import { currentVersion } from '../../vault/lease.js';
import { scheduledChangeMs } from './scheduled.js';
import type { Timers } from './timers.js';

/**
 * What can change, watched:
 * - KV: every `--poll-interval` (±10%, so that many replicas do not ask at once), one request per watched
 *   path: KV v2 asks the metadata for the current version (not the secret); KV v1 and other engines without a
 *   lease are read and compared by hash. Pinned versions (`#KEY#3`) never change and are not polled; secrets
 *   with a lease have their own clock (leases.ts).
 * - Files: the env files and NAME_FILE sources are watched (inotify on their directory, so renames by a
 *   sidecar and Kubernetes' symlink swaps are seen) and hashed again on every poll. They are compared with
 *   the hash of the very text the environment was resolved from (Prepared.sourceHashes), and checked once
 *   right after the watch is installed: a change made between the resolution and the watch is seen too.
 * - Vault unreachable or a path denied: warned once, the command keeps running, the next poll tries again.
 * What changed is handed to a callback (change.ts acts on it).
 */

export { sha256 };

/** When the next poll comes: the interval ±10% (`random` in [0, 1)). Pure. */
export function pollDelayMs(pollIntervalMs: number, random: number): number {
  return pollIntervalMs * (0.9 + random * 0.2);
}

/** How long one poll request may wait for Vault: --wait, at most half the interval, at least 1 s. Pure. */
export function pollWaitMs(waitMs: number, pollIntervalMs: number): number {
  return Math.max(1000, Math.min(waitMs, pollIntervalMs / 2));
}

/**
 * Reads worth polling: read, no lease (leases have their own clock), not announcing their own change (static
 * roles: scheduled.ts) and no pinned version. Pure.
 */
export function pollableReads(
  reads: readonly ReadRequest[],
  secrets: ReadonlyMap<string, SecretRead>,
): ReadRequest[] {
  return reads.filter((r) => {
    const secret = secrets.get(r.id);
    return (
      r.version === undefined &&
      r.ciphertext === undefined &&
      r.write === undefined &&
      secret !== undefined &&
      !secret.leaseId &&
      scheduledChangeMs(secret) === undefined
    );
  });
}

export interface WatchOptions {
  timers: Timers;
  log: Logger;
  pollIntervalMs: number;
  /** --wait: how long a request may wait for Vault. */
  waitMs: number;
  random?: () => number;
  /** --user: the source files are read (to hash them) as that user, as prepare() reads them. */
  readAs?: ReadAs;
  /** The connection to Vault, if any. */
  vault(): VaultContext | undefined;
  /** What the command runs with now: the prepared environment (its source files, its reads) and the secrets. */
  current(): { prepared: Prepared; reads: ReadonlyMap<string, SecretRead> };
  /**
   * Our token cannot be used until a new login (token.ts `due`): polls of Vault are skipped meanwhile, and a
   * refusal is not reported (it would be our expired token's, not the policies').
   */
  tokenDue?(): boolean;
  /** Asks for that login now (token.ts `nudge`), when a poll is skipped for it. */
  loginNow?(): void;
  /** Something changed: these reads are to be fetched again, or (`reprepare`) the source files re-read. */
  changed(reason: string, readIds: string[], reprepare: boolean): void;
}

export class Watch {
  private watchers: FSWatcher[] = [];
  private fileHashes = new Map<string, string>();
  private checking: Promise<void> = Promise.resolve();
  /** Reads whose KV v2 metadata is denied: polled by reading the secret. */
  private readonly metadataDenied = new Set<string>();
  /** Watched paths whose last check failed (not unreachable), with the error code: warned once. */
  private readonly pollFailures = new Map<string, string>();
  private pollWarned = false;

  constructor(private readonly options: WatchOptions) {}

  /**
   * Watches the source files (installed when this returns) and starts polling. The files are compared with
   * what they held when the environment was resolved, at once: a change made since then is not missed.
   */
  start(): void {
    this.watchFromResolution();
    this.schedulePoll();
  }

  /** The source files changed (after a re-prepare): watch the new set, compared with what was re-read. */
  async rewatch(): Promise<void> {
    await this.watchFromResolution();
  }

  private watchFromResolution(): Promise<void> {
    this.fileHashes = new Map(Object.entries(this.options.current().prepared.sourceHashes));
    this.watchFiles();
    const checked = this.checkFiles();
    checked.catch(() => {});
    return checked;
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }

  /** The reads polled now. */
  pollable(): ReadRequest[] {
    const { prepared, reads } = this.options.current();
    return pollableReads(prepared.plan.reads, reads);
  }

  // ---- KV --------------------------------------------------------------------------------------------------

  private schedulePoll(): void {
    const random = (this.options.random ?? Math.random)();
    this.options.timers.later(pollDelayMs(this.options.pollIntervalMs, random), async () => {
      await this.pollOnce();
      this.schedulePoll();
    });
  }

  private async pollOnce(): Promise<void> {
    const { log } = this.options;
    await this.checkFiles();
    const vault = this.options.vault();
    if (!vault) return;
    if (this.options.tokenDue?.()) {
      log.debug('a new login is due: watched paths are checked after it');
      this.options.loginNow?.();
      return;
    }
    const waitMs = pollWaitMs(this.options.waitMs, this.options.pollIntervalMs);
    const { reads } = this.options.current();
    const changed: string[] = [];
    const reasons: string[] = [];
    let unreachable = false;
    await Promise.all(
      this.pollable().map(async (read) => {
        const before = reads.get(read.id);
        if (!before) return;
        try {
          const change = await this.checkRead(vault, read, before, waitMs);
          if (this.pollFailures.delete(read.id)) {
            log.info('a watched path can be checked again', { path: read.path });
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
          // Refused because our token expired meanwhile: the next poll, after the new login, checks it.
          if (this.options.tokenDue?.()) return;
          // Once per path and kind of failure, not at every interval.
          if (this.pollFailures.get(read.id) === error.code) return;
          this.pollFailures.set(read.id, error.code);
          log.warn('a watched path could not be checked; the command keeps running', {
            path: read.path,
            code: error.code,
          });
        }
      }),
    );
    if (unreachable && !this.pollWarned) {
      log.warn(
        'Vault unreachable: watched paths are checked again at the next interval; the command keeps running',
      );
    } else if (!unreachable && this.pollWarned) {
      log.info('Vault reachable again: watched paths were checked', { paths: this.pollable().length });
    }
    this.pollWarned = unreachable;
    if (changed.length > 0) this.options.changed(reasons.join('; '), changed, false);
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
          this.options.log.debug('ignoring an older version of a watched path (a node that lags behind)', {
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
        this.options.log.warn(
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
    const { readAs } = this.options;
    for (const file of this.options.current().prepared.sourceFiles) {
      // As prepare() reads them (bounded; as the --user target): what cannot be read counts as a change, and
      // the re-read that follows says why.
      const read = readLimited(file, MAX_ENV_FILE_BYTES, {
        allowFifo: true,
        ...(readAs ? { as: readAs } : {}),
      });
      hashes.set(
        file,
        await read.then(
          (bytes) => sha256(bytes.toString('utf8')),
          () => 'missing',
        ),
      );
    }
    return hashes;
  }

  private watchFiles(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const dirs = new Map<string, Set<string>>();
    for (const file of this.options.current().prepared.sourceFiles) {
      const names = dirs.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      dirs.set(dirname(file), names);
    }
    for (const [dir, names] of dirs) {
      try {
        const watcher = fsWatch(dir, { persistent: false }, (_event, name) => {
          // Kubernetes swaps a ..data symlink; sidecars rename temporary files: any event may concern us.
          if (name === null || names.has(name.toString()) || name.toString().startsWith('..')) {
            this.checkFiles().catch(() => {});
          }
        });
        watcher.on('error', () => {});
        this.watchers.push(watcher);
      } catch (error) {
        this.options.log.warn('cannot watch a directory; changes are seen at the next poll', {
          dir,
          code: (error as NodeJS.ErrnoException).code,
        });
      }
    }
  }

  /** Checks run one after the other, each against what the one before it saw. */
  private checkFiles(): Promise<void> {
    const next = this.checking.then(() => this.checkFilesOnce());
    this.checking = next.catch(() => {});
    return next;
  }

  private async checkFilesOnce(): Promise<void> {
    if (this.options.current().prepared.sourceFiles.length === 0) return;
    const before = this.fileHashes;
    const now = await this.hashFiles();
    const changed = [...now].filter(([file, hash]) => before.get(file) !== hash).map(([file]) => file);
    if (changed.length === 0) return;
    this.fileHashes = now;
    this.options.changed(`${changed.join(', ')} changed`, [], true);
  }
}
