import type { NameSet } from '../env/names.js';

/**
 * `NAME=vault:login`: the command gets a Vault token of its own in NAME — a child of vaultrun's token, created
 * at start (vault/child-token.ts) — for an app that talks to Vault itself. Explicit, never implicit: only a
 * value that is exactly `vault:login`. It is not a reference (no `#KEY`): it is found here, before references
 * are parsed, and left out of the plan.
 *
 * `VAULT_TOKEN=vault:login` (and `BAO_TOKEN=vault:login`), the form bank-vaults vault-env uses, is accepted too:
 * no token is exactly that text, so the value cannot be vaultrun's own credential; vaultrun then logs in by
 * other means (a token file, AppRole, …) and the command finds its token in VAULT_TOKEN. No other of vaultrun's
 * own settings can take it.
 */
export const LOGIN_REFERENCE = 'vault:login';

/** vaultrun's own settings that may ask for the command's token (the vault-env form). */
export const TOKEN_VARIABLES: readonly string[] = ['VAULT_TOKEN', 'BAO_TOKEN'];

export function isLoginReference(value: string | undefined): boolean {
  return value === LOGIN_REFERENCE;
}

/** Pure: the variables that ask for the command's token, sorted. */
export function loginVariables(
  env: Readonly<Record<string, string | undefined>>,
  passthrough: NameSet,
  isOwnSetting: (name: string) => boolean,
): string[] {
  return Object.keys(env)
    .filter(
      (name) =>
        isLoginReference(env[name]) &&
        !passthrough.has(name) &&
        (!isOwnSetting(name) || TOKEN_VARIABLES.includes(name)),
    )
    .sort();
}
