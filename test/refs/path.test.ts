// Which paths a reference may read (refs/path.ts), how a path becomes a request URL (kv.ts apiPathFor +
// client.ts requestUrl), and the property that ties them: whatever the input, it is refused with our USAGE
// error, or the URL requested is exactly the path as written, segment by segment.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES, VaultrunError } from '../../src/errors.js';
import { parseValue, type Ref } from '../../src/refs/parse.js';
import { encodeApiPath, pathProblem, RESERVED_MOUNTS } from '../../src/refs/path.js';
import { requestUrl } from '../../src/vault/client.js';
import { apiPathFor, checkMount, type MountInfo } from '../../src/vault/kv.js';
import { thrown } from '../support/errors.js';

const KV2: MountInfo = { path: 'secret/', type: 'kv', kvVersion: 2 };
const ADDR = 'http://127.0.0.1:8200';

describe('reference paths that stay allowed', () => {
  it.each([
    'secret/dify/db',
    'secret/data/dify/db',
    'secret',
    'kv1/app',
    'database/creds/readonly',
    'pki/cert/ca',
    'transit/keys/app',
    'aws/creds/deploy',
    'cubbyhole/dify/cache',
    'secret/my app/x.y',
    'secret/app/auth',
    'secret/sys/health',
    'secret/identity/x',
    'team/kv/a-b_c.d@e:f,g+h=i~j',
    'secret/.hidden/x',
    'secret/v1.2/x',
  ])('%s', (path) => {
    expect(pathProblem(path)).toBeUndefined();
    expect(parseValue('V', `vault:${path}#k`)).toEqual({ kind: 'whole', ref: { path, key: 'k' } });
  });
});

describe('reference paths that are refused with exit 64, naming the variable', () => {
  it.each<[string, RegExp]>([
    // Vault's own mounts, in any letter case.
    ['auth/token/lookup-self', /reserved auth\/ mount/],
    ['auth/approle/role/app/role-id', /reserved auth\/ mount/],
    ['Auth/token/lookup-self', /reserved auth\/ mount/],
    ['sys/wrapping/lookup', /reserved sys\/ mount/],
    ['sys/health', /reserved sys\/ mount/],
    ['SYS/seal-status', /reserved sys\/ mount/],
    ['identity/oidc/token/app', /reserved identity\/ mount/],
    // Dot segments, literal and in every encoding.
    ['secret/../auth/token/lookup-self', /'\.' or '\.\.' segment/],
    ['secret/./x', /'\.' or '\.\.' segment/],
    ['secret/.../x', /'\.' or '\.\.' segment/],
    ['secret/%2e%2e/auth/token/lookup-self', /'%'/],
    ['secret/%2E./auth/token/lookup-self', /'%'/],
    ['secret/.%2e/auth/token/lookup-self', /'%'/],
    ['secret/%2f..%2fauth', /'%'/],
    ['secret/a%2Fb', /'%'/],
    ['secret\\..\\auth\\token\\lookup-self', /backslash/],
    ['secret/..\\auth', /backslash/],
    ['secret//x', /empty, '\.' or '\.\.' segment/],
    ['secret/x?version=1', /'\?'/],
    ['secret/x;y', /';'/],
    ['secret/x&#x2F;..', /U\+0026/],
    ['secret/x\u0000y', /U\+0000/],
    ['secret/x\ty', /U\+0009/],
    ['secret/x\ny', /U\+000A/],
    ['secret/ x', /starts or ends with a space/],
    ['secret/x /y', /starts or ends with a space/],
    ['secret/\uff0e\uff0e/auth', /U\+FF0E/],
    ['secret/\u2024\u2024/auth', /U\+2024/],
    ['secret\u2215..\u2215auth', /U\+2215/],
    ['secret/x\u202ey', /U\+202E/],
  ])('%j: %s', (path, problem) => {
    const error = thrown(() => parseValue('DB_PASSWORD', `vault:${path}#k`));
    expect(error.code).toBe('USAGE');
    expect(error.exitCode).toBe(EXIT_CODES.USAGE);
    expect(error.exitCode).toBe(64);
    expect(error.message).toMatch(/^DB_PASSWORD: invalid Vault reference: /);
    expect(error.message).toMatch(problem);
    // What is allowed, said in the hint.
    expect(error.hint).toMatch(/segments separated by single '\/'/);
    expect(error.hint).toMatch(/not in the sys\/, auth\/, identity\/ mounts/);
    // Inline references get the same check.
    expect(thrown(() => parseValue('DB_URL', `x\${vault:${path}#k}`)).code).toBe('USAGE');
  });
});

describe('checkMount: the mount Vault reports decides, namespaces included', () => {
  it.each<[string, MountInfo | undefined]>([
    ['ns1/auth/token/lookup-self', { path: 'ns1/auth/token/', type: 'ns_token' }],
    ['ns1/sys/wrapping/lookup', { path: 'ns1/sys/', type: 'ns_system' }],
    ['ns1/identity/oidc/token/x', { path: 'ns1/identity/', type: 'ns_identity' }],
    ['ns1/auth/approle/role/x/role-id', { path: 'ns1/auth/approle/', type: 'approle' }],
    // An auth mount is reported without auth/ in the root namespace.
    ['a/auth/token/lookup-self', { path: 'token/', type: 'token' }],
    ['a/b/sys/health', { path: 'a/b/sys/', type: 'system' }],
    // Vault did not say: a reserved name after the first segment might be behind a namespace.
    ['ns1/auth/token/lookup-self', undefined],
    ['ns1/ns2/Sys/health', undefined],
  ])('%s in %o is refused (USAGE)', (path, mount) => {
    const error = thrown(() => checkMount(path, mount));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/is not readable by a reference/);
  });

  it('a reserved name after the first segment whose look-up was denied: denied (77), not missing', () => {
    const error = thrown(() => checkMount('secret/other/sys/health', undefined, true));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.exitCode).toBe(77);
  });

  it.each<[string, MountInfo | undefined]>([
    ['secret/app/auth', KV2],
    ['secret/sys/health', KV2],
    ['ns1/secret/auth/x', { path: 'ns1/secret/', type: 'kv', kvVersion: 2 }],
    ['database/creds/app', { path: 'database/', type: 'database' }],
    ['cubbyhole/x', { path: 'cubbyhole/', type: 'cubbyhole' }],
    ['kv1/app', undefined],
    ['secret/x', undefined],
  ])('%s in %o is allowed', (path, mount) => {
    expect(() => checkMount(path, mount)).not.toThrow();
  });
});

describe('requestUrl: the URL requested is the path given, or nothing is sent', () => {
  it.each([
    ['secret/data/a', '/v1/secret/data/a', ''],
    ['secret/data/a?version=3', '/v1/secret/data/a', '?version=3'],
    ['/auth/approle/login', '/v1/auth/approle/login', ''],
    ['secret/data/my%20app/x%40y', '/v1/secret/data/my%20app/x%40y', ''],
  ])('%s → %s%s', (path, pathname, search) => {
    const url = requestUrl(ADDR, path);
    expect(url.pathname).toBe(pathname);
    expect(url.search).toBe(search);
    expect(requestUrl(`${ADDR}/`, path).href).toBe(url.href);
  });

  it('keeps a base path of the address', () => {
    expect(requestUrl('https://proxy.example/vault/', 'secret/data/a').pathname).toBe(
      '/vault/v1/secret/data/a',
    );
  });

  it.each([
    'secret/../auth/token/lookup-self',
    'secret/%2e%2e/auth/token/lookup-self',
    'secret/.%2E/auth',
    'secret/./x',
    'secret\\..\\auth',
    'secret/a\\b',
    'secret/x#frag',
    'secret/x&#x2F;..&#x2F;auth',
    'secret/x?version=1&list=true?x',
    'secret/x?a=%2e',
    'secret/x\ty',
  ])('%j is refused (INTERNAL: a path builder bug, never sent)', (path) => {
    expect(thrown(() => requestUrl(ADDR, path)).code).toBe('INTERNAL');
  });

  it('encodeApiPath refuses what is outside the grammar, and a malformed query', () => {
    for (const path of ['a/../b', 'a//b', 'a/%2e', 'a\\b', 'a?b', 'a#b', '']) {
      expect(thrown(() => encodeApiPath(path)).code).toBe('INTERNAL');
    }
    expect(thrown(() => encodeApiPath('a', { version: -1 })).code).toBe('INTERNAL');
    expect(thrown(() => encodeApiPath('a', { 'v&x': 1 })).code).toBe('INTERNAL');
    expect(encodeApiPath('a b/c@d', { version: 2 })).toBe('a%20b/c%40d?version=2');
  });
});

// ─── The property ────────────────────────────────────────────────────────────────────────────────────────

/** Pieces that build hostile paths: dot segments in every spelling, separators, query/fragment tricks. */
const DOT_PIECES = [
  '.',
  '..',
  '.',
  '..',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2e',
  '.%2E',
  '%2E.',
  '%252e%252e',
  '\uff0e\uff0e',
  '\u2024',
];
const SEPARATOR_PIECES = ['/', '//', '\\', '%2f', '%2F', '%5c', '&#x2F;', '\u2215', '\u2044'];
const TRICK_PIECES = [
  '?',
  '?version=1',
  ';',
  '%00',
  '\u0000',
  ' ',
  '\t',
  '\n',
  '\r',
  '%20',
  '#',
  '}',
  '\u202e',
];
const NAMES = ['secret', 'data', 'metadata', 'x', 'app', 'db', 'ns1', 'creds', 'token', 'lookup-self'];
const DENIED = ['sys', 'auth', 'identity', 'SYS', 'Auth', 'iDentity'];
const piece = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...DOT_PIECES), fc.constantFrom('', '/', '\\'), fc.constantFrom('', '/', '\\'))
      .map(([dot, before, after]) => `${before}${dot}${after}`),
  },
  { weight: 4, arbitrary: fc.constantFrom(...SEPARATOR_PIECES) },
  { weight: 2, arbitrary: fc.constantFrom(...TRICK_PIECES) },
  { weight: 4, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.constantFrom(...DENIED) },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
);
/** A path: either a denied mount or a name first (so the denied-prefix case is frequent), then pieces. */
const hostileOnly = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('', '/'),
      fc.constantFrom(...DENIED).chain((d) => fc.constantFrom(d, `${d}/`, `/${d}/`)),
      fc.constantFrom(...NAMES),
    ),
    fc.array(piece, { maxLength: 8 }),
  )
  .map(([first, rest]) => first + rest.join(''));
/**
 * Some paths in the grammar with dots and odd characters inside segments: almost every hostile path is refused,
 * and the checks on the URL of an accepted one would otherwise run only a few dozen times.
 */
const oddButValid = fc
  .array(
    fc.oneof(fc.constantFrom(...NAMES), fc.constantFrom('.x', 'x.', '..x', 'a..b', 'a b', '@:,+=~-', '_')),
    {
      minLength: 1,
      maxLength: 5,
    },
  )
  .map((segments) => segments.join('/'));
const hostilePath = fc.oneof({ weight: 4, arbitrary: hostileOnly }, { weight: 1, arbitrary: oddButValid });
const mountArb = fc.constantFrom<MountInfo | undefined>(
  undefined,
  KV2,
  { path: 'kv1/', type: 'kv', kvVersion: 1 },
  { path: 'database/', type: 'database' },
);

const SPECIAL_SEGMENT = /[/\\?#%]/;

describe('property: refused with our error, or the URL is exactly the path as written', () => {
  it('holds for hostile paths, and the generator really produces the hostile cases', () => {
    const seen = { dotEncoded: 0, dotLiteral: 0, denied: 0, separators: 0, accepted: 0, urls: 0, runs: 0 };
    fc.assert(
      fc.property(
        hostilePath,
        fc.option(fc.integer({ min: 1, max: 99 }), { nil: undefined }),
        mountArb,
        (path, version, mount) => {
          seen.runs++;
          if (/%2e|\uff0e|\u2024/i.test(path)) seen.dotEncoded++;
          if (/(^|[/\\])\.\.?([/\\]|$)/.test(path)) seen.dotLiteral++;
          if (/^\/*(sys|auth|identity)(\/|$)/i.test(path)) seen.denied++;
          if (/\\|%2f|%5c|&#x2F;|\u2215/i.test(path)) seen.separators++;
          const value = `vault:${path}#k${version === undefined ? '' : `#${version}`}`;
          let ref: Ref;
          try {
            const parsed = parseValue('SECRET_VAR', value);
            if (parsed.kind !== 'whole') throw new Error('not a whole reference');
            ref = parsed.ref;
          } catch (error) {
            expect(error).toBeInstanceOf(VaultrunError);
            expect((error as VaultrunError).code).toBe('USAGE');
            expect((error as VaultrunError).message.startsWith('SECRET_VAR: ')).toBe(true);
            return;
          }
          seen.accepted++;
          // The path as written, normalised: without the slashes around it.
          const written = path.split('#')[0]?.replace(/^\/+|\/+$/g, '');
          expect(ref.path).toBe(written);
          let apiPath: string;
          try {
            checkMount(ref.path, mount);
            apiPath = apiPathFor(ref.path, mount, ref.version).apiPath;
          } catch (error) {
            // A version outside KV v2 or a mount that may not be read: our USAGE error, nothing sent.
            expect((error as VaultrunError).code).toBe('USAGE');
            return;
          }
          const url = requestUrl(ADDR, apiPath);
          // What the server sees: the URL path after /v1/, each segment decoded once.
          const segments = url.pathname.slice('/v1/'.length).split('/').map(decodeURIComponent);
          for (const s of segments) {
            expect(s === '' || s === '.' || s === '..' || SPECIAL_SEGMENT.test(s)).toBe(false);
          }
          const expected = ref.path.split('/');
          // KV v2: MOUNT/data/ is added unless the path already has `data/` right after the mount (vault-env's
          // form); `secret/data` alone is the secret named "data" (secret/data/data), as the Vault CLI reads it.
          const hasData = expected[1] === 'data' && expected.length > 2;
          if (mount?.kvVersion === 2 && ref.path.startsWith(mount.path) && !hasData) {
            expected.splice(1, 0, 'data');
          }
          expect(segments).toEqual(expected);
          expect(url.search).toBe(ref.version === undefined ? '' : `?version=${ref.version}`);
          expect(url.hash).toBe('');
          expect(RESERVED_MOUNTS.some((m) => m === segments[0]?.toLowerCase())).toBe(false);
          seen.urls++;
        },
      ),
      { numRuns: 3000 },
    );
    // Count guard: the hostile cases are frequent, and some inputs pass (so both branches are exercised).
    expect(seen.runs).toBe(3000);
    expect(seen.dotEncoded).toBeGreaterThan(300);
    expect(seen.dotLiteral).toBeGreaterThan(150);
    expect(seen.denied).toBeGreaterThan(300);
    expect(seen.separators).toBeGreaterThan(300);
    expect(seen.accepted).toBeGreaterThan(150);
    expect(seen.urls, 'URLs checked').toBeGreaterThan(60);
  });

  it('holds for arbitrary strings too (full unicode)', () => {
    let urls = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 30 }),
          // Mostly the grammar's characters (and a few others): full unicode alone is nearly always refused.
          fc.string({
            unit: fc.constantFrom(...'Az09_.@:,+=~- //'.split(''), 'é', '\u202e', '%'),
            maxLength: 30,
          }),
        ),
        (path) => {
          let ref: Ref;
          try {
            const parsed = parseValue('V', `vault:${path}#k`);
            if (parsed.kind !== 'whole') return;
            ref = parsed.ref;
          } catch (error) {
            expect((error as VaultrunError).code).toBe('USAGE');
            return;
          }
          const url = requestUrl(ADDR, apiPathFor(ref.path, undefined, undefined).apiPath);
          const segments = url.pathname.slice('/v1/'.length).split('/').map(decodeURIComponent);
          expect(segments).toEqual(ref.path.split('/'));
          urls++;
        },
      ),
      { numRuns: 2000 },
    );
    // Count guard: many arbitrary strings were accepted as paths, so the URL check really ran.
    expect(urls).toBeGreaterThan(150);
  });
});
