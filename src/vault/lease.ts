import { encodeApiPath } from '../refs/path.js';
import type { VaultClient } from './client.js';
import type { KvStamp } from './consistency.js';
import type { MountInfo } from './kv.js';
import { leaseTerms } from './lease-terms.js';

/**
 * The calls a resident vaultrun makes besides reads: renewing and revoking its token and the leases of dynamic
 * secrets, and asking a KV v2 path for its current version (metadata, not the secret itself).
 */
interface AuthBody {
  auth?: unknown;
}

/** Renews our token; returns the new TTL in seconds and whether it can be renewed again. */
export async function renewSelf(
  client: VaultClient,
  token: string,
  waitMs: number,
): Promise<{ ttl: number; renewable: boolean }> {
  const what = 'renewing the token (auth/token/renew-self)';
  const body = await client.request<AuthBody>('POST', 'auth/token/renew-self', {
    token,
    body: {},
    what,
    waitMs,
  });
  const terms = leaseTerms(body?.auth, what);
  return { ttl: terms.leaseDuration, renewable: terms.renewable };
}

/** Renews a lease by `incrementS`; Vault may grant less (max TTL): the granted duration is returned. */
export async function renewLease(
  client: VaultClient,
  token: string,
  leaseId: string,
  incrementS: number,
  path: string,
  waitMs: number,
): Promise<{ duration: number; renewable: boolean }> {
  const what = `renewing the lease of ${path}`;
  const body = await client.request<unknown>('PUT', 'sys/leases/renew', {
    token,
    body: { lease_id: leaseId, increment: incrementS },
    what,
    waitMs,
  });
  const terms = leaseTerms(body, what);
  return { duration: terms.leaseDuration, renewable: terms.renewable };
}

export async function revokeLease(
  client: VaultClient,
  token: string,
  leaseId: string,
  path: string,
  waitMs?: number,
): Promise<void> {
  await client.request('PUT', 'sys/leases/revoke', {
    token,
    body: { lease_id: leaseId },
    what: `revoking the lease of ${path}`,
    ...(waitMs === undefined ? {} : { waitMs }),
  });
}

export async function revokeSelf(client: VaultClient, token: string, waitMs?: number): Promise<void> {
  await client.request('POST', 'auth/token/revoke-self', {
    token,
    body: {},
    what: 'revoking the token (auth/token/revoke-self)',
    ...(waitMs === undefined ? {} : { waitMs }),
  });
}

/** Pure: MOUNT/metadata/REST for a KV v2 path (also when the user wrote MOUNT/data/REST). */
export function metadataPathFor(path: string, mount: MountInfo): string {
  const rest = path.slice(mount.path.length).replace(/^data\//, '');
  return encodeApiPath(`${mount.path}metadata/${rest}`);
}

/** The current version of a KV v2 secret and when it was written, from its metadata. */
export async function currentVersion(
  client: VaultClient,
  token: string,
  path: string,
  mount: MountInfo,
  waitMs: number,
): Promise<KvStamp | undefined> {
  const body = await client.request<{
    data?: { current_version?: number; versions?: Record<string, { created_time?: string } | undefined> };
  }>('GET', metadataPathFor(path, mount), {
    token,
    what: `checking the version of ${path}`,
    waitMs,
  });
  const version = body?.data?.current_version;
  if (typeof version !== 'number') return undefined;
  const createdTime = body?.data?.versions?.[String(version)]?.created_time;
  return { version, ...(typeof createdTime === 'string' ? { createdTime } : {}) };
}
