import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import type { VaultClient } from './client.js';
import { leaseTerms } from './lease-terms.js';

/**
 * The command's own token (`NAME=vault:login`): a child of vaultrun's token, created with auth/token/create —
 * a bounded TTL (--child-token-ttl), the policies chosen (--child-token-policies; by default those of
 * vaultrun's token except `root`), renewable. Being a child, it is revoked with vaultrun's token; vaultrun also
 * revokes it itself on exit (a token it was given in VAULT_TOKEN is never revoked).
 */
export interface ChildToken {
  token: string;
  accessor: string;
  ttlS: number;
  renewable: boolean;
  policies: string[];
  /** vaultrun's token it was created under (it dies with it). */
  parent: string;
}

export interface ChildTokenSettings {
  ttlS: number;
  policies?: string[];
}

/**
 * Pure: the policies of the child token: the ones chosen, or else the parent's except `root` (a command never
 * gets a root token by default); `default` when nothing is left.
 */
export function childPolicies(parent: readonly string[], chosen?: readonly string[]): string[] {
  if (chosen && chosen.length > 0) return [...new Set(chosen)];
  const kept = [...new Set(parent.filter((p) => p !== 'root'))];
  return kept.length > 0 ? kept : ['default'];
}

interface AuthBody {
  auth?: {
    client_token?: string;
    accessor?: string;
    lease_duration?: number;
    renewable?: boolean;
    policies?: string[];
  };
}

export async function createChildToken(
  client: VaultClient,
  parent: string,
  settings: ChildTokenSettings,
  log: Logger,
): Promise<ChildToken> {
  let policies: string[];
  if (settings.policies && settings.policies.length > 0) {
    policies = childPolicies([], settings.policies);
  } else {
    const self = await client.request<{ data?: { policies?: unknown } }>('GET', 'auth/token/lookup-self', {
      token: parent,
      what: "looking up vaultrun's token's policies (auth/token/lookup-self)",
    });
    const own = Array.isArray(self?.data?.policies)
      ? self.data.policies.filter((p): p is string => typeof p === 'string')
      : [];
    policies = childPolicies(own);
    if (own.includes('root')) {
      log.warn("vaultrun's token has the root policy, which the command's token never gets by default", {
        policies: policies.join(','),
        hint: 'choose its policies with VAULTRUN_CHILD_TOKEN_POLICIES',
      });
    }
  }
  let body: AuthBody | undefined;
  try {
    body = await client.request<AuthBody>('POST', 'auth/token/create', {
      token: parent,
      body: {
        policies,
        ttl: `${settings.ttlS}s`,
        renewable: true,
        display_name: 'vaultrun-command',
      },
      what: "creating the command's token (auth/token/create, for NAME=vault:login)",
    });
  } catch (error) {
    if (error instanceof VaultrunError && error.code === 'PERMISSION_DENIED') {
      throw new VaultrunError('PERMISSION_DENIED', error.message, {
        cause: error,
        hint: 'NAME=vault:login needs path "auth/token/create" { capabilities = ["update"] } in a policy of vaultrun\'s token (the default policy does not grant it)',
      });
    }
    throw error;
  }
  const auth = body?.auth;
  if (!auth?.client_token || !auth.accessor) {
    throw new VaultrunError('VAULT_ERROR', "creating the command's token: Vault's answer holds no token");
  }
  log.masker.add(auth.client_token);
  const terms = leaseTerms(auth, "creating the command's token (auth/token/create)");
  const ttlS = auth.lease_duration === undefined ? settings.ttlS : terms.leaseDuration;
  log.info("created the command's token (NAME=vault:login)", {
    ttl_s: ttlS,
    policies: (auth.policies ?? policies).join(','),
  });
  return {
    token: auth.client_token,
    accessor: auth.accessor,
    ttlS,
    renewable: terms.renewable,
    policies: auth.policies ?? policies,
    parent,
  };
}
