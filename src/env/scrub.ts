import { isCredentialVariable, isOwnSetting } from '../settings.js';
import type { NameSet } from './names.js';

/**
 * The child's environment never holds our credentials (VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID, their
 * _FILE forms, BAO_* spellings, VAULT_ADDR / BAO_ADDR holding a password — not even when listed in
 * VAULTRUN_PASSTHROUGH). Our other settings (every VAULT_* and VAULTRUN_* variable, the BAO_* ones we read) are
 * removed unless listed in VAULTRUN_PASSTHROUGH.
 */
export interface Scrubbed {
  env: Record<string, string>;
  removed: string[];
  /** Credentials listed in passthrough, which were removed anyway. */
  refusedPassthrough: string[];
}

export function scrubEnvironment(env: Readonly<Record<string, string>>, passthrough: NameSet): Scrubbed {
  const out: Scrubbed = { env: {}, removed: [], refusedPassthrough: [] };
  for (const [name, value] of Object.entries(env)) {
    if (isCredentialVariable(name, value)) {
      out.removed.push(name);
      if (passthrough.has(name)) out.refusedPassthrough.push(name);
    } else if (isOwnSetting(name) && !passthrough.has(name)) {
      out.removed.push(name);
    } else {
      out.env[name] = value;
    }
  }
  out.removed.sort();
  return out;
}
