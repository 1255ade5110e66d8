import { isAbsolute, normalize } from 'node:path';
import { VaultrunError } from '../errors.js';
import { isLoginReference } from '../refs/login.js';
import { parseValue } from '../refs/parse.js';
import { isFileVariable } from '../refs/plan.js';
import type { NameSet } from './names.js';
import { NotReadable, type ReadAs, readAsProblem, readLimited } from './read-limited.js';
import { envTextProblem } from './text.js';

/**
 * `NAME_FILE=/some/path` (a plain path, not a reference): the file's content, one trailing newline removed,
 * becomes NAME and NAME_FILE is removed — for apps such as Dify that read only NAME (docker/k8s secrets,
 * files a sidecar renders). Like the official images' `file_env`, NAME and NAME_FILE both set is an error.
 *
 * Scope: only paths under the secret directories (VAULTRUN_FILE_ENV_DIRS; default /run/secrets — Docker and
 * compose secrets —, /var/run/secrets — Kubernetes —, /vault/secrets — the Vault Agent injector). Many other
 * `*_FILE` variables are not secrets at all (LOG_FILE, TF_CLI_CONFIG_FILE, SSL_CERT_FILE, AWS_CONFIG_FILE…)
 * and converting them would break the app; set VAULTRUN_FILE_ENV_DIRS=/ to convert every one. Within scope
 * a missing file is an error (fail closed). Excluded names (default AWS_WEB_IDENTITY_TOKEN_FILE, which AWS
 * SDKs read as a path) and our own settings are never converted. `--no-file-env` turns all of this off.
 */
export const MAX_FILE_ENV_BYTES = 64 * 1024;

export interface FileEnvOptions {
  /** Directories whose files are converted; "/" for all. */
  dirs: readonly string[];
  exclude: ReadonlySet<string>;
  passthrough: NameSet;
  isOwnSetting: (name: string) => boolean;
}

export interface FileEnvSource {
  /** DB_PASSWORD_FILE */
  fileVar: string;
  /** DB_PASSWORD */
  name: string;
  path: string;
}

function skip(name: string, options: FileEnvOptions): boolean {
  return (
    !isFileVariable(name) ||
    options.exclude.has(name) ||
    options.passthrough.has(name) ||
    options.isOwnSetting(name)
  );
}

/** Pure: is the path inside one of the directories (lexically, after normalisation)? */
export function inScope(path: string, dirs: readonly string[]): boolean {
  if (!isAbsolute(path)) return false;
  const p = normalize(path);
  return dirs.some((d) => {
    const dir = normalize(d).replace(/\/+$/, '');
    return dir === '' || p.startsWith(`${dir}/`);
  });
}

/** Pure: which `*_FILE` variables to convert, and the NAME/NAME_FILE conflicts (both directions). */
export function planFileEnv(env: Readonly<Record<string, string>>, options: FileEnvOptions): FileEnvSource[] {
  const sources: FileEnvSource[] = [];
  for (const fileVar of Object.keys(env).sort()) {
    const path = env[fileVar];
    if (path === undefined || path === '' || skip(fileVar, options)) continue;
    const isRef = isLoginReference(path) || parseValue(fileVar, path).kind !== 'plain';
    if (!isRef && !inScope(path, options.dirs)) continue;
    const name = fileVar.slice(0, -'_FILE'.length);
    if (env[name] !== undefined && env[name] !== '') {
      throw new VaultrunError('USAGE', `both ${name} and ${fileVar} are set`, {
        hint: `set only one of them (or add ${fileVar} to VAULTRUN_FILE_ENV_EXCLUDE, or use --no-file-env)`,
      });
    }
    if (isRef) continue; // a reference: resolved and written to a secret file later
    sources.push({ fileVar, name, path });
  }
  return sources;
}

/**
 * Reads one source (at most MAX_FILE_ENV_BYTES), removing one trailing newline. Anything but a regular file
 * (symlinks to one are followed) — FIFO, device, socket, directory — or a larger one is an error at once,
 * naming the variable and the path: never a hang, never an endless read. `onText`: called with the whole text
 * read (the supervisor hashes exactly what was resolved). `as` (--user): read as that user, so that the command
 * never gets a content it could not read itself (read-limited.ts).
 */
export async function readFileEnvSource(
  source: FileEnvSource,
  onText?: (text: string) => void,
  as?: ReadAs,
): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readLimited(source.path, MAX_FILE_ENV_BYTES, as ? { as } : {});
  } catch (error) {
    if (error instanceof NotReadable) {
      const large = error.problem.startsWith('is larger');
      throw new VaultrunError('IO', `${source.fileVar}: ${source.path} ${error.problem}`, {
        hint: large
          ? `an environment variable cannot hold it; exclude ${source.fileVar} with VAULTRUN_FILE_ENV_EXCLUDE`
          : `point ${source.fileVar} at a regular file, or exclude it with VAULTRUN_FILE_ENV_EXCLUDE`,
      });
    }
    const asUser = readAsProblem(error, as);
    if (asUser) {
      throw new VaultrunError('IO', `${source.fileVar}: ${source.path} ${asUser.problem}`, {
        hint: asUser.hint,
      });
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError('IO', `${source.fileVar}: cannot read ${source.path}: ${code}`, {
      hint: `fix the path, or exclude ${source.fileVar} with VAULTRUN_FILE_ENV_EXCLUDE / --no-file-env`,
    });
  }
  // The variable gets the file's content exactly, or nothing: bytes that are not UTF-8 (which would become
  // U+FFFD) and NUL (which no environment holds) are refused, as the filters refuse them.
  const problem = envTextProblem(bytes);
  if (problem !== undefined) {
    throw new VaultrunError(
      'USAGE',
      `${source.fileVar}: ${source.path} ${problem}, so ${source.name} cannot hold it exactly`,
      {
        hint: `let the command read the file itself: exclude ${source.fileVar} with VAULTRUN_FILE_ENV_EXCLUDE (it is then passed on as it is)`,
      },
    );
  }
  const text = bytes.toString('utf8');
  onText?.(text);
  return text.replace(/\r?\n$/, '');
}

/** Pure: NAME set from the file's content, NAME_FILE removed. */
export function applyFileEnv(
  env: Readonly<Record<string, string>>,
  contents: ReadonlyArray<{ source: FileEnvSource; value: string }>,
): Record<string, string> {
  const out = { ...env };
  for (const { source, value } of contents) {
    delete out[source.fileVar];
    out[source.name] = value;
  }
  return out;
}
