import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors.js';
import {
  type ParsedValue,
  parseRefBody,
  parseValue,
  type Ref,
  readId,
  refsOf,
} from '../../src/refs/parse.js';
import { thrown } from '../support/errors.js';

describe('parseValue: whole-value references', () => {
  it.each<[string, Ref]>([
    ['vault:secret/dify/db#password', { path: 'secret/dify/db', key: 'password' }],
    ['vault:secret/dify/db#password#3', { path: 'secret/dify/db', key: 'password', version: 3 }],
    ['vault:secret/a#k#1234567890', { path: 'secret/a', key: 'k', version: 1234567890 }],
    ['vault:kv1/app#api-key', { path: 'kv1/app', key: 'api-key' }],
    ['vault:database/creds/readonly#username', { path: 'database/creds/readonly', key: 'username' }],
    ['vault:secret#k', { path: 'secret', key: 'k' }],
    // Leading and trailing slashes are dropped: `vault kv get /secret/app/` reads the same secret.
    ['vault:/secret/app/#k', { path: 'secret/app', key: 'k' }],
    ['vault://secret/app//#k', { path: 'secret/app', key: 'k' }],
    // Keys may hold anything but '#', including '}' and spaces (only inline references end at '}').
    ['vault:secret/a#some.key with space', { path: 'secret/a', key: 'some.key with space' }],
    ['vault:secret/a#b}', { path: 'secret/a', key: 'b}' }],
    ['vault:secret/a#${x}', { path: 'secret/a', key: '${x}' }],
    ['vault:secret/my app/x.y#k', { path: 'secret/my app/x.y', key: 'k' }],
  ])('%s', (value, ref) => {
    expect(parseValue('VAR', value)).toEqual({ kind: 'whole', ref });
  });

  it('keeps the version a number, absent when not given', () => {
    const parsed = parseValue('VAR', 'vault:a#b');
    expect(parsed).toEqual({ kind: 'whole', ref: { path: 'a', key: 'b' } });
    expect(parsed.kind === 'whole' && 'version' in parsed.ref).toBe(false);
  });
});

describe('parseValue: inline references', () => {
  const ref = (path: string, key: string, version?: number) => ({
    ref: version === undefined ? { path, key } : { path, key, version },
  });
  it.each<[string, ParsedValue]>([
    [
      'postgres://app:${vault:secret/db#password}@db:5432/app',
      {
        kind: 'template',
        segments: [{ text: 'postgres://app:' }, ref('secret/db', 'password'), { text: '@db:5432/app' }],
      },
    ],
    ['${vault:a#b}', { kind: 'template', segments: [ref('a', 'b')] }],
    ['${vault:a#b}-suffix', { kind: 'template', segments: [ref('a', 'b'), { text: '-suffix' }] }],
    ['prefix-${vault:a#b}', { kind: 'template', segments: [{ text: 'prefix-' }, ref('a', 'b')] }],
    ['${vault:a#b#7}', { kind: 'template', segments: [ref('a', 'b', 7)] }],
    ['${vault:a#b}${vault:c/d#e#2}', { kind: 'template', segments: [ref('a', 'b'), ref('c/d', 'e', 2)] }],
    [
      'x${vault:a#b}y${vault:c#d}z',
      {
        kind: 'template',
        segments: [{ text: 'x' }, ref('a', 'b'), { text: 'y' }, ref('c', 'd'), { text: 'z' }],
      },
    ],
    [
      '${vault:a#user}:${vault:a#pass}',
      { kind: 'template', segments: [ref('a', 'user'), { text: ':' }, ref('a', 'pass')] },
    ],
    ['$${vault:a#b}', { kind: 'template', segments: [{ text: '$' }, ref('a', 'b')] }],
    // A text that looks like a whole-value reference, but not at the start, is just text.
    ['x vault:a#b ${vault:c#d}', { kind: 'template', segments: [{ text: 'x vault:a#b ' }, ref('c', 'd')] }],
    ['${vault:/secret/app/#k} }', { kind: 'template', segments: [ref('secret/app', 'k'), { text: ' }' }] }],
  ])('%s', (value, expected) => {
    expect(parseValue('VAR', value)).toEqual(expected);
  });
});

describe('parseValue: plain values', () => {
  it.each([
    '',
    'hello',
    'vault',
    'my vault is secure',
    'https://vault.example.com:8200',
    'Vault:secret/a#b',
    'VAULT:secret/a#b',
    ' vault:secret/a#b',
    'novault:secret/a#b',
    '$vault:secret/a#b',
    '{vault:secret/a#b}',
    '${HOME}/bin',
    '${vault}',
    '${vault :a#b}',
    '${VAULT:a#b}',
    '${ vault:a#b}',
    '$ {vault:a#b}',
    '#vault:a#b',
    'a#b#c',
    '${',
    '}',
  ])('%j', (value) => {
    expect(parseValue('VAR', value)).toEqual({ kind: 'plain' });
  });
});

describe('parseValue: syntax errors', () => {
  it.each<[string, RegExp]>([
    ['vault:secret/db', /missing #KEY/],
    ['vault:', /missing #KEY/],
    ['vault:#k', /empty path/],
    ['vault:/#k', /empty path/],
    ['vault:///#k', /empty path/],
    ['vault:secret/db#', /empty key/],
    ['vault:secret/db##2', /empty key/],
    ['vault:a#b#c#d', /too many '#'/],
    ['vault:a#b#1#', /too many '#'/],
    ['vault:a#b#0', /version must be a positive whole number/],
    ['vault:a#b#-1', /version must be a positive whole number/],
    ['vault:a#b#1.5', /version must be a positive whole number/],
    ['vault:a#b#abc', /version must be a positive whole number/],
    ['vault:a#b#', /version must be a positive whole number/],
    ['vault:a#b#01', /version must be a positive whole number/],
    ['vault:a#b# 1', /version must be a positive whole number/],
    ['vault:a#b#1e3', /version must be a positive whole number/],
    ['vault:a#b#12345678901', /version must be a positive whole number/],
    ['vault:secret/../x#k', /'\.\.' segment/],
    ['vault:../secret#k', /'\.\.' segment/],
    ['vault:secret/..#k', /'\.\.' segment/],
    ['vault:./secret#k', /'\.' or '\.\.' segment/],
    ['vault:secret/./x#k', /'\.' or '\.\.' segment/],
    ['vault:secret//x#k', /empty, '\.' or '\.\.' segment/],
    ['${vault:a#b', /not closed/],
    ['x${vault:a#b}${vault:c#d', /not closed/],
    ['${vault:', /not closed/],
    ['${vault:a}', /missing #KEY/],
    ['${vault:#k}', /empty path/],
    ['${vault:a#}', /empty key/],
    ['${vault:a#b#0}', /version must be/],
    ['${vault:a#b#c#d}', /too many '#'/],
    ['${vault:a/../b#k}', /'\.\.' segment/],
    ['ok ${vault:a#b} then ${vault:bad}', /missing #KEY/],
    // A whole-value reference ends at the end of the value: an inline one after it makes the version bad.
    ['vault:a#b${vault:c#d}', /version must be/],
  ])('%s', (value, problem) => {
    const error = thrown(() => parseValue('MY_VAR', value));
    expect(error.code).toBe('USAGE');
    expect(error.exitCode).toBe(EXIT_CODES.USAGE);
    expect(error.message).toMatch(/^MY_VAR: invalid Vault reference: /);
    expect(error.message).toMatch(problem);
    expect(error.hint).toContain('VAULTRUN_PASSTHROUGH');
  });

  it('names the variable it was given, whatever it is', () => {
    expect(thrown(() => parseValue('DB_URL', 'vault:x')).message).toMatch(/^DB_URL: /);
    expect(thrown(() => parseValue('other.name', '${vault:x')).message).toMatch(/^other\.name: /);
  });

  it('never repeats the value in the message or the hint', () => {
    const value = 'vault:hunter2-S3CRET-passw0rd';
    const error = thrown(() => parseValue('PASSWORD', value));
    expect(error.message).not.toContain('hunter2');
    expect(error.hint).not.toContain('hunter2');
  });
});

describe('parseRefBody', () => {
  it('parses the body without the vault: prefix', () => {
    expect(parseRefBody('V', 'secret/x#k#2')).toEqual({ path: 'secret/x', key: 'k', version: 2 });
  });

  it('does not strip a vault: prefix from the body (the caller does)', () => {
    expect(parseRefBody('V', 'vault:secret/x#k')).toEqual({ path: 'vault:secret/x', key: 'k' });
  });
});

describe('refsOf and readId', () => {
  it('lists the references of each kind of value, in order', () => {
    expect(refsOf({ kind: 'plain' })).toEqual([]);
    expect(refsOf(parseValue('V', 'vault:a#b#2'))).toEqual([{ path: 'a', key: 'b', version: 2 }]);
    expect(refsOf(parseValue('V', 'x${vault:a#b}y${vault:c#d#3}${vault:a#b}'))).toEqual([
      { path: 'a', key: 'b' },
      { path: 'c', key: 'd', version: 3 },
      { path: 'a', key: 'b' },
    ]);
  });

  it.each<[Pick<Ref, 'path' | 'version'>, string]>([
    [{ path: 'secret/a' }, 'secret/a'],
    [{ path: 'secret/a', version: 3 }, 'secret/a#3'],
  ])('readId(%o) = %s', (ref, id) => {
    expect(readId(ref)).toBe(id);
  });

  it('gives different versions of a path different ids, and the key no part in it', () => {
    const ids = new Set(
      ['vault:a#x', 'vault:a#y', 'vault:a#x#1', 'vault:a#y#1', 'vault:a#x#2'].map((v) => {
        const [ref] = refsOf(parseValue('V', v));
        return readId(ref as Ref);
      }),
    );
    expect([...ids].sort()).toEqual(['a', 'a#1', 'a#2']);
  });
});
