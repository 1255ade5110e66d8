// `vaultrun check`, the pure parts: a row per reference with its status, the exit status (the highest failing
// one), and the table.
import { describe, expect, it } from 'vitest';
import {
  type CheckRow,
  checkExitStatus,
  checkRow,
  checkRows,
  formatCheckTable,
} from '../../src/commands/check.js';
import { VaultrunError } from '../../src/errors.js';
import { planReferences, type ReadResult } from '../../src/refs/plan.js';
import { isOwnSetting } from '../../src/settings.js';

const ref = { path: 'secret/app/db', key: 'password' };
const error = (code: VaultrunError['code'], message = 'nope'): ReadResult => ({
  error: new VaultrunError(code, message),
});

describe('checkRow', () => {
  it.each<[string, ReadResult | undefined, Partial<CheckRow>]>([
    ['ok', { data: { password: 'x' } }, { status: 'ok', exit: 0 }],
    ['key present with a null value is ok', { data: { password: null } }, { status: 'ok', exit: 0 }],
    ['missing key', { data: { user: 'x', host: 'y' } }, { status: 'missing key', exit: 66 }],
    ['missing path', error('NOT_FOUND'), { status: 'missing path', exit: 66 }],
    ['denied', error('PERMISSION_DENIED'), { status: 'denied', exit: 77 }],
    ['invalid (a version on a path that has none)', error('USAGE'), { status: 'invalid', exit: 64 }],
    ['unexpected answer', error('VAULT_ERROR'), { status: 'error', exit: 76 }],
    ['no read (a bug)', undefined, { status: 'error', exit: 70 }],
  ])('%s', (_, result, expected) => {
    expect(checkRow('DB_PASSWORD', ref, result, false)).toMatchObject({
      variable: 'DB_PASSWORD',
      reference: 'secret/app/db#password',
      ...expected,
    });
  });

  it('names the keys there for a missing key (names, never values)', () => {
    const row = checkRow('DB_PASSWORD', ref, { data: { user: 'alice-value', host: 'h' } }, false);
    expect(row.message).toBe('key "password" not found at secret/app/db; keys there: host, user');
    expect(row.message).not.toContain('alice-value');
  });

  it('--ignore-missing marks missing paths and keys as ignored, nothing else', () => {
    expect(checkRow('A', ref, error('NOT_FOUND'), true).ignored).toBe(true);
    expect(checkRow('A', ref, { data: {} }, true).ignored).toBe(true);
    expect(checkRow('A', ref, error('PERMISSION_DENIED'), true).ignored).toBeUndefined();
  });

  it('shows the version of a versioned reference', () => {
    expect(checkRow('A', { ...ref, version: 3 }, { data: { password: 'x' } }, false).reference).toBe(
      'secret/app/db#password#3',
    );
  });
});

describe('checkRows', () => {
  it('one row per reference, a template with two references has two', () => {
    const plan = planReferences(
      { URL: 'redis://${vault:secret/r#user}:${vault:secret/r#password}@h', DB: 'vault:secret/db#pw' },
      { passthrough: new Set(), fileEnv: true, isOwnSetting },
    );
    const results = new Map<string, ReadResult>([
      ['secret/r', { data: { user: 'u' } }],
      ['secret/db', error('PERMISSION_DENIED')],
    ]);
    expect(checkRows(plan, results, false).map((r) => [r.variable, r.reference, r.status])).toEqual([
      ['DB', 'secret/db#pw', 'denied'],
      ['URL', 'secret/r#user', 'ok'],
      ['URL', 'secret/r#password', 'missing key'],
    ]);
  });
});

describe('checkExitStatus', () => {
  const row = (status: CheckRow['status'], exit: number, ignored?: boolean): CheckRow => ({
    variable: 'A',
    reference: 'p#k',
    status,
    exit,
    ...(ignored ? { ignored } : {}),
  });

  it.each<[string, CheckRow[], number]>([
    ['all ok', [row('ok', 0), row('ok', 0)], 0],
    ['nothing', [], 0],
    ['missing', [row('ok', 0), row('missing key', 66)], 66],
    ['denied beats missing', [row('missing path', 66), row('denied', 77)], 77],
    ['an unexpected answer beats missing', [row('missing path', 66), row('error', 76)], 76],
    ['missing beats invalid', [row('invalid', 64), row('missing key', 66)], 66],
    ['ignored rows do not count', [row('ok', 0), row('missing key', 66, true)], 0],
  ])('%s → %i', (_, rows, status) => {
    expect(checkExitStatus(rows)).toBe(status);
  });
});

describe('formatCheckTable', () => {
  it('aligns the columns under a header, marking ignored rows', () => {
    expect(
      formatCheckTable([
        { variable: 'DB_PASSWORD', reference: 'secret/app/db#password', status: 'ok', exit: 0 },
        { variable: 'X', reference: 'kv/x#k', status: 'missing key', exit: 66, ignored: true },
        { variable: 'BAD', reference: '-', status: 'invalid', exit: 64 },
      ]),
    ).toBe(
      [
        'VARIABLE     REFERENCE               STATUS',
        'DB_PASSWORD  secret/app/db#password  ok',
        'X            kv/x#k                  missing key (ignored)',
        'BAD          -                       invalid',
        '',
      ].join('\n'),
    );
  });
});
