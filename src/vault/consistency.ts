/**
 * Consistency across the nodes of a cluster (see docs/ha.md). Pure functions and one small per-run record;
 * the client and the readers call them.
 *
 * - KV v2 stamps: within one run, never accept a version of a path older than one already seen (a node that
 *   lags behind, or a load balancer that sends the next request to one). `isOlder` is the rule.
 * - X-Vault-Index: OpenBao (and Vault Enterprise) return the raft index a node has applied with every answer;
 *   sent back, a standby that has not applied it yet refuses the request (OpenBao: HTTP 429 with no errors,
 *   Vault Enterprise: 412) instead of answering from an older state. We keep the highest index seen.
 * - Transient answers worth a retry that carry a 4xx status: the KV v2 upgrade after a mount is enabled.
 * - The leader's address (sys/leader) is followed only to an origin the operator configured.
 */

/** What identifies a KV v2 version: its number and when it was written (RFC 3339, as Vault reports it). */
export interface KvStamp {
  version: number;
  createdTime?: string;
}

function time(stamp: KvStamp): number | undefined {
  if (!stamp.createdTime) return undefined;
  const t = Date.parse(stamp.createdTime);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Pure: is `candidate` older than `seen` (the newest stamp already seen for the same path)? The version number
 * decides, except that a lower version written later than `seen` is a secret deleted with its metadata and
 * written again (versions start at 1 again): not older. The same version with an earlier created_time is an
 * older incarnation of that number: older.
 */
export function isOlder(seen: KvStamp | undefined, candidate: KvStamp): boolean {
  if (!seen) return false;
  const a = time(seen);
  const b = time(candidate);
  if (candidate.version < seen.version) return !(a !== undefined && b !== undefined && b > a);
  if (candidate.version === seen.version) return a !== undefined && b !== undefined && b < a;
  return false;
}

/** Pure: is `candidate` newer than `seen` (a change worth acting on)? Undefined `seen`: nothing to compare. */
export function isNewer(seen: KvStamp | undefined, candidate: KvStamp): boolean {
  if (!seen) return true;
  if (isOlder(seen, candidate)) return false;
  if (candidate.version !== seen.version) return true;
  const a = time(seen);
  const b = time(candidate);
  return a !== undefined && b !== undefined && b > a;
}

/** The newest stamp seen per KV v2 path, for one run (one client). */
export class VersionFloor {
  private readonly seen = new Map<string, KvStamp>();

  get(path: string): KvStamp | undefined {
    return this.seen.get(path);
  }

  /** Records `stamp` unless an equal or newer one is known. */
  note(path: string, stamp: KvStamp): void {
    const known = this.seen.get(path);
    if (!known || isNewer(known, stamp)) this.seen.set(path, stamp);
  }

  isOlder(path: string, stamp: KvStamp): boolean {
    return isOlder(this.seen.get(path), stamp);
  }
}

/** A decoded X-Vault-Index: base64 of {"cluster": ID, "value": "N"} in OpenBao 2.7. */
export interface VaultIndex {
  raw: string;
  cluster: string;
  value: number;
}

/** Pure: decodes an X-Vault-Index header; undefined for anything else (never sent back then). */
export function parseIndex(header: string | undefined): VaultIndex | undefined {
  if (!header || header.length > 1024 || !/^[A-Za-z0-9+/=_-]+$/.test(header)) return undefined;
  try {
    const json = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as unknown;
    if (typeof json !== 'object' || json === null) return undefined;
    const { cluster, value } = json as { cluster?: unknown; value?: unknown };
    const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
    if (typeof cluster !== 'string' || cluster === '' || !Number.isSafeInteger(n)) return undefined;
    return { raw: header, cluster, value: n };
  } catch {
    return undefined;
  }
}

/**
 * Pure: the index to send from now on, given the one held and one just received. Higher wins within a cluster;
 * an index of another cluster (the cluster was rebuilt, or VAULT_ADDR points elsewhere now) replaces it.
 */
export function laterIndex(
  held: VaultIndex | undefined,
  got: VaultIndex | undefined,
): VaultIndex | undefined {
  if (!got) return held;
  if (!held || held.cluster !== got.cluster) return got;
  return got.value > held.value ? got : held;
}

/**
 * Pure: the answer of a node that has not applied the index we sent yet. OpenBao 2.7 answers 429 with an empty
 * `errors` list (a rate-limit quota answers 429 with a message); Vault Enterprise answers 412.
 */
export function isBehindIndex(status: number, body: unknown, sentIndex: boolean): boolean {
  if (!sentIndex) return false;
  if (status === 412) return true;
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  return status === 429 && Array.isArray(errors) && errors.length === 0;
}

/**
 * Pure: the 400 a KV v2 mount answers for a moment after it is enabled (or after a node joins): the active
 * node says "Upgrading from non-versioned to versioned data…", standbys "Waiting for the primary to upgrade
 * from non-versioned to versioned data…". Matched by those exact openings only.
 */
export function isKvUpgrading(status: number, body: unknown): boolean {
  if (status !== 400) return false;
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length !== 1 || typeof errors[0] !== 'string') return false;
  return /^(Upgrading|Waiting for the primary to upgrade) from non-versioned to versioned data\. This backend will be unavailable for a brief period/.test(
    errors[0],
  );
}

/**
 * Pure: the origin to send requests to for `--consistency leader`, from sys/leader's `leader_address`, or
 * undefined with the reason it is not followed. Followed only to the configured address's own origin or an
 * origin listed in `--cluster-addr` (scheme, host and port all equal): a leader address is data from the
 * server, and our token must never go to an origin the operator did not name.
 */
export function leaderOrigin(
  leaderAddress: unknown,
  configuredAddr: string,
  allowed: readonly string[],
): { origin: string } | { reason: string } {
  if (typeof leaderAddress !== 'string' || leaderAddress === '') return { reason: 'no leader address' };
  let origin: string;
  try {
    const url = new URL(leaderAddress);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return { reason: 'not an http(s) address' };
    if (url.username || url.password) return { reason: 'an address with credentials' };
    origin = url.origin;
  } catch {
    return { reason: 'not a URL' };
  }
  const origins = [configuredAddr, ...allowed].map((a) => {
    try {
      return new URL(a).origin;
    } catch {
      return undefined;
    }
  });
  return origins.includes(origin) ? { origin } : { reason: `${origin} is not listed in --cluster-addr` };
}

/**
 * Pure (--watch): what the current version a poll saw means, against the version the command runs with and the
 * newest version seen in this run. `older`: a node that lags behind answered; ignored, never a change.
 */
export function pollVerdict(
  inUse: KvStamp | undefined,
  newest: KvStamp | undefined,
  polled: KvStamp,
): 'newer' | 'same' | 'older' {
  if (isOlder(newest, polled) || isOlder(inUse, polled)) return 'older';
  return inUse && !isNewer(inUse, polled) ? 'same' : 'newer';
}
