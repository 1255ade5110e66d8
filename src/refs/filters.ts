/**
 * Value filters: a small fixed set, not a template language. A reference's field goes through its filters
 * left to right (`vault:secret/gcp#sa|base64decode|json:/client_email`):
 *
 *   base64decode   text (standard or URL-safe alphabet, padding optional, whitespace ignored) → bytes
 *   base64encode   text or bytes → base64 text (standard alphabet, padded)
 *   json:POINTER   a JSON text (or a field that is an object/array already) → the value at the RFC 6901
 *                  pointer (`json:/a/0/b`, `~1` for '/', `~0` for '~'; `json:` alone: the whole document)
 *   tojson         any value → its JSON text (a string becomes "quoted", an object compact JSON)
 *
 * A pointer cannot contain '|', '?', '#' or (inline) '}'. The end result becomes text as any field does
 * (strings as they are, objects as JSON); bytes stay bytes for a NAME_FILE secret file, and must be UTF-8
 * without NUL for a variable. Errors say what did not fit, never the value (nor a parser message quoting it).
 */
export type Filter =
  | { name: 'base64decode' }
  | { name: 'base64encode' }
  | { name: 'json'; pointer: string[] }
  | { name: 'tojson' };

export const FILTER_NAMES = ['base64decode', 'base64encode', 'json:POINTER', 'tojson'] as const;

export const FILTER_HINT = `filters are ${FILTER_NAMES.join(', ')} (e.g. vault:PATH#KEY|base64decode|json:/client_email)`;

/** A value between filters: a field (any JSON value) or raw bytes from base64decode. */
export type Piece = { value: unknown } | { bytes: Uint8Array };

/** Pure: the filter, or why not (never quoting the text: it could be part of a secret). */
export function parseFilter(raw: string): Filter | string {
  if (raw === 'base64decode' || raw === 'base64encode' || raw === 'tojson') return { name: raw };
  if (raw.startsWith('json:')) {
    const pointer = raw.slice('json:'.length);
    if (pointer === '') return { name: 'json', pointer: [] };
    if (!pointer.startsWith('/')) return "a JSON pointer starts with '/' (json:/a/b)";
    const tokens = pointer.slice(1).split('/');
    if (tokens.some((t) => /~(?![01])/.test(t))) {
      return "in a JSON pointer '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')";
    }
    return { name: 'json', pointer: tokens.map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~')) };
  }
  if (raw === '') return 'empty filter (two | in a row, or | at the end)';
  return 'unknown filter';
}

/** The text form of a filter, for tables and messages (the reference as written, normalized). */
export function filterText(filter: Filter): string {
  if (filter.name !== 'json') return filter.name;
  return `json:${filter.pointer.map((t) => `/${t.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('')}`;
}

/** A field as text: strings as they are, scalars printed, null empty, objects and arrays as JSON. */
export function secretToString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}

const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function textOf(piece: Piece, filter: string): string {
  if ('bytes' in piece) {
    try {
      return UTF8.decode(piece.bytes);
    } catch {
      throw new Error(`${filter} needs text, but the value is bytes that are not UTF-8`);
    }
  }
  if (typeof piece.value === 'string') return piece.value;
  throw new Error(`${filter} needs a text value, but the field is ${kindOf(piece.value)}`);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function decodeBase64(text: string): Uint8Array {
  const compact = text.replace(/[\s]+/g, '');
  const unpadded = compact.replace(/=+$/, '');
  if (!BASE64.test(compact) || unpadded.length % 4 === 1 || (compact !== unpadded && compact.length % 4)) {
    throw new Error('base64decode: the value is not base64');
  }
  return new Uint8Array(
    Buffer.from(unpadded, unpadded.includes('-') || unpadded.includes('_') ? 'base64url' : 'base64'),
  );
}

function select(document: unknown, pointer: readonly string[]): unknown {
  let at = document;
  for (const [i, token] of pointer.entries()) {
    const where = `json: nothing at token ${i + 1} of the pointer`;
    if (Array.isArray(at)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= at.length) throw new Error(where);
      at = at[Number(token)];
    } else if (at !== null && typeof at === 'object' && Object.hasOwn(at, token)) {
      at = (at as Record<string, unknown>)[token];
    } else {
      throw new Error(where);
    }
  }
  return at;
}

/** Pure: one filter. Throws a plain Error whose message never quotes the value. */
export function applyFilter(filter: Filter, piece: Piece): Piece {
  switch (filter.name) {
    case 'base64decode':
      return { bytes: decodeBase64(textOf(piece, 'base64decode')) };
    case 'base64encode':
      return {
        value:
          'bytes' in piece
            ? Buffer.from(piece.bytes).toString('base64')
            : Buffer.from(secretToString(piece.value), 'utf8').toString('base64'),
      };
    case 'tojson':
      return { value: JSON.stringify('bytes' in piece ? textOf(piece, 'tojson') : (piece.value ?? null)) };
    case 'json': {
      let document: unknown;
      if ('value' in piece && piece.value !== null && typeof piece.value === 'object') document = piece.value;
      else {
        const text = textOf(piece, 'json');
        try {
          document = JSON.parse(text);
        } catch {
          // The parser's message quotes the text: never passed on.
          throw new Error('json: the value is not JSON');
        }
      }
      return { value: select(document, filter.pointer) };
    }
  }
}

/** Pure: every filter in order. */
export function applyFilters(filters: readonly Filter[] | undefined, value: unknown): Piece {
  let piece: Piece = { value };
  for (const filter of filters ?? []) piece = applyFilter(filter, piece);
  return piece;
}

/** A piece as the text of a variable: UTF-8 (bytes) without NUL, whatever its source (an environment cannot hold NUL). */
export function pieceText(piece: Piece): string {
  const text = 'value' in piece ? secretToString(piece.value) : textOf(piece, 'a variable');
  if (text.includes('\0')) throw new Error('a variable cannot hold a NUL byte');
  return text;
}
