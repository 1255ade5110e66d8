import { parse } from 'dotenv';
import { VaultrunError } from '../errors.js';
import { NotReadable, type ReadAs, readAsProblem, readLimited } from './read-limited.js';
import { envTextProblem } from './text.js';

/**
 * Where variables come from: the process environment and `--env-file`s (dotenv syntax; values may hold
 * references, e.g. a file a Vault Agent sidecar renders).
 *
 * Precedence (documented in docs/files.md): by default the process environment wins over env files — as in
 * docker compose, where `environment:` beats `env_file:` — and a later env file wins over an earlier one.
 * With `--env-file-override` the files win over the process environment.
 */
export interface EnvFile {
  path: string;
  vars: Record<string, string>;
}

/** Largest env file read (1 MiB): more than an environment can hold anyway. */
export const MAX_ENV_FILE_BYTES = 1024 * 1024;

/**
 * `onText`: called with the whole text read (the supervisor hashes exactly what was resolved). `as` (--user):
 * read as that user, so that the command never gets a content it could not read itself (read-limited.ts).
 */
export async function readEnvFile(
  path: string,
  onText?: (text: string) => void,
  as?: ReadAs,
): Promise<EnvFile> {
  let bytes: Buffer;
  try {
    // A pipe is read to its end (`--env-file <(cmd)`); devices, sockets, directories and huge files are refused.
    bytes = await readLimited(path, MAX_ENV_FILE_BYTES, { allowFifo: true, ...(as ? { as } : {}) });
  } catch (error) {
    const asUser = readAsProblem(error, as);
    if (asUser) {
      throw new VaultrunError('IO', `env file ${path} ${asUser.problem}`, {
        hint: `${asUser.hint} (--env-file / VAULTRUN_ENV_FILE)`,
      });
    }
    const message =
      error instanceof NotReadable
        ? `env file ${path} ${error.problem}`
        : `cannot read env file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
    throw new VaultrunError('IO', message, { hint: 'check --env-file / VAULTRUN_ENV_FILE' });
  }
  const text = envFileText(path, bytes);
  onText?.(text);
  return { path, vars: parseEnvFile(text) };
}

/** Pure: the env file's text, or a USAGE error when its bytes cannot be values exactly (not UTF-8, NUL). */
function envFileText(path: string, bytes: Buffer): string {
  const problem = envTextProblem(bytes);
  if (problem !== undefined) {
    throw new VaultrunError('USAGE', `env file ${path} ${problem}: its values cannot be passed on exactly`, {
      hint: 'write the file as UTF-8 text; a binary secret can go to the command as a file (NAME_FILE=…)',
    });
  }
  return bytes.toString('utf8');
}

/**
 * An env file read exactly as `dotenv.parse` (the installed dotenv) reads it — quotes, multi-line quoted values,
 * `export `, `KEY: value`, CR LF, comments — with one difference, as in docker compose env files: a `#` that
 * directly follows a character other than whitespace or a quote (`'`, `"`, `` ` ``) does not start a comment,
 * so `DB_PASSWORD=vault:secret/db#password` keeps its `#password` (dotenv ends an unquoted value at any `#`).
 *
 * Done by letting dotenv parse the text with each such `#` swapped for a character the text does not contain,
 * then swapping it back in the values: which lines belong to which value is decided by dotenv alone, so a line
 * inside a quoted value never defines or overrides a variable. Such a `#` can only matter in an unquoted value:
 * inside quotes every character is literal to dotenv's matching, and a `#` after a closing quote or after
 * whitespace (where a comment may start after a quoted value) is never swapped. Nor is a `#` followed by U+2028
 * or U+2029 on its line: dotenv ends a comment (but not an unquoted value) there, and a variable may follow.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const glued = /(?<=[^\s'"`])#(?=[^\n\r\u2028\u2029]*(?:[\n\r]|$))/g;
  if (!glued.test(text)) return { ...parse(text) };
  const stand = unusedCharacter(text);
  const parsed = parse(text.replace(glued, stand));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) out[name] = value.replaceAll(stand, '#');
  return out;
}

/** A private-use character that does not occur in `text` (not whitespace, not a word, quote or line character). */
function unusedCharacter(text: string): string {
  for (const [from, to] of [
    [0xe000, 0xf8ff],
    [0xf0000, 0xffffd],
  ] as const) {
    for (let c = from; c <= to; c++) {
      const ch = String.fromCodePoint(c);
      if (!text.includes(ch)) return ch;
    }
  }
  throw new VaultrunError('INTERNAL', 'env file: every private-use character occurs in it');
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
