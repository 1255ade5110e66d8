// Per-reference optional/default values (`?`, `?=TEXT`) and value filters (`|base64decode`, …): the pure parser,
// the filters, the renderer and check's rows, table-tested, plus fast-check properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRow, formatCheckTable, referenceText } from '../../src/commands/check.js';
import { VaultrunError } from '../../src/errors.js';
import { applyFilters, parseFilter, pieceText } from '../../src/refs/filters.js';
import { parseValue, type Ref } from '../../src/refs/parse.js';
import { type PlanOptions, planReferences, type ReadResult, renderPlan } from '../../src/refs/plan.js';
import { isOwnSetting } from '../../src/settings.js';
import { thrown } from '../support/errors.js';

const OPTIONS: PlanOptions = { passthrough: new Set(), fileEnv: true, isOwnSetting };

function results(entries: Record<string, ReadResult>): Map<string, ReadResult> {
  return new Map(Object.entries(entries));
}
const notFound = (path: string): ReadResult => ({
  error: new VaultrunError('NOT_FOUND', `no secret at ${path}`),
});
function render(env: Record<string, string>, reads: Record<string, ReadResult>, ignoreMissing = false) {
  return renderPlan(planReferences(env, OPTIONS), results(reads), { ignoreMissing });
}

describe('parseValue: optional and default', () => {
  it.each<[string, Ref]>([
    ['vault:secret/a#k?', { path: 'secret/a', key: 'k', optional: true }],
    ['vault:secret/a#k#2?', { path: 'secret/a', key: 'k', version: 2, optional: true }],
    ['vault:secret/a#k?=fallback', { path: 'secret/a', key: 'k', default: 'fallback' }],
    ['vault:secret/a#k?=', { path: 'secret/a', key: 'k', default: '' }],
    // The default is the rest of the value, literally: '#', '?', '|', '=' and '}' included.
    ['vault:secret/a#k?=a#b?c|d=e}f', { path: 'secret/a', key: 'k', default: 'a#b?c|d=e}f' }],
    ['vault:secret/a#k?=${vault:x#y}', { path: 'secret/a', key: 'k', default: '${vault:x#y}' }],
    [
      'vault:secret/a#k|base64decode?=x',
      { path: 'secret/a', key: 'k', filters: [{ name: 'base64decode' }], default: 'x' },
    ],
  ])('%s', (value, ref) => {
    expect(parseValue('VAR', value)).toEqual({ kind: 'whole', ref });
  });

  it('works inline: the default ends at the first }', () => {
    expect(parseValue('URL', 'redis://:${vault:secret/r#pw?=dev}@r:6379/${vault:secret/r#db?}')).toEqual({
      kind: 'template',
      segments: [
        { text: 'redis://:' },
        { ref: { path: 'secret/r', key: 'pw', default: 'dev' } },
        { text: '@r:6379/' },
        { ref: { path: 'secret/r', key: 'db', optional: true } },
      ],
    });
  });

  it.each<[string, RegExp]>([
    ['vault:secret/a#k?x', /'\?' must end the reference, or be followed by '=DEFAULT'/],
    ['vault:secret/a#k??', /'\?' must end the reference/],
    ['vault:secret/a?#k', /path segment 2 contains '\?'/],
    ['vault:secret/a?', /missing #KEY/],
    ['vault:secret/a#?', /empty key/],
    ['vault:secret/a#k#0?', /version must be a positive whole number/],
  ])('%s is refused, naming the variable', (value, problem) => {
    const error = thrown(() => parseValue('MY_VAR', value));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^MY_VAR: invalid Vault reference: /);
    expect(error.message).toMatch(problem);
  });
});

describe('parseValue: filters', () => {
  it.each<[string, Ref]>([
    ['vault:s/a#k|base64decode', { path: 's/a', key: 'k', filters: [{ name: 'base64decode' }] }],
    ['vault:s/a#k|base64encode', { path: 's/a', key: 'k', filters: [{ name: 'base64encode' }] }],
    ['vault:s/a#k|tojson', { path: 's/a', key: 'k', filters: [{ name: 'tojson' }] }],
    ['vault:s/a#k|json:', { path: 's/a', key: 'k', filters: [{ name: 'json', pointer: [] }] }],
    [
      'vault:s/a#k#4|base64decode|json:/a~1b/c~0d/0',
      {
        path: 's/a',
        key: 'k',
        version: 4,
        filters: [{ name: 'base64decode' }, { name: 'json', pointer: ['a/b', 'c~d', '0'] }],
      },
    ],
  ])('%s', (value, ref) => {
    expect(parseValue('VAR', value)).toEqual({ kind: 'whole', ref });
  });

  it.each<[string, RegExp]>([
    ['vault:s/a#k|', /filter 1: empty filter/],
    ['vault:s/a#k||tojson', /filter 1: empty filter/],
    ['vault:s/a#k|base64decode|hexdecode', /filter 2: unknown filter/],
    ['vault:s/a#k|json:a', /filter 1: a JSON pointer starts with '\/'/],
    ['vault:s/a#k|json:/a~2', /filter 1: in a JSON pointer '~' must be followed by 0 or 1/],
    ['vault:s/a|x#k', /path segment 2 contains U\+007C/],
  ])('%s is refused, naming the variable and the filter position, not the text', (value, problem) => {
    const error = thrown(() => parseValue('GCP_SA', `${value}`));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^GCP_SA: invalid Vault reference: /);
    expect(error.message).toMatch(problem);
    expect(error.message).not.toContain('hexdecode');
  });

  it('a reference with filters and a default shows them in check, never the default text', () => {
    const parsed = parseValue('V', 'vault:s/a#k#2|base64decode|json:/a~1b?=hunter2');
    expect(parsed.kind === 'whole' && referenceText(parsed.ref)).toBe('s/a#k#2|base64decode|json:/a~1b?=…');
  });
});

describe('filters', () => {
  const sa = { type: 'service_account', client_email: 'x@p.iam', nested: { list: [1, { ok: true }] } };
  const b64 = Buffer.from(JSON.stringify(sa)).toString('base64');
  const run = (text: string, value: unknown) => {
    const parsed = parseValue('V', `vault:s#k${text}`);
    if (parsed.kind !== 'whole') throw new Error('not whole');
    return pieceText(applyFilters(parsed.ref.filters, value));
  };
  it.each<[string, unknown, string]>([
    ['|base64decode', 'aGVsbG8=', 'hello'],
    ['|base64decode', 'aGVsbG8', 'hello'], // padding optional
    ['|base64decode', 'aGVs\nbG8=\n', 'hello'], // wrapped lines
    ['|base64encode', 'hello', 'aGVsbG8='],
    ['|base64encode', 42, 'NDI='],
    ['|base64decode|base64encode', 'aGVsbG8', 'aGVsbG8='],
    ['|base64decode|json:/client_email', b64, 'x@p.iam'],
    ['|base64decode|json:/nested', b64, '{"list":[1,{"ok":true}]}'],
    ['|base64decode|json:/nested/list/1/ok', b64, 'true'],
    ['|json:/client_email', JSON.stringify(sa), 'x@p.iam'],
    ['|json:/nested/list/0', sa, '1'], // a field that is an object already
    ['|json:', '{"a": 1}', '{"a":1}'],
    ['|tojson', 'a"b', '"a\\"b"'],
    ['|tojson', { a: [1] }, '{"a":[1]}'],
    ['|tojson', null, 'null'],
    ['|json:/a|tojson', '{"a":"x"}', '"x"'],
  ])('%s of %j', (filters, value, expected) => {
    expect(run(filters, value)).toBe(expected);
  });

  it.each<[string, unknown, RegExp]>([
    ['|base64decode', 'not base64!', /not base64/],
    ['|base64decode', '-_8', /bytes that are not UTF-8/], // URL-safe alphabet; 0xfb 0xff is not text
    ['|base64decode', 'abcde', /not base64/],
    ['|base64decode', 'ab=c', /not base64/],
    ['|base64decode', 42, /needs a text value, but the field is a number/],
    ['|json:/a', 'secret-not-json', /json: the value is not JSON/],
    ['|json:/b', '{"a":1}', /json: nothing at token 1 of the pointer/],
    ['|json:/a/5', '{"a":[1]}', /nothing at token 2/],
    ['|json:/a/01', '{"a":[1,2]}', /nothing at token 2/],
    ['|base64decode', Buffer.from('a\0b').toString('base64'), /cannot hold a NUL byte/],
  ])('%s of %j fails without quoting the value', (filters, value, problem) => {
    let message = '';
    try {
      run(filters, value);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(problem);
    expect(message).not.toContain('secret-not-json');
  });

  it('parseFilter never quotes what it refuses', () => {
    expect(parseFilter('hunter2')).toBe('unknown filter');
  });
});

describe('renderPlan: optional, default and filters', () => {
  const data = { data: { pw: 's3cret-pw', b64: Buffer.from('{"e":"x@p"}').toString('base64') } };

  it('a default replaces a missing key, a missing path and a missing version; present values win', () => {
    const rendered = render(
      {
        A: 'vault:secret/app#nokey?=dflt-a',
        B: 'vault:secret/gone#pw?=dflt-b',
        C: 'vault:secret/app#pw#9?=dflt-c',
        D: 'vault:secret/app#pw?=unused',
        E: 'x:${vault:secret/app#nokey?=}:${vault:secret/app#pw?=z}',
      },
      { 'secret/app': data, 'secret/gone': notFound('secret/gone'), 'secret/app#9': notFound('secret/app') },
    );
    expect(rendered.env).toEqual({
      A: 'dflt-a',
      B: 'dflt-b',
      C: 'dflt-c',
      D: 's3cret-pw',
      E: 'x::s3cret-pw',
    });
    expect(rendered.skipped).toEqual([]);
    // Defaults are not secrets (they are in the environment already); values read are.
    expect(rendered.secrets).not.toContain('dflt-a');
    expect(rendered.secrets).toContain('s3cret-pw');
  });

  it('`?` leaves the variable unset (whole or inline), marked optional, without --ignore-missing', () => {
    const rendered = render(
      { A: 'vault:secret/app#nokey?', B: 'pre-${vault:secret/gone#k?}', C: 'vault:secret/app#pw?' },
      { 'secret/app': data, 'secret/gone': notFound('secret/gone') },
    );
    expect(rendered.env).toEqual({ C: 's3cret-pw' });
    expect(rendered.skipped).toEqual([
      { name: 'A', reason: expect.stringMatching(/^A: key "nokey" not found/), optional: true },
      { name: 'B', reason: expect.stringMatching(/^B: no secret at secret\/gone/), optional: true },
    ]);
  });

  it.each<[string, ReadResult]>([
    ['PERMISSION_DENIED', { error: new VaultrunError('PERMISSION_DENIED', 'permission denied: secret/app') }],
    ['UNREACHABLE', { error: new VaultrunError('UNREACHABLE', 'Vault unreachable') }],
    ['VAULT_ERROR', { error: new VaultrunError('VAULT_ERROR', 'Vault answered 500') }],
  ])('%s still fails a reference with a default or `?`', (code, result) => {
    for (const value of ['vault:secret/app#pw?=d', 'vault:secret/app#pw?', 'x${vault:secret/app#pw?=d}']) {
      expect(thrown(() => render({ A: value }, { 'secret/app': result })).code).toBe(code);
    }
  });

  it('a filter that does not fit the value fails (even with a default): exit 64, naming the variable', () => {
    const error = thrown(() =>
      render({ GCP: 'vault:secret/app#pw|base64decode?=d' }, { 'secret/app': data }),
    );
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('GCP: secret/app#pw: base64decode: the value is not base64');
    expect(`${error.message}${error.hint}`).not.toContain('s3cret-pw');
  });

  it('filters apply inline and to NAME_FILE; base64-decoded bytes go to a file as bytes', () => {
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]);
    const rendered = render(
      {
        EMAIL: 'mail=${vault:secret/app#b64|base64decode|json:/e}',
        KEYSTORE_FILE: 'vault:secret/bin#ks|base64decode',
        TEXT_FILE: 'vault:secret/app#b64|base64decode',
      },
      { 'secret/app': data, 'secret/bin': { data: { ks: bytes.toString('base64') } } },
    );
    expect(rendered.env.EMAIL).toBe('mail=x@p');
    expect(Buffer.from(rendered.files.KEYSTORE_FILE as Uint8Array).equals(bytes)).toBe(true);
    expect(rendered.files.TEXT_FILE).toEqual(new Uint8Array(Buffer.from('{"e":"x@p"}')));
    expect(rendered.secrets).toContain('x@p');
  });

  it('bytes that are not UTF-8 in a variable: an error that says to use a file', () => {
    const error = thrown(() =>
      render({ KS: 'vault:secret/bin#ks|base64decode' }, { 'secret/bin': { data: { ks: '/v8=' } } }),
    );
    expect(error.message).toMatch(/^KS: secret\/bin#ks: a variable needs text, but the value is bytes/);
    expect(error.hint).toMatch(/NAME_FILE=vault:PATH#KEY\|base64decode/);
  });
});

describe('check rows: optional, default and filters', () => {
  const ref = (value: string) => {
    const parsed = parseValue('V', value);
    if (parsed.kind !== 'whole') throw new Error('not whole');
    return parsed.ref;
  };
  it('a missing key with a default or `?` does not fail the check, and says what would happen', () => {
    const rows = [
      checkRow('A', ref('vault:s#nokey?=x'), { data: { k: 'v' } }, false),
      checkRow('B', ref('vault:s#k?'), notFound('s'), false),
      checkRow('C', ref('vault:s#k'), notFound('s'), false),
    ];
    expect(rows.map((r) => [r.status, r.ignored ?? false, r.fallback])).toEqual([
      ['missing key', true, 'default'],
      ['missing path', true, 'unset'],
      ['missing path', false, undefined],
    ]);
    expect(formatCheckTable(rows)).toBe(
      'VARIABLE  REFERENCE   STATUS\n' +
        'A         s#nokey?=…  missing key (default used)\n' +
        'B         s#k?        missing path (optional: unset)\n' +
        'C         s#k         missing path\n',
    );
  });

  it('a filter that does not fit the value is an invalid row (exit 64), without the value', () => {
    const row = checkRow('GCP', ref('vault:s#k|base64decode|json:/a'), { data: { k: 'hunter2!' } }, false);
    expect(row).toMatchObject({ status: 'invalid', exit: 64 });
    expect(row.message).toMatch(/base64decode: the value is not base64/);
    expect(row.message).not.toContain('hunter2');
    const ok = checkRow('GCP', ref('vault:s#k|base64decode|json:/a'), { data: { k: 'eyJhIjoxfQ==' } }, false);
    expect(ok.status).toBe('ok');
  });
});

describe('properties', () => {
  const token = fc.stringMatching(/^[a-z][a-z0-9]{7,23}$/);
  const junk = fc.string({
    unit: fc.constantFrom(...'#/?=|}:~abj0-'.split(''), 'json:', 'base64decode', 'tojson', '${vault:'),
    maxLength: 12,
  });

  it('any value: parses or fails with our USAGE error naming the variable, never echoing a token', () => {
    fc.assert(
      fc.property(junk, token, junk, (a, secret, b) => {
        for (const value of [`vault:${a}${secret}${b}`, `x\${vault:${a}${secret}${b}}`]) {
          try {
            parseValue('MY_VAR', value);
          } catch (error) {
            if (!(error instanceof VaultrunError)) throw error;
            expect(error.code).toBe('USAGE');
            expect(error.message.startsWith('MY_VAR: ')).toBe(true);
            expect(`${error.message}\n${error.hint}`).not.toContain(secret);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round trip: a written reference parses back to what was written', () => {
    const key = fc.stringMatching(/^[A-Za-z0-9_.\- ]{1,8}$/).filter((k) => k.trim() === k);
    const filter = fc.constantFrom(
      'base64decode',
      'base64encode',
      'tojson',
      'json:',
      'json:/a/0',
      'json:/~0~1',
    );
    const fallback = fc.oneof(
      fc.constant(''),
      fc.constant('?'),
      fc
        .string({ maxLength: 8 })
        .filter((t) => !t.includes('}'))
        .map((t) => `?=${t}`),
    );
    fc.assert(
      fc.property(
        key,
        fc.option(fc.integer({ min: 1, max: 99 }), { nil: undefined }),
        fc.array(filter, { maxLength: 3 }),
        fallback,
        (k, version, filters, fb) => {
          const body = `secret/a#${k}${version ? `#${version}` : ''}${filters.map((f) => `|${f}`).join('')}${fb}`;
          const whole = parseValue('V', `vault:${body}`);
          const inline = parseValue('V', `\${vault:${body}}`);
          if (whole.kind !== 'whole' || inline.kind !== 'template') throw new Error('kind');
          expect(inline.segments).toEqual([{ ref: whole.ref }]);
          expect(whole.ref.key).toBe(k);
          expect(whole.ref.version).toBe(version);
          expect(whole.ref.filters?.length ?? 0).toBe(filters.length);
          expect(whole.ref.optional === true).toBe(fb === '?');
          expect(whole.ref.default).toBe(fb.startsWith('?=') ? fb.slice(2) : undefined);
          const shown = referenceText(whole.ref);
          expect(shown.startsWith(`secret/a#${k}`)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('base64encode then base64decode gives the bytes back, for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const encoded = applyFilters([{ name: 'base64encode' }], undefined);
        expect(encoded).toEqual({ value: '' });
        const b64 = Buffer.from(bytes).toString('base64');
        const decoded = applyFilters([{ name: 'base64decode' }], b64);
        expect('bytes' in decoded && Buffer.from(decoded.bytes).equals(Buffer.from(bytes))).toBe(true);
        const url = Buffer.from(bytes).toString('base64url');
        const decodedUrl = applyFilters([{ name: 'base64decode' }], url);
        expect('bytes' in decodedUrl && Buffer.from(decodedUrl.bytes).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });
});
