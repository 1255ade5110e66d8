import { VaultrunError } from '../errors.js';
import { FILTER_HINT, type Filter, parseFilter } from './filters.js';
import { PATH_CHARACTERS, pathProblem, RESERVED_MOUNTS } from './path.js';
import { ciphertextRef, isCiphertext } from './transit.js';
import { parseWriteRef, WRITE_PREFIX, writeId } from './write.js';

/**
 * Reference grammar (compatible with bank-vaults vault-env for its forms; `|FILTER` and `?`/`?=` are ours):
 *
 *   whole value   vault:PATH#KEY[#VERSION][|FILTER]...[?|?=DEFAULT]
 *   inline        ${vault:PATH#KEY[#VERSION][|FILTER]...[?|?=DEFAULT]}   (anywhere, several per value)
 *
 * PATH is what you would type for `vault kv get` (`secret/dify/db`); KEY is a field of the secret's data;
 * VERSION a positive integer (KV v2 only). PATH may not contain `#`, `|`, `?` (path.ts forbids the last two);
 * KEY may not contain `#`, `|` or `?`; inline references end at the first `}`.
 * FILTER (filters.ts): base64decode, base64encode, json:POINTER, tojson — applied left to right.
 * `?` makes the reference optional: if the path, key or version is missing, the variable is left unset.
 * `?=DEFAULT` uses DEFAULT (the rest of the reference, taken literally, may be empty) instead. Only "missing"
 * does that: permission, connection and filter errors still fail.
 * PATH must be in the grammar of path.ts (no dot segments, no escapes, not in sys/, auth/ or identity/).
 * Errors name the variable and the problem, never the value (it might be a secret that merely looks like one).
 */
export interface Ref {
  path: string;
  key: string;
  version?: number;
  /** A transit ciphertext to decrypt (transit.ts) instead of a path to read. */
  ciphertext?: string;
  /** An issue-on-start write (write.ts): POST this body to the path, take KEY of the answer. */
  write?: { body: Record<string, unknown> };
  /** Value filters, applied in order (absent: none). */
  filters?: Filter[];
  /** `?`: a missing path/key/version leaves the variable unset. */
  optional?: true;
  /** `?=TEXT`: a missing path/key/version gives this text. */
  default?: string;
}

export type Segment = { text: string } | { ref: Ref };

export type ParsedValue =
  | { kind: 'plain' }
  | { kind: 'whole'; ref: Ref }
  | { kind: 'template'; segments: Segment[] };

const WHOLE_PREFIX = 'vault:';
const INLINE_OPEN = '${vault:';
const GRAMMAR = 'expected vault:PATH#KEY[#VERSION][|FILTER...][?|?=DEFAULT] (inline: ${vault:PATH#KEY...})';

const PATH_HINT =
  `a reference path is segments separated by single '/', made of ${PATH_CHARACTERS}, ` +
  `no '.' or '..' segment, not in the ${RESERVED_MOUNTS.map((m) => `${m}/`).join(', ')} mounts`;

function syntaxError(variable: string, problem: string, hint = GRAMMAR): VaultrunError {
  return new VaultrunError('USAGE', `${variable}: invalid Vault reference: ${problem}`, {
    hint: `${hint}; list the variable in VAULTRUN_PASSTHROUGH to pass it through untouched`,
  });
}

/** Parses `PATH#KEY[#VERSION]` (no filters, no `?`). */
function parseTarget(variable: string, body: string): Ref {
  const parts = body.split('#');
  if (parts.length < 2) throw syntaxError(variable, 'missing #KEY after the path');
  if (parts.length > 3) throw syntaxError(variable, "too many '#' (PATH and KEY may not contain '#')");
  const [rawPath = '', key = '', rawVersion] = parts;
  const path = rawPath.replace(/^\/+/, '').replace(/\/+$/, '');
  if (path === '') throw syntaxError(variable, 'empty path');
  const problem = pathProblem(path);
  if (problem) throw syntaxError(variable, problem, PATH_HINT);
  if (key === '') throw syntaxError(variable, 'empty key');
  if (rawVersion === undefined) return { path, key };
  if (!/^[1-9][0-9]{0,9}$/.test(rawVersion)) {
    throw syntaxError(variable, 'version must be a positive whole number');
  }
  return { path, key, version: Number(rawVersion) };
}

/** Parses the body of a reference, i.e. what follows `vault:` (without `}` for inline ones). */
export function parseRefBody(variable: string, body: string): Ref {
  const hash = body.indexOf('#');
  if (hash < 0 || /[?|]/.test(body.slice(0, hash))) {
    // No key, or '?'/'|' in the path: the path grammar (or the missing key) says what is wrong.
    parseTarget(variable, body);
    throw syntaxError(variable, 'missing #KEY after the path');
  }
  // `?` cannot be in a path (path.ts) nor in a key: the first one starts the optional/default part.
  const question = body.indexOf('?');
  let fallback: { optional: true } | { default: string } | undefined;
  if (question >= 0) {
    const tail = body.slice(question + 1);
    if (tail === '') fallback = { optional: true };
    else if (tail.startsWith('=')) fallback = { default: tail.slice(1) };
    else throw syntaxError(variable, "'?' must end the reference, or be followed by '=DEFAULT'");
    body = body.slice(0, question);
  }
  const [target = '', ...rawFilters] = body.split('|');
  const ref = parseTarget(variable, target);
  if (rawFilters.length > 0) {
    ref.filters = rawFilters.map((raw, i) => {
      const parsed = parseFilter(raw);
      if (typeof parsed === 'string') throw syntaxError(variable, `filter ${i + 1}: ${parsed}`, FILTER_HINT);
      return parsed;
    });
  }
  return fallback ? { ...ref, ...fallback } : ref;
}

/** Classifies one environment value: no reference, a whole-value reference, or a template with inline ones. */
export function parseValue(variable: string, value: string): ParsedValue {
  if (isCiphertext(value)) return { kind: 'whole', ref: ciphertextRef(value) };
  if (value.startsWith(WRITE_PREFIX)) return { kind: 'whole', ref: parseWriteRef(variable, value) };
  if (value.startsWith(WHOLE_PREFIX)) {
    return { kind: 'whole', ref: parseRefBody(variable, value.slice(WHOLE_PREFIX.length)) };
  }
  if (!value.includes(INLINE_OPEN)) return { kind: 'plain' };
  const segments: Segment[] = [];
  let rest = value;
  for (;;) {
    const open = rest.indexOf(INLINE_OPEN);
    if (open < 0) break;
    if (open > 0) segments.push({ text: rest.slice(0, open) });
    const close = rest.indexOf('}', open);
    if (close < 0) throw syntaxError(variable, "inline reference '${vault:' is not closed with '}'");
    const body = rest.slice(open + INLINE_OPEN.length, close);
    segments.push({
      ref: isCiphertext(`vault:${body}`) ? ciphertextRef(`vault:${body}`) : parseRefBody(variable, body),
    });
    rest = rest.slice(close + 1);
  }
  if (rest !== '') segments.push({ text: rest });
  return { kind: 'template', segments };
}

/** All references of a parsed value, in order. */
export function refsOf(parsed: ParsedValue): Ref[] {
  if (parsed.kind === 'whole') return [parsed.ref];
  if (parsed.kind === 'template') return parsed.segments.flatMap((s) => ('ref' in s ? [s.ref] : []));
  return [];
}

/** The identity of one read: a path at a version. Every variable using it shares one request. */
export function readId(ref: Pick<Ref, 'path' | 'version' | 'ciphertext' | 'write'>): string {
  if (ref.write !== undefined) return writeId(ref);
  // A path is never empty and never has '#': this id cannot be a path's.
  if (ref.ciphertext !== undefined) return `#transit#${ref.ciphertext}`;
  return ref.version === undefined ? ref.path : `${ref.path}#${ref.version}`;
}
