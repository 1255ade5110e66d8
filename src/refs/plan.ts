import type { NameSet } from '../env/names.js';
import { VaultrunError } from '../errors.js';
import { missingKeyHint } from '../suggest.js';
import { applyFilters, FILTER_HINT, type Piece, pieceText, secretToString } from './filters.js';
import { IMPORT_SETTING, type ImportOutcome, type ImportSpec, importVariables } from './imports.js';
import { type ParsedValue, parseValue, type Ref, readId, refsOf } from './parse.js';

/**
 * The request plan, pure: environment in → which variables hold references → the unique reads.
 * And the other half: (plan, what was read) → values per variable. No Vault, no filesystem here.
 */
export interface PlanOptions {
  /** Variables left untouched even if they look like references. */
  passthrough: NameSet;
  /** `NAME_FILE=vault:…` writes the secret to a file and sets NAME_FILE to its path. */
  fileEnv: boolean;
  /** Our own settings (VAULT_*, VAULTRUN_*, …) are never resolved: they configure us and are scrubbed. */
  isOwnSetting: (name: string) => boolean;
  /** Bulk imports (--from-path): every key of these secrets becomes a variable (imports.ts). */
  imports?: readonly ImportSpec[];
}

export interface PlannedVar {
  name: string;
  parsed: Exclude<ParsedValue, { kind: 'plain' }>;
  /** 'file': the value is written to a secret file and the variable is set to the file's path. */
  target: 'env' | 'file';
}

export interface ReadRequest {
  id: string;
  path: string;
  version?: number;
  /** A transit ciphertext (refs/transit.ts): decrypted, with the others of the start, in one batch. */
  ciphertext?: string;
  /** An issue-on-start write (refs/write.ts): POSTed, never read, never polled; not done by `check`. */
  write?: { body: Record<string, unknown> };
  /** Variables that use this read, sorted: for messages. */
  variables: string[];
}

export interface Plan {
  vars: PlannedVar[];
  reads: ReadRequest[];
  /** Number of references (a variable with two inline references counts two; an import counts one). */
  referenceCount: number;
  /** Bulk imports, read with the references (a path imported and referenced is read once). */
  imports: ImportSpec[];
  /** Names of the environment planned from: explicit variables, which win over imported ones. */
  explicit: ReadonlySet<string>;
}

export function isFileVariable(name: string): boolean {
  return name.length > '_FILE'.length && name.endsWith('_FILE');
}

export function planReferences(env: Readonly<Record<string, string>>, options: PlanOptions): Plan {
  const vars: PlannedVar[] = [];
  const reads = new Map<string, ReadRequest>();
  let referenceCount = 0;
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (value === undefined || options.passthrough.has(name) || options.isOwnSetting(name)) continue;
    const parsed = parseValue(name, value);
    if (parsed.kind === 'plain') continue;
    const target = options.fileEnv && isFileVariable(name) ? 'file' : 'env';
    vars.push({ name, parsed, target });
    for (const ref of refsOf(parsed)) {
      referenceCount++;
      const id = readId(ref);
      const read = reads.get(id) ?? {
        id,
        path: ref.path,
        ...versionOf(ref),
        ...(ref.ciphertext === undefined ? {} : { ciphertext: ref.ciphertext }),
        ...(ref.write === undefined ? {} : { write: ref.write }),
        variables: [],
      };
      if (!read.variables.includes(name)) read.variables.push(name);
      reads.set(id, read);
    }
  }
  const imports = [...(options.imports ?? [])];
  for (const spec of imports) {
    referenceCount++;
    const id = readId(spec);
    const read = reads.get(id) ?? { id, path: spec.path, ...versionOf(spec), variables: [] };
    if (!read.variables.includes(IMPORT_SETTING)) read.variables.push(IMPORT_SETTING);
    reads.set(id, read);
  }
  return { vars, reads: [...reads.values()], referenceCount, imports, explicit: new Set(Object.keys(env)) };
}

function versionOf(ref: Pick<Ref, 'version'>): { version?: number } {
  return ref.version === undefined ? {} : { version: ref.version };
}

/** What one read produced: the secret's data, or why it failed. */
export type ReadResult = { data: Readonly<Record<string, unknown>> } | { error: VaultrunError };

export interface RenderOptions {
  /** A missing path or key leaves the variable unset (with a warning) instead of failing. */
  ignoreMissing: boolean;
  /** Names an import never defines (our own settings). Default: none. */
  isOwnSetting?: (name: string) => boolean;
}

export interface Rendered {
  /** Resolved values of variables whose target is 'env'. */
  env: Record<string, string>;
  /** Values to write to secret files, for variables whose target is 'file' (bytes from base64decode). */
  files: Record<string, string | Uint8Array>;
  /** Variables left unset under ignoreMissing (or, `optional`, by a `?` reference), with the reason. */
  skipped: Array<{ name: string; reason: string; optional?: true }>;
  /** The text each reference gave (after filters; defaults excluded): what logs must mask. */
  secrets: string[];
  /** Variables defined by bulk imports (in `env`), sorted. */
  imported: string[];
  /** Keys of bulk imports that were not imported, and why (never a value). */
  importSkipped: ImportOutcome['skipped'];
}

export { secretToString };

/** A reference whose path, key or version is missing and that says `?`: its variable is left unset. */
class LeaveUnset extends Error {
  constructor(readonly reason: VaultrunError) {
    super(reason.message);
  }
}

/** The field a reference names, or the NOT_FOUND/other error of its read (naming the variable and key). */
function field(ref: Ref, variable: string, results: ReadonlyMap<string, ReadResult>): unknown {
  const result = results.get(readId(ref));
  if (result === undefined) {
    throw new VaultrunError('INTERNAL', `${variable}: no read was made for path ${ref.path}`);
  }
  if ('error' in result) {
    // The read's error names the path; name the variable and the key this variable wanted too.
    const { error } = result;
    if (error.code !== 'NOT_FOUND') throw error;
    throw new VaultrunError(error.code, `${variable}: ${error.message} (key "${ref.key}")`, {
      cause: error,
      ...(error.hint ? { hint: error.hint } : {}),
      ...(error.status ? { status: error.status } : {}),
    });
  }
  if (!Object.hasOwn(result.data, ref.key)) {
    const known = Object.keys(result.data).sort();
    throw new VaultrunError(
      'NOT_FOUND',
      `${variable}: key "${ref.key}" not found at ${ref.path}${ref.version ? ` (version ${ref.version})` : ''}`,
      { hint: missingKeyHint(ref.key, known) },
    );
  }
  return result.data[ref.key];
}

/**
 * Pure: what one reference gives — its field through its filters — or its default / LeaveUnset when the
 * path, key or version is missing and it says `?=` / `?`. Other failures throw (named).
 */
export function evaluateRef(
  ref: Ref,
  variable: string,
  results: ReadonlyMap<string, ReadResult>,
): Piece | { fallback: string } {
  let value: unknown;
  try {
    value = field(ref, variable, results);
  } catch (error) {
    if (error instanceof VaultrunError && error.code === 'NOT_FOUND') {
      if (ref.default !== undefined) return { fallback: ref.default };
      if (ref.optional) throw new LeaveUnset(error);
    }
    throw error;
  }
  try {
    return applyFilters(ref.filters, value);
  } catch (error) {
    throw filterError(variable, ref, error);
  }
}

function filterError(variable: string, ref: Ref, error: unknown): VaultrunError {
  const problem = error instanceof Error ? error.message : 'filter failed';
  return new VaultrunError('USAGE', `${variable}: ${ref.path}#${ref.key}: ${problem}`, {
    hint: `check the filters of the reference (${FILTER_HINT}); the value itself is never shown`,
  });
}

/** What a reference gives as text for a variable (UTF-8, no NUL), or a USAGE error naming it. */
export function variableText(piece: Piece | { fallback: string }, variable: string, ref: Ref): string {
  if ('fallback' in piece) return piece.fallback;
  try {
    return pieceText(piece);
  } catch (error) {
    const e = filterError(variable, ref, error);
    throw new VaultrunError(e.code, e.message, {
      hint: 'binary content can go to a file: NAME_FILE=vault:PATH#KEY|base64decode',
    });
  }
}

function fileContent(piece: Piece): string | Uint8Array {
  return 'bytes' in piece ? piece.bytes : secretToString(piece.value);
}

function withVariable(error: VaultrunError, variable: string): VaultrunError {
  if (error.message.startsWith(`${variable}:`)) return error;
  const hint = error.hint;
  return new VaultrunError(error.code, `${variable}: ${error.message}`, {
    cause: error,
    ...(hint ? { hint } : {}),
  });
}

/** Most serious first: what an operator must fix before anything else. */
const SEVERITY: readonly string[] = [
  'UNREACHABLE',
  'LOGIN_FAILED',
  'PERMISSION_DENIED',
  'VAULT_ERROR',
  'USAGE',
  'IO',
  'NOT_FOUND',
  'INTERNAL',
];

export function renderPlan(
  plan: Plan,
  results: ReadonlyMap<string, ReadResult>,
  options: RenderOptions,
): Rendered {
  const out: Rendered = { env: {}, files: {}, skipped: [], secrets: [], imported: [], importSkipped: [] };
  const failures: VaultrunError[] = [];
  for (const v of plan.vars) {
    let value: string | Uint8Array;
    try {
      if (v.parsed.kind === 'whole') {
        const ref = v.parsed.ref;
        const piece = evaluateRef(ref, v.name, results);
        // A file takes bytes and text as they are (NUL included); a variable needs text without NUL.
        value =
          v.target === 'file' && !('fallback' in piece)
            ? fileContent(piece)
            : variableText(piece, v.name, ref);
        if (!('fallback' in piece) && typeof value === 'string') out.secrets.push(value);
      } else {
        value = v.parsed.segments
          .map((s) => {
            if (!('ref' in s)) return s.text;
            const piece = evaluateRef(s.ref, v.name, results);
            const text = variableText(piece, v.name, s.ref);
            if (!('fallback' in piece)) out.secrets.push(text);
            return text;
          })
          .join('');
      }
    } catch (error) {
      if (error instanceof LeaveUnset) {
        out.skipped.push({
          name: v.name,
          reason: withVariable(error.reason, v.name).message,
          optional: true,
        });
        continue;
      }
      if (!(error instanceof VaultrunError)) throw error;
      const named = withVariable(error, v.name);
      if (options.ignoreMissing && error.code === 'NOT_FOUND') {
        out.skipped.push({ name: v.name, reason: named.message });
        continue;
      }
      failures.push(named);
      continue;
    }
    if (v.target === 'file') out.files[v.name] = value;
    else out.env[v.name] = typeof value === 'string' ? value : '';
  }
  if (plan.imports.length > 0) {
    const outcome = importVariables(
      plan.imports,
      results,
      plan.explicit,
      options.isOwnSetting ?? (() => false),
    );
    for (const { from, error } of outcome.failed) {
      const named = new VaultrunError(error.code, `--from-path ${from.path}: ${error.message}`, {
        cause: error,
        ...(error.hint ? { hint: error.hint } : {}),
      });
      if (options.ignoreMissing && error.code === 'NOT_FOUND') {
        out.skipped.push({ name: `${from.prefix}*`, reason: named.message });
      } else failures.push(named);
    }
    failures.push(...outcome.conflicts);
    for (const v of outcome.vars) {
      out.env[v.name] = v.value;
      out.secrets.push(v.value);
      out.imported.push(v.name);
    }
    out.imported.sort();
    out.importSkipped = outcome.skipped;
  }
  // Several failures: the exit status is that of the most serious one, whatever the variables are called.
  const [first] = [...failures].sort((a, b) => SEVERITY.indexOf(a.code) - SEVERITY.indexOf(b.code));
  if (first) {
    if (failures.length === 1) throw first;
    throw new VaultrunError(
      first.code,
      `${failures.length} references could not be resolved:\n  ${failures.map((f) => f.message).join('\n  ')}`,
      { cause: first, ...(first.hint ? { hint: first.hint } : {}) },
    );
  }
  return out;
}
