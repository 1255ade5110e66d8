import { parse } from 'dotenv';
import { VaultrunError } from '../errors.js';
import { NotReadable, readLimited } from './read-limited.js';

/**
 * Where variables come from: the process environment and `--env-file`s (dotenv syntax; values may hold
 * references, e.g. a file a Vault Agent sidecar renders).
 *
 * Precedence (documented in the README): by default the process environment wins over env files — as in
 * docker compose, where `environment:` beats `env_file:` — and a later env file wins over an earlier one.
 * With `--env-file-override` the files win over the process environment.
 */
export interface EnvFile {
  path: string;
  vars: Record<string, string>;
}

/** Largest env file read (1 MiB): more than an environment can hold anyway. */
export const MAX_ENV_FILE_BYTES = 1024 * 1024;

export async function readEnvFile(path: string): Promise<EnvFile> {
  let text: string;
  try {
    // A pipe is read to its end (`--env-file <(cmd)`); devices, sockets, directories and huge files are refused.
    text = (await readLimited(path, MAX_ENV_FILE_BYTES, { allowFifo: true })).toString('utf8');
  } catch (error) {
    const message =
      error instanceof NotReadable
        ? `env file ${path} ${error.problem}`
        : `cannot read env file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
    throw new VaultrunError('IO', message, { hint: 'check --env-file / VAULTRUN_ENV_FILE' });
  }
  return { path, vars: keepHashes(text, parse(text)) };
}

const DEFINITION = /^\s*(?:export\s+)?([\w.-]+)\s*(?:=|:\s)\s*(.*)$/;

/**
 * dotenv ends an unquoted value at its first `#`, which cuts `DB_PASSWORD=vault:secret/db#password` to
 * `vault:secret/db`. As in docker compose env files, `#` starts a comment in an unquoted value only after
 * whitespace: where a name's last definition is unquoted, its value is taken up to ` #`.
 */
function keepHashes(text: string, vars: Record<string, string>): Record<string, string> {
  const last = new Map<string, string | undefined>();
  for (const line of text.split(/\r?\n/)) {
    const m = DEFINITION.exec(line);
    if (!m?.[1]) continue;
    const raw = m[2] ?? '';
    last.set(m[1], /^['"`#]/.test(raw) ? undefined : raw.replace(/\s+#.*$/, '').trim());
  }
  const out = { ...vars };
  for (const [name, value] of last) {
    // Only where dotenv cut the value at a '#' (not, say, a line inside a quoted multi-line value).
    if (value?.includes('#') && out[name] === value.slice(0, value.indexOf('#')).trim()) out[name] = value;
  }
  return out;
}

/** Pure merge. */
export function mergeEnv(
  processEnv: Readonly<Record<string, string | undefined>>,
  files: readonly EnvFile[],
  override: boolean,
): Record<string, string> {
  const fromFiles: Record<string, string> = {};
  for (const f of files) Object.assign(fromFiles, f.vars);
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) base[k] = v;
  return override ? { ...base, ...fromFiles } : { ...fromFiles, ...base };
}
