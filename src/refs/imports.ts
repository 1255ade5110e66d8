import { VaultrunError } from '../errors.js';
import { secretToString } from './filters.js';
import { readId } from './parse.js';
import { PATH_CHARACTERS, pathProblem } from './path.js';

/**
 * Bulk import (`--from-path` / VAULTRUN_FROM_PATH, vault-env's VAULT_ENV_FROM_PATH): every key of a secret becomes
 * a variable. An item is
 *
 *   PATH[#VERSION][|prefix=PREFIX]          e.g. secret/dify/api   secret/dify/api#3   secret/dify/api|prefix=DIFY_
 *
 * (PATH in the grammar of path.ts, which has no '#' and no '|'; items are separated by commas in the
 * environment, so a path with a comma cannot be imported). Key → name: PREFIX + KEY, unchanged (no case
 * change). A name that is not [A-Za-z_][A-Za-z0-9_]*, or that is one of our own settings (VAULT_*, VAULTRUN_*,
 * …), is skipped with a warning naming the key and the path. A variable set explicitly (process environment,
 * env files, a reference) wins over an imported one; two imports defining one name is an error naming both.
 * Imported values are values: never parsed as references, never turned into files.
 */
export interface ImportSpec {
  path: string;
  version?: number;
  prefix: string;
  /** The item as normalized text (for messages and check): PATH[#VERSION][|prefix=P]. */
  label: string;
}

export const IMPORT_SETTING = 'VAULTRUN_FROM_PATH';
const IMPORT_GRAMMAR =
  'expected PATH, PATH#VERSION, or either followed by |prefix=PREFIX (e.g. secret/dify/api|prefix=DIFY_)';
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(n: number, problem: string, hint = IMPORT_GRAMMAR): VaultrunError {
  return new VaultrunError('USAGE', `--from-path / ${IMPORT_SETTING} item ${n}: ${problem}`, { hint });
}

/** Pure: one item (1-based position `n`, for messages that never quote the item). */
export function parseImport(item: string, n: number): ImportSpec {
  const [target = '', ...options] = item.trim().split('|');
  const [rawPath = '', rawVersion, ...extra] = target.split('#');
  if (extra.length > 0) throw bad(n, "too many '#'");
  const path = rawPath.replace(/^\/+/, '').replace(/\/+$/, '');
  const problem = pathProblem(path);
  if (problem) {
    throw bad(n, problem, `a path is segments separated by single '/', made of ${PATH_CHARACTERS}`);
  }
  let version: number | undefined;
  if (rawVersion !== undefined) {
    if (!/^[1-9][0-9]{0,9}$/.test(rawVersion)) throw bad(n, 'version must be a positive whole number');
    version = Number(rawVersion);
  }
  let prefix = '';
  for (const option of options) {
    if (!option.startsWith('prefix=')) throw bad(n, 'unknown option (the only one is prefix=PREFIX)');
    prefix = option.slice('prefix='.length);
    if (prefix !== '' && !VARIABLE_NAME.test(prefix)) {
      throw bad(n, 'a prefix is made of letters, digits and _, and does not start with a digit');
    }
  }
  const label = `${path}${version === undefined ? '' : `#${version}`}${prefix ? `|prefix=${prefix}` : ''}`;
  return { path, ...(version === undefined ? {} : { version }), prefix, label };
}

/** Pure: every item, in order. */
export function parseImports(items: readonly string[]): ImportSpec[] {
  return items.filter((item) => item.trim() !== '').map((item, i) => parseImport(item, i + 1));
}

/** What the imports of a plan give, from what was read. Pure. */
export interface ImportOutcome {
  /** Name → value, and where it came from. */
  vars: Array<{ name: string; value: string; from: ImportSpec; key: string }>;
  /** Keys not imported, and why (never a value). */
  skipped: Array<{
    name: string;
    key: string;
    from: ImportSpec;
    reason: 'invalid name' | 'own setting' | 'explicit';
  }>;
  /** Imports whose read failed. */
  failed: Array<{ from: ImportSpec; error: VaultrunError }>;
  /** Names two imports define. */
  conflicts: VaultrunError[];
}

export type ReadData = { data: Readonly<Record<string, unknown>> } | { error: VaultrunError };

export function importVariables(
  imports: readonly ImportSpec[],
  results: ReadonlyMap<string, ReadData>,
  explicit: ReadonlySet<string>,
  isOwnSetting: (name: string) => boolean,
): ImportOutcome {
  const out: ImportOutcome = { vars: [], skipped: [], failed: [], conflicts: [] };
  const definedBy = new Map<string, ImportSpec>();
  for (const spec of imports) {
    const result = results.get(readId(spec));
    if (result === undefined) {
      out.failed.push({
        from: spec,
        error: new VaultrunError('INTERNAL', `no read was made for ${spec.path}`),
      });
      continue;
    }
    if ('error' in result) {
      out.failed.push({ from: spec, error: result.error });
      continue;
    }
    for (const key of Object.keys(result.data).sort()) {
      const name = `${spec.prefix}${key}`;
      const skip = (reason: ImportOutcome['skipped'][number]['reason']) =>
        out.skipped.push({ name, key, from: spec, reason });
      if (!VARIABLE_NAME.test(name)) skip('invalid name');
      else if (isOwnSetting(name)) skip('own setting');
      else if (explicit.has(name)) skip('explicit');
      else {
        const other = definedBy.get(name);
        if (other) {
          out.conflicts.push(
            new VaultrunError(
              'USAGE',
              `${name}: imported from both ${other.path} and ${spec.path} (--from-path / ${IMPORT_SETTING})`,
              {
                hint: 'give one of the imports a prefix (PATH|prefix=PREFIX), or set the variable explicitly',
              },
            ),
          );
          continue;
        }
        definedBy.set(name, spec);
        out.vars.push({ name, value: secretToString(result.data[key]), from: spec, key });
      }
    }
  }
  return out;
}
