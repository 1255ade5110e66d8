import { VaultrunError } from '../errors.js';

/**
 * Which Vault paths a reference may read, and how such a path becomes the path of an HTTP request.
 *
 * A reference names a secret, nothing else: its answer goes to the command. So a path is a list of segments
 * separated by single '/', each segment made of the characters below, none of them made of dots only ('.' and
 * '..' would move the read elsewhere), and the first segment is not one of Vault's own system mounts (sys/,
 * auth/ — every auth method and the token store —, identity/). There is no escape character at all: '%' is
 * refused, so no spelling (`%2e%2e`, `%2F`, …) can turn into a dot segment or a separator later, whoever
 * decodes it (the URL parser, a proxy, the server).
 *
 * The grammar, as a regular expression: SEGMENT = [A-Za-z0-9_.@:,+=~-]([A-Za-z0-9_.@:,+=~ -]*[A-Za-z0-9_.@:,+=~-])?
 * (an inner space is allowed, as Vault allows it in KV paths) and not only dots; PATH = SEGMENT('/'SEGMENT)*.
 * Leading and trailing '/' of a reference are dropped first (`/secret/app/` is `secret/app`).
 */
export const PATH_CHARACTERS =
  "letters A-Z a-z, digits, '-', '_', '.', '@', ':', ',', '+', '=', '~' and inner spaces";

/** Mounts a reference may never read, in any letter case: Vault's system backend, auth methods, identity. */
export const RESERVED_MOUNTS = ['sys', 'auth', 'identity'] as const;

/**
 * Mount types (as sys/internal/ui/mounts reports them) a reference may never read, even when a namespace
 * prefix (`ns1/auth/token/…`) hides them behind an innocent-looking first segment.
 */
export const RESERVED_MOUNT_TYPES: ReadonlySet<string> = new Set([
  'system',
  'ns_system',
  'token',
  'ns_token',
  'identity',
  'ns_identity',
]);

const EDGE = 'A-Za-z0-9_.@:,+=~\\-';
const SEGMENT = new RegExp(`^[${EDGE}](?:[${EDGE} ]*[${EDGE}])?$`);
const DOTS_ONLY = /^\.+$/;

export function isReservedSegment(segment: string): boolean {
  return (RESERVED_MOUNTS as readonly string[]).includes(segment.toLowerCase());
}

/** A character as a code point, for messages: the path itself is never echoed (it might be a secret). */
function codePoint(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Pure: why a (slash-trimmed) path may not be read, or undefined if it may. The problem never quotes the path.
 */
export function pathProblem(path: string): string | undefined {
  const problem = segmentsProblem(path);
  if (problem) return problem;
  const first = path.split('/')[0] as string;
  if (isReservedSegment(first)) {
    return `path is in Vault's reserved ${first.toLowerCase()}/ mount, which a reference may not read`;
  }
  return undefined;
}

/**
 * Pure: why a (slash-trimmed) path is not a list of valid segments, without the reserved-mount rule (an auth
 * method's mount path, which follows auth/, may be any such path). The problem never quotes the path.
 */
export function segmentsProblem(path: string): string | undefined {
  if (path === '') return 'empty path';
  const segments = path.split('/');
  for (const [i, segment] of segments.entries()) {
    const n = i + 1;
    if (segment === '' || DOTS_ONLY.test(segment)) {
      return `path has an empty, '.' or '..' segment (segment ${n})`;
    }
    if (!SEGMENT.test(segment)) {
      const bad = [...segment].find((ch) => !/[A-Za-z0-9_.@:,+=~ -]/.test(ch));
      if (bad === undefined) return `path segment ${n} starts or ends with a space`;
      const name =
        bad === '%'
          ? "'%' (percent-encoding is not accepted)"
          : bad === '\\'
            ? 'a backslash'
            : bad === '?' || bad === '#'
              ? `'${bad}'`
              : bad === ';'
                ? "';'"
                : codePoint(bad);
      return `path segment ${n} contains ${name}, which a path may not contain`;
    }
  }
  return undefined;
}

/** Segments a path has that name a reserved mount after the first one (where a namespace could put them). */
export function hasInnerReservedSegment(path: string): boolean {
  return path.split('/').slice(1).some(isReservedSegment);
}

/**
 * The path of an API request, from a path in the grammar: every segment percent-encoded on its own, so no
 * segment can become a separator, a dot segment, a query or a fragment; `query` values must be digits.
 * Throws INTERNAL for a path outside the grammar: callers check references first, so that is a bug.
 */
export function encodeApiPath(path: string, query: Readonly<Record<string, number>> = {}): string {
  for (const segment of path.split('/')) {
    if (!SEGMENT.test(segment) || DOTS_ONLY.test(segment)) {
      throw new VaultrunError('INTERNAL', 'refusing to build a request for a path outside the grammar');
    }
  }
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  const params = Object.entries(query).map(([k, v]) => {
    if (!/^[a-z_]+$/.test(k) || !Number.isSafeInteger(v) || v < 0) {
      throw new VaultrunError('INTERNAL', 'refusing to build a request with a malformed query');
    }
    return `${k}=${v}`;
  });
  return params.length ? `${encoded}?${params.join('&')}` : encoded;
}
