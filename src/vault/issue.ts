import { VaultrunError } from '../errors.js';
import { encodeApiPath } from '../refs/path.js';
import type { ReadRequest } from '../refs/plan.js';
import { canonicalJson } from '../refs/write.js';
import type { VaultClient } from './client.js';
import type { MountResolver, SecretRead } from './kv.js';
import { leaseTerms } from './lease-terms.js';

/**
 * Issue-on-start writes (refs/write.ts): one POST per unique (path, body). Only to `issue/ROLE` of a mount that
 * Vault reports as a PKI engine — whatever the path is called, in any namespace. PKI's answer is kept as the
 * "secret": certificate, private_key, issuing_ca, serial_number, expiration, and ca_chain as PEM text (the
 * certificates one after the other, as a chain file holds them). A role with generate_lease=true gives a lease
 * (tracked, revoked at exit like any other); without one the certificate is re-issued on schedule
 * (run/rotation/scheduled.ts) and left to expire.
 */
export async function checkWritable(mounts: MountResolver, read: Pick<ReadRequest, 'path'>): Promise<void> {
  const mount = await mounts.mountFor(read.path);
  // A policy that denies even the mount look-up grants no write in that mount either (OpenBao answers the
  // look-up for any token with a capability in the mount): a denial (exit 77), not a usage error — without
  // sending the write.
  if (!mount && mounts.lookupDenied(read.path)) {
    throw new VaultrunError(
      'PERMISSION_DENIED',
      `permission denied while looking up the mount of ${read.path}`,
      {
        hint: `the token's policies must allow it: path "${read.path}" { capabilities = ["update"] }`,
      },
    );
  }
  const rest = mount && read.path.startsWith(mount.path) ? read.path.slice(mount.path.length) : undefined;
  if (mount?.type !== 'pki' || rest === undefined || !/^issue\/[^/]+$/.test(rest)) {
    throw new VaultrunError(
      'USAGE',
      `${read.path} is not writable by a reference: writes go only to issue/ROLE of a PKI mount${mount ? ` (${mount.path} is a ${mount.type} engine)` : ' (Vault did not say which mount it is in)'}`,
      {
        hint: 'use >>vault:PKI_MOUNT/issue/ROLE#FIELD#{…}; the token needs read on sys/internal/ui/mounts (the default policy grants it)',
      },
    );
  }
}

/** PKI's answer; its lease fields are checked by leaseTerms. */
interface IssueBody {
  data?: Record<string, unknown> | null;
}

/** Pure: PKI's answer as fields a variable can take (ca_chain as PEM text). */
export function issuedData(data: Record<string, unknown>): Record<string, unknown> {
  const chain = data.ca_chain;
  if (!Array.isArray(chain) || !chain.every((c) => typeof c === 'string')) return data;
  return { ...data, ca_chain: chain.map((c) => `${c.trim()}\n`).join('') };
}

export async function issueSecret(
  client: VaultClient,
  mounts: MountResolver,
  token: string,
  read: Pick<ReadRequest, 'path' | 'write'>,
): Promise<SecretRead> {
  await checkWritable(mounts, read);
  const body = read.write?.body ?? {};
  let answer: IssueBody;
  try {
    answer = await client.request<IssueBody>('POST', encodeApiPath(read.path), {
      token,
      what: `issuing with ${read.path}`,
      body,
    });
  } catch (error) {
    if (error instanceof VaultrunError && error.code === 'PERMISSION_DENIED') {
      throw new VaultrunError('PERMISSION_DENIED', `permission denied writing ${read.path}`, {
        cause: error,
        hint: `the token's policies must allow it: path "${read.path}" { capabilities = ["update"] }`,
      });
    }
    if (error instanceof VaultrunError && (error.code === 'VAULT_ERROR' || error.code === 'NOT_FOUND')) {
      throw new VaultrunError(
        error.code,
        `${read.path} refused the write ${canonicalJson(body)}: ${error.message}`,
        {
          cause: error,
          hint: 'check the role (vault read PKI_MOUNT/roles/ROLE) and the fields of the body',
        },
      );
    }
    throw error;
  }
  if (!answer?.data || typeof answer.data !== 'object') {
    throw new VaultrunError('VAULT_ERROR', `${read.path} answered without data`);
  }
  return { data: issuedData(answer.data), ...leaseTerms(answer, `issuing with ${read.path}`) };
}
