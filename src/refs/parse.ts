import { VaultrunError } from '../errors.js';
import { PATH_CHARACTERS, pathProblem, RESERVED_MOUNTS } from './path.js';
import { ciphertextRef, isCiphertext } from './transit.js';
import { parseWriteRef, WRITE_PREFIX, writeId } from './write.js';

/**
 * Reference grammar (compatible with bank-vaults vault-env for these forms):
 *
 *   whole value   vault:PATH#KEY            vault:PATH#KEY#VERSION
 *   inline        ${vault:PATH#KEY}         ${vault:PATH#KEY#VERSION}   (anywhere, several per value)
 *
 * PATH is what you would type for `vault kv get` (`secret/dify/db`); KEY is a field of the secret's data;
 * VERSION a positive integer (KV v2 only). PATH and KEY may not contain `#`; inline ones may not contain `}`.
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
}

export type Segment = { text: string } | { ref: Ref };

export type ParsedValue =
  | { kind: 'plain' }
  | { kind: 'whole'; ref: Ref }
  | { kind: 'template'; segments: Segment[] };

const WHOLE_PREFIX = 'vault:';
const INLINE_OPEN = '${vault:';
const GRAMMAR = 'expected vault:PATH#KEY or vault:PATH#KEY#VERSION (inline: ${vault:PATH#KEY})';

const PATH_HINT =
  `a reference path is segments separated by single '/', made of ${PATH_CHARACTERS}, ` +
  `no '.' or '..' segment, not in the ${RESERVED_MOUNTS.map((m) => `${m}/`).join(', ')} mounts`;

function syntaxError(variable: string, problem: string, hint = GRAMMAR): VaultrunError {
  return new VaultrunError('USAGE', `${variable}: invalid Vault reference: ${problem}`, {
    hint: `${hint}; list the variable in VAULTRUN_PASSTHROUGH to pass it through untouched`,
  });
}

/** Parses the body of a reference, i.e. what follows `vault:` (without `}` for inline ones). */
export function parseRefBody(variable: string, body: string): Ref {
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
