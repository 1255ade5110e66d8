import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  encodeApiPath,
  hasInnerReservedSegment,
  isReservedSegment,
  RESERVED_MOUNT_TYPES,
} from '../refs/path.js';
import type { ReadRequest } from '../refs/plan.js';
import type { VaultClient } from './client.js';
import type { KvStamp } from './consistency.js';
import { leaseTerms } from './lease-terms.js';

/**
 * Reading secrets the way `vault kv get` does: users write `secret/dify/db`; we ask which mount the path is in
 * (sys/internal/ui/mounts/PATH, as the Vault CLI does), and for KV v2 read MOUNT/data/REST. A path that already
 * has `data/` after the mount is read as it is (compatible with bank-vaults). Other engines
 * (database/creds/ROLE, …) are read with a plain GET and the key is looked up in `data`.
 */
export interface MountInfo {
  /** With a trailing slash, as Vault reports it: "secret/". */
  path: string;
  type: string;
  /** KV version, or undefined for other engines and unknown mounts. */
  kvVersion?: 1 | 2;
}

/**
 * Pure: the API path (each segment percent-encoded, `?version=N` added by us) and whether it is KV v2, for a
 * user path in a mount. The path must be in the reference grammar (refs/path.ts).
 */
export function apiPathFor(
  path: string,
  mount: MountInfo | undefined,
  version: number | undefined,
): { apiPath: string; kv2: boolean } {
  if (mount?.kvVersion !== 2 || !path.startsWith(mount.path)) {
    if (version !== undefined) {
      throw new VaultrunError(
        'USAGE',
        `path ${path} is not in a KV version 2 mount${mount ? ` (mount ${mount.path} is ${describe(mount)})` : ''}, so it has no versions`,
        { hint: 'remove the #VERSION part of the reference' },
      );
    }
    return { apiPath: encodeApiPath(path), kv2: false };
  }
  const rest = path.slice(mount.path.length);
  const dataPath = rest.startsWith('data/') ? `${mount.path}${rest}` : `${mount.path}data/${rest}`;
  return { apiPath: encodeApiPath(dataPath, version === undefined ? {} : { version }), kv2: true };
}

/**
 * Pure: refuses a read whose mount turned out to be one a reference may not read. A namespace prefix puts
 * Vault's own mounts under an innocent first segment (`ns1/auth/token/lookup-self` is ns1's token store), so
 * the parser's check of the first segment is not enough: the mount Vault reports decides. A path with a
 * reserved name further in (`ns1/sys/…`) whose mount Vault did not report is refused too (fail closed).
 */
export function checkMount(path: string, mount: MountInfo | undefined, lookupDenied = false): void {
  const refuse = (why: string) =>
    new VaultrunError('USAGE', `path ${path} is not readable by a reference: ${why}`, {
      hint: 'a reference may read secrets only, never sys/, auth/ (tokens, logins) or identity/, in any namespace',
    });
  if (mount === undefined) {
    if (!hasInnerReservedSegment(path)) return;
    // The policy denied even the look-up, so it does not grant reading the path either: a denied read is
    // "denied" (exit 77), whatever the path is called — without sending the read.
    if (lookupDenied) {
      throw new VaultrunError(
        'PERMISSION_DENIED',
        `permission denied while looking up the mount of ${path}`,
        {
          hint: 'the token\'s policies must grant "read" on this path (KV v2: on MOUNT/data/PATH)',
        },
      );
    }
    throw refuse('it has a sys, auth or identity segment and Vault did not say which mount it is in');
  }
  const inside = path === mount.path.replace(/\/$/, '') || path.startsWith(mount.path);
  if (
    RESERVED_MOUNT_TYPES.has(mount.type) ||
    mount.path.split('/').some(isReservedSegment) ||
    (!inside && hasInnerReservedSegment(path))
  ) {
    throw refuse(`it is in the ${mount.type} mount ${mount.path}`);
  }
}

/** Pure: the hint for a path with no secret: the mount it is in, and how to see what is there. */
export function notFoundHint(path: string, mount: MountInfo | undefined): string {
  if (!mount || !path.startsWith(mount.path)) {
    return 'no secrets engine is mounted at the start of this path (or the token may not look it up): list the mounts with `vault secrets list`';
  }
  const rest = path.slice(mount.path.length);
  // `vault kv list` takes the path without data/ (a KV v2 reference may be written with it).
  const logical = mount.kvVersion === 2 && rest.startsWith('data/') ? `${mount.path}${rest.slice(5)}` : path;
  const cut = logical.lastIndexOf('/');
  const parent = cut >= mount.path.length ? logical.slice(0, cut) : mount.path.replace(/\/$/, '');
  const list = mount.type === 'kv' ? 'vault kv list' : 'vault list';
  const listing = `it is in mount ${mount.path} (${describe(mount)}); list what is there with \`${list} ${parent}\``;
  if (mount.kvVersion !== 2 || !rest.startsWith('data/')) return listing;
  // The vault-env form MOUNT/data/NAME hides a secret whose own name starts with data/: say how to reach it.
  return `${listing}; data/ right after the mount is read as the KV v2 API path (secret NAME at MOUNT/data/NAME): a secret whose own name is ${rest} is written ${mount.path}data/${rest}`;
}

/** Pure: the policy rule a denied read needs (KV v2 reads go to MOUNT/data/PATH). */
export function policyHint(path: string, mount: MountInfo | undefined): string {
  let policyPath = path;
  if (mount?.kvVersion === 2 && path.startsWith(mount.path)) {
    const rest = path.slice(mount.path.length);
    policyPath = rest.startsWith('data/') ? path : `${mount.path}data/${rest}`;
  }
  return `the token's policies must allow it: path "${policyPath}" { capabilities = ["read"] }`;
}

function describe(mount: MountInfo): string {
  return mount.type === 'kv' ? `KV version ${mount.kvVersion ?? 1}` : `a ${mount.type} engine`;
}

interface MountBody {
  data?: { path?: string; type?: string; options?: { version?: string } | null };
}

/** Looks up mounts, caching per mount and sharing in-flight look-ups: one request per mount per resolution. */
export class MountResolver {
  private readonly mounts: MountInfo[] = [];
  private readonly inflight = new Map<string, Promise<MountInfo | undefined>>();
  /** Paths whose look-up the policy denied. */
  private readonly denied = new Set<string>();

  constructor(
    private readonly client: VaultClient,
    /** Replaced when the supervisor logs in again. */
    public token: string,
    private readonly log: Logger,
  ) {}

  private cached(path: string): MountInfo | undefined {
    return this.mounts
      .filter((m) => `${path}/`.startsWith(m.path))
      .sort((a, b) => b.path.length - a.path.length)[0];
  }

  /** Whether the policy denied looking up the mount of this path. */
  lookupDenied(path: string): boolean {
    return this.denied.has(path);
  }

  /**
   * Starts the look-up of `path`'s mount now, before anyone awaits it (a later mountFor of a path with the same
   * first segment shares it). Its failure is kept for that mountFor, never reported unhandled.
   */
  prefetch(path: string): void {
    this.mountFor(path).catch(() => {});
  }

  async mountFor(path: string): Promise<MountInfo | undefined> {
    const hit = this.cached(path);
    if (hit) return hit;
    // Paths sharing a first segment usually share a mount: wait for a look-up already under way first.
    const first = path.split('/')[0] ?? path;
    const pending = this.inflight.get(first);
    if (pending) {
      await pending;
      const again = this.cached(path);
      if (again) return again;
    }
    const lookup = this.lookup(path);
    if (!pending) this.inflight.set(first, lookup);
    return lookup;
  }

  private async lookup(path: string): Promise<MountInfo | undefined> {
    let body: MountBody;
    try {
      body = await this.client.request<MountBody>('GET', `sys/internal/ui/mounts/${encodeApiPath(path)}`, {
        token: this.token,
        what: `looking up the mount of ${path}`,
      });
    } catch (error) {
      if (
        error instanceof VaultrunError &&
        ['PERMISSION_DENIED', 'NOT_FOUND', 'VAULT_ERROR'].includes(error.code)
      ) {
        // As the Vault CLI does: no mount information → read the path as it is (KV v1 / other engine).
        if (error.code === 'PERMISSION_DENIED') this.denied.add(path);
        this.log.debug('mount look-up failed; reading the path as given', { path, code: error.code });
        return undefined;
      }
      throw error;
    }
    const data = body?.data;
    if (!data?.path) return undefined;
    const mountPath = data.path.endsWith('/') ? data.path : `${data.path}/`;
    const type = data.type ?? 'unknown';
    const kvVersion =
      type === 'kv' || type === 'generic' ? (data.options?.version === '2' ? 2 : 1) : undefined;
    const info: MountInfo = { path: mountPath, type, ...(kvVersion ? { kvVersion } : {}) };
    this.mounts.push(info);
    this.log.debug('mount', { path: mountPath, type, kv_version: kvVersion });
    return info;
  }
}

export interface SecretRead {
  data: Record<string, unknown>;
  /** Lease of a dynamic secret ("" for KV). */
  leaseId: string;
  leaseDuration: number;
  renewable: boolean;
  /** KV v2 version read. */
  version?: number;
  /** KV v2: when that version was written. */
  createdTime?: string;
}

interface ReadBody {
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  data?: Record<string, unknown> & {
    data?: Record<string, unknown> | null;
    metadata?: {
      version?: number;
      created_time?: string;
      deletion_time?: string;
      destroyed?: boolean;
    } | null;
  };
}

export async function readSecret(
  client: VaultClient,
  mounts: MountResolver,
  token: string,
  read: Pick<ReadRequest, 'path' | 'version'>,
): Promise<SecretRead> {
  const mount = await mounts.mountFor(read.path);
  checkMount(read.path, mount, mount === undefined && mounts.lookupDenied(read.path));
  const { apiPath, kv2 } = apiPathFor(read.path, mount, read.version);
  const label = read.version === undefined ? read.path : `${read.path} version ${read.version}`;
  // KV v2, latest version: an answer older than a version already seen in this run (a node that lags behind)
  // is asked again, within --wait, and never used.
  const floor = kv2 && read.version === undefined ? client.versions : undefined;
  const stale = (answer: unknown): string | undefined => {
    const stamp = stampOf(answer as ReadBody);
    if (!floor || !stamp || !floor.isOlder(read.path, stamp)) return undefined;
    return `version ${stamp.version} of ${read.path} is older than version ${floor.get(read.path)?.version} already seen (a node that lags behind)`;
  };
  let body: ReadBody;
  try {
    body = await client.request<ReadBody>('GET', apiPath, { token, what: `reading ${label}`, stale });
  } catch (error) {
    if (error instanceof VaultrunError && error.code === 'NOT_FOUND') {
      // KV v2 answers 404 for a deleted or destroyed version too: its metadata tells which.
      const gone = kv2 && mount ? await versionState(client, token, mount, read) : undefined;
      if (gone) throw goneVersion(label, gone.state, gone.version);
      throw new VaultrunError('NOT_FOUND', `no secret at ${label}`, {
        cause: error,
        hint: notFoundHint(read.path, mount),
      });
    }
    if (error instanceof VaultrunError && error.code === 'PERMISSION_DENIED') {
      throw new VaultrunError('PERMISSION_DENIED', `permission denied reading ${label}`, {
        cause: error,
        hint: policyHint(read.path, mount),
        ...(error.status ? { status: error.status } : {}),
      });
    }
    throw error;
  }
  const raw = body?.data;
  let data: Record<string, unknown> | undefined;
  let version: number | undefined;
  if (kv2) {
    const meta = raw?.metadata;
    if (raw?.data == null) {
      const state = meta?.destroyed ? 'destroyed' : meta?.deletion_time ? 'deleted' : 'empty';
      throw goneVersion(label, state, meta?.version ?? read.version);
    }
    data = raw.data;
    version = meta?.version;
    const stamp = stampOf(body);
    if (floor && stamp) floor.note(read.path, stamp);
  } else {
    data = raw;
  }
  if (!data || typeof data !== 'object') throw new VaultrunError('NOT_FOUND', `no data at ${label}`);
  return {
    data,
    ...leaseTerms(body, `reading ${label}`),
    ...(version === undefined ? {} : { version }),
    ...(kv2 && raw?.metadata?.created_time ? { createdTime: raw.metadata.created_time } : {}),
  };
}

/** The error for a KV v2 version without data: what to do depends on whether it can be brought back. */
function goneVersion(
  label: string,
  state: 'deleted' | 'destroyed' | 'empty',
  version: number | undefined,
): VaultrunError {
  const versions = version === undefined ? '' : ` -versions=${version}`;
  return new VaultrunError('NOT_FOUND', `the secret at ${label} is ${state}`, {
    hint:
      state === 'destroyed'
        ? 'a destroyed version cannot be brought back: reference another version, or write the secret again'
        : state === 'deleted'
          ? `undelete it (vault kv undelete${versions}) or reference another version`
          : 'write the secret again or reference another version',
  });
}

/**
 * After a 404 from MOUNT/data/PATH: whether the version asked for (the current one without a version) exists
 * but is deleted or destroyed, from MOUNT/metadata/PATH. Undefined when it does not say so, or cannot be read
 * (the metadata needs its own grant): the caller reports "no secret" then.
 */
async function versionState(
  client: VaultClient,
  token: string,
  mount: MountInfo,
  read: Pick<ReadRequest, 'path' | 'version'>,
): Promise<{ state: 'deleted' | 'destroyed'; version: number } | undefined> {
  const rest = read.path.slice(mount.path.length).replace(/^data\//, '');
  let body: {
    data?: {
      current_version?: number;
      versions?: Record<string, { deletion_time?: string; destroyed?: boolean }>;
    };
  };
  try {
    body = await client.request('GET', encodeApiPath(`${mount.path}metadata/${rest}`), {
      token,
      what: `reading the versions of ${read.path}`,
    });
  } catch {
    return undefined;
  }
  const version = read.version ?? body?.data?.current_version;
  const entry = version === undefined ? undefined : body?.data?.versions?.[String(version)];
  if (version === undefined || !entry) return undefined;
  if (entry.destroyed) return { state: 'destroyed', version };
  if (entry.deletion_time) return { state: 'deleted', version };
  return undefined;
}

/** The version and created_time of a KV v2 read answer, when it has them. */
function stampOf(body: ReadBody | undefined): KvStamp | undefined {
  const meta = body?.data?.metadata;
  if (typeof meta?.version !== 'number') return undefined;
  return {
    version: meta.version,
    ...(typeof meta.created_time === 'string' ? { createdTime: meta.created_time } : {}),
  };
}
