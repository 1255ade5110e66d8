import { VaultrunError } from '../errors.js';
import { missingKeyHint } from '../suggest.js';
import { type ParsedValue, parseValue, type Ref, readId, refsOf } from './parse.js';

/**
 * The request plan, pure: environment in → which variables hold references → the unique reads.
 * And the other half: (plan, what was read) → values per variable. No Vault, no filesystem here.
 */
export interface PlanOptions {
  /** Variables left untouched even if they look like references. */
  passthrough: ReadonlySet<string>;
  /** `NAME_FILE=vault:…` writes the secret to a file and sets NAME_FILE to its path. */
  fileEnv: boolean;
  /** Our own settings (VAULT_*, VAULTRUN_*, …) are never resolved: they configure us and are scrubbed. */
  isOwnSetting: (name: string) => boolean;
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
  /** Number of references (a variable with two inline references counts two). */
  referenceCount: number;
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
  return { vars, reads: [...reads.values()], referenceCount };
}

function versionOf(ref: Ref): { version?: number } {
  return ref.version === undefined ? {} : { version: ref.version };
}

/** What one read produced: the secret's data, or why it failed. */
export type ReadResult = { data: Readonly<Record<string, unknown>> } | { error: VaultrunError };

export interface RenderOptions {
  /** A missing path or key leaves the variable unset (with a warning) instead of failing. */
  ignoreMissing: boolean;
}

export interface Rendered {
  /** Resolved values of variables whose target is 'env'. */
  env: Record<string, string>;
  /** Values to write to secret files, for variables whose target is 'file'. */
  files: Record<string, string>;
  /** Variables left unset under ignoreMissing, with the reason. */
  skipped: Array<{ name: string; reason: string }>;
}

/** A secret field as an environment string: strings as they are, scalars printed, objects as JSON. */
export function secretToString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null) return '';
  return JSON.stringify(value);
}

function lookup(ref: Ref, variable: string, results: ReadonlyMap<string, ReadResult>): string {
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
  return secretToString(result.data[ref.key]);
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
  const out: Rendered = { env: {}, files: {}, skipped: [] };
  const failures: VaultrunError[] = [];
  for (const v of plan.vars) {
    let value: string;
    try {
      value =
        v.parsed.kind === 'whole'
          ? lookup(v.parsed.ref, v.name, results)
          : v.parsed.segments.map((s) => ('ref' in s ? lookup(s.ref, v.name, results) : s.text)).join('');
    } catch (error) {
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
    else out.env[v.name] = value;
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
