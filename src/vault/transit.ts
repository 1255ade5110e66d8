import { VaultrunError } from '../errors.js';
import { pathProblem } from '../refs/path.js';
import type { ReadRequest } from '../refs/plan.js';
import { PLAINTEXT_KEY } from '../refs/transit.js';
import type { VaultClient } from './client.js';
import type { SecretRead } from './kv.js';

/**
 * Decrypting transit ciphertexts (refs/transit.ts): every ciphertext of a start in ONE request,
 * POST MOUNT/decrypt/KEY with `batch_input`. Transit answers base64: decoded here as UTF-8 text. Per-item
 * failures (a ciphertext made with another key, a corrupted one) fail that ciphertext's variables only.
 */
export interface TransitSettings {
  mount: string;
  key?: string | undefined;
}

/** Pure: the API path for decrypting, or a USAGE error naming the setting at fault. */
export function decryptPath(settings: TransitSettings): string {
  const mount = settings.mount.replace(/^\/+|\/+$/g, '');
  const problem = mount === '' ? 'it is empty' : pathProblem(mount);
  if (problem) {
    throw new VaultrunError('USAGE', `--transit-mount: invalid mount path: ${problem}`, {
      hint: 'set VAULTRUN_TRANSIT_MOUNT (or VAULT_TRANSIT_PATH) to the path the transit engine is mounted at, e.g. transit',
    });
  }
  const key = settings.key ?? '';
  if (key === '') {
    throw new VaultrunError(
      'USAGE',
      'a transit ciphertext (vault:v1:…) is in the environment but no transit key is set',
      {
        hint: 'set VAULTRUN_TRANSIT_KEY (or VAULT_TRANSIT_KEY_ID, or --transit-key) to the name of the key that encrypted it',
      },
    );
  }
  if (!/^[A-Za-z0-9_.@+=~-]+$/.test(key) || /^\.+$/.test(key)) {
    throw new VaultrunError('USAGE', '--transit-key: invalid key name (one path segment expected)', {
      hint: 'a transit key name is letters, digits and - _ . @ + = ~',
    });
  }
  return `${mount}/decrypt/${key}`;
}

interface DecryptBody {
  data?: { batch_results?: Array<{ plaintext?: string; error?: string }> };
}

/** Decrypts the ciphertext reads at once; one result (secret or error) per read id. */
export async function decryptAll(
  client: VaultClient,
  token: string,
  settings: TransitSettings,
  reads: readonly Pick<ReadRequest, 'id' | 'ciphertext'>[],
): Promise<Map<string, SecretRead | VaultrunError>> {
  const out = new Map<string, SecretRead | VaultrunError>();
  if (reads.length === 0) return out;
  const path = decryptPath(settings);
  let body: DecryptBody;
  try {
    body = await client.request<DecryptBody>('POST', path, {
      token,
      what: `decrypting ${reads.length} transit ciphertext${reads.length === 1 ? '' : 's'} with ${path}`,
      // A ciphertext that fails (another key) answers 400 for the whole batch unless asked otherwise: the
      // others still decrypt, each failure is its own variables' error.
      body: {
        batch_input: reads.map((r) => ({ ciphertext: r.ciphertext })),
        partial_failure_response_code: 200,
      },
    });
  } catch (error) {
    if (error instanceof VaultrunError && error.code === 'PERMISSION_DENIED') {
      throw new VaultrunError('PERMISSION_DENIED', `permission denied decrypting with ${path}`, {
        cause: error,
        hint: `the token's policies must allow it: path "${path}" { capabilities = ["update"] }`,
      });
    }
    if (error instanceof VaultrunError && (error.code === 'NOT_FOUND' || error.code === 'VAULT_ERROR')) {
      throw new VaultrunError(error.code, `could not decrypt with ${path}: ${error.message}`, {
        cause: error,
        hint: 'check the transit mount (--transit-mount) and key (--transit-key): `vault read MOUNT/keys/KEY`',
      });
    }
    throw error;
  }
  const results = body?.data?.batch_results ?? [];
  reads.forEach((read, i) => {
    const item = results[i];
    if (typeof item?.plaintext === 'string' && !item.error) {
      const plaintext = Buffer.from(item.plaintext, 'base64').toString('utf8');
      out.set(read.id, {
        data: { [PLAINTEXT_KEY]: plaintext },
        leaseId: '',
        leaseDuration: 0,
        renewable: false,
      });
    } else {
      // Transit's message says what is wrong with the ciphertext (never the plaintext).
      out.set(
        read.id,
        new VaultrunError(
          'VAULT_ERROR',
          `transit could not decrypt a ciphertext with ${path}: ${item?.error ?? 'no result'}`,
          {
            hint: 'was it encrypted with this key (--transit-key) and mount (--transit-mount)?',
          },
        ),
      );
    }
  });
  return out;
}
