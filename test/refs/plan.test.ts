import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import {
  isFileVariable,
  type Plan,
  type PlanOptions,
  planReferences,
  type ReadResult,
  renderPlan,
  secretToString,
} from '../../src/refs/plan.js';
import { isOwnSetting } from '../../src/settings.js';
import { thrown } from '../support/errors.js';

const options = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  passthrough: new Set(),
  fileEnv: true,
  isOwnSetting,
  ...over,
});

describe('planReferences', () => {
  it('makes one read per (path, version), listing every variable that uses it', () => {
    const plan = planReferences(
      {
        E: 'vault:secret/other#k',
        B: 'vault:secret/db#password',
        A: 'vault:secret/db#user',
        C: 'postgres://${vault:secret/db#user}:${vault:secret/db#password}@h/app',
        D: 'vault:secret/db#password#2',
        F: '${vault:secret/db#password#2}',
        PLAIN: 'nothing to see',
      },
      options(),
    );
    expect(plan.reads).toEqual([
      { id: 'secret/db', path: 'secret/db', variables: ['A', 'B', 'C'] },
      { id: 'secret/db#2', path: 'secret/db', version: 2, variables: ['D', 'F'] },
      { id: 'secret/other', path: 'secret/other', variables: ['E'] },
    ]);
    expect(plan.vars.map((v) => v.name)).toEqual(['A', 'B', 'C', 'D', 'E', 'F']);
    expect(plan.referenceCount).toBe(7);
  });

  it('reads a path once however many variables use it', () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 100; i++) env[`VAR_${String(i).padStart(3, '0')}`] = `vault:secret/shared#key${i}`;
    const plan = planReferences(env, options());
    expect(plan.reads).toHaveLength(1);
    expect(plan.reads[0]?.variables).toEqual(Object.keys(env).sort());
    expect(plan.referenceCount).toBe(100);
  });

  it('treats spellings of a path with extra slashes as the same read', () => {
    const plan = planReferences(
      { A: 'vault:/secret/db/#u', B: 'vault:secret/db#p', C: '${vault:secret/db/#q}' },
      options(),
    );
    expect(plan.reads).toEqual([{ id: 'secret/db', path: 'secret/db', variables: ['A', 'B', 'C'] }]);
  });

  it('lists a variable once per read, but counts each of its references', () => {
    const plan = planReferences({ URL: '${vault:a#u}:${vault:a#p}@${vault:a#h}' }, options());
    expect(plan.reads).toEqual([{ id: 'a', path: 'a', variables: ['URL'] }]);
    expect(plan.referenceCount).toBe(3);
  });

  it('plans nothing for an environment without references', () => {
    expect(planReferences({ HOME: '/root', PATH: '/bin', X: 'my vault' }, options())).toEqual({
      vars: [],
      reads: [],
      referenceCount: 0,
      imports: [],
      explicit: new Set(['HOME', 'PATH', 'X']),
    });
  });

  it('skips passthrough variables, even with invalid reference syntax', () => {
    const plan = planReferences(
      { KEEP: 'vault:secret/a#b', BROKEN: 'vault:not-a-reference', USED: 'vault:secret/c#d' },
      options({ passthrough: new Set(['KEEP', 'BROKEN']) }),
    );
    expect(plan.vars.map((v) => v.name)).toEqual(['USED']);
    expect(plan.reads.map((r) => r.path)).toEqual(['secret/c']);
  });

  it('skips our own settings (VAULT_*, VAULTRUN_*, the BAO_* we read) but not other BAO_* variables', () => {
    const plan = planReferences(
      {
        VAULT_TOKEN: 'vault:secret/a#b',
        VAULT_ANYTHING: 'vault:broken',
        VAULTRUN_SOMETHING: 'vault:secret/a#b',
        BAO_ADDR: 'vault:secret/a#b',
        BAO_TOKEN: 'vault:secret/a#b',
        BAO_APP_SETTING: 'vault:secret/app#x',
      },
      options(),
    );
    expect(plan.vars.map((v) => v.name)).toEqual(['BAO_APP_SETTING']);
  });

  it.each<[string, string, boolean, 'env' | 'file']>([
    ['DB_PASSWORD_FILE', 'vault:secret/db#password', true, 'file'],
    ['DB_PASSWORD_FILE', 'vault:secret/db#password', false, 'env'],
    ['DSN_FILE', 'x${vault:secret/db#password}', true, 'file'],
    ['DB_PASSWORD', 'vault:secret/db#password', true, 'env'],
    ['_FILE', 'vault:secret/db#password', true, 'env'],
    ['DB_FILE_PATH', 'vault:secret/db#password', true, 'env'],
    ['db_password_file', 'vault:secret/db#password', true, 'env'],
  ])('%s=%s with fileEnv=%s → target %s', (name, value, fileEnv, target) => {
    const plan = planReferences({ [name]: value }, options({ fileEnv }));
    expect(plan.vars).toHaveLength(1);
    expect(plan.vars[0]?.target).toBe(target);
  });

  it('fails on invalid syntax, naming the variable', () => {
    const error = thrown(() => planReferences({ OK: 'vault:a#b', DB_URL: 'x${vault:a#b' }, options()));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^DB_URL: /);
  });

  it('ignores undefined values', () => {
    const env = { A: undefined, B: 'vault:a#b' } as unknown as Record<string, string>;
    expect(planReferences(env, options()).vars.map((v) => v.name)).toEqual(['B']);
  });
});

describe('isFileVariable', () => {
  it.each<[string, boolean]>([
    ['DB_PASSWORD_FILE', true],
    ['X_FILE', true],
    ['_FILE', false],
    ['FILE', false],
    ['DB_FILE_X', false],
    ['db_password_file', false],
  ])('%s → %s', (name, expected) => {
    expect(isFileVariable(name)).toBe(expected);
  });
});

describe('secretToString', () => {
  it.each<[unknown, string]>([
    ['plain', 'plain'],
    ['', ''],
    [' spaced \n', ' spaced \n'],
    [42, '42'],
    [0, '0'],
    [-1.5, '-1.5'],
    [10n, '10'],
    [true, 'true'],
    [false, 'false'],
    [null, ''],
    [{ a: 1, b: 'x' }, '{"a":1,"b":"x"}'],
    [[1, 'a', null], '[1,"a",null]'],
    [{}, '{}'],
  ])('%o → %j', (value, expected) => {
    expect(secretToString(value)).toBe(expected);
  });
});

describe('renderPlan', () => {
  const DB = { user: 'alice', password: 'pw-9f8e7d6c', port: 5432, tls: true, extra: null };
  const plan = (env: Record<string, string>, fileEnv = true): Plan =>
    planReferences(env, options({ fileEnv }));
  const results = (entries: Record<string, ReadResult>): Map<string, ReadResult> =>
    new Map(Object.entries(entries));

  it('renders whole values, templates and files', () => {
    const rendered = renderPlan(
      plan({
        USER: 'vault:secret/db#user',
        PORT: 'vault:secret/db#port',
        TLS: 'vault:secret/db#tls',
        EXTRA: 'vault:secret/db#extra',
        OLD: 'vault:secret/db#password#1',
        URL: 'postgres://${vault:secret/db#user}:${vault:secret/db#password}@db:${vault:secret/db#port}/app',
        DB_PASSWORD_FILE: 'vault:secret/db#password',
      }),
      results({ 'secret/db': { data: DB }, 'secret/db#1': { data: { password: 'old-password' } } }),
      { ignoreMissing: false },
    );
    expect(rendered).toEqual({
      env: {
        USER: 'alice',
        PORT: '5432',
        TLS: 'true',
        EXTRA: '',
        OLD: 'old-password',
        URL: 'postgres://alice:pw-9f8e7d6c@db:5432/app',
      },
      files: { DB_PASSWORD_FILE: 'pw-9f8e7d6c' },
      skipped: [],
      secrets: expect.arrayContaining(['alice', 'pw-9f8e7d6c', 'old-password', '5432']),
      imported: [],
      importSkipped: [],
    });
  });

  it('does not resolve references inside secret values', () => {
    const rendered = renderPlan(
      plan({ A: 'vault:s#k', B: 'x${vault:s#k}' }),
      results({ s: { data: { k: 'vault:other#key ${vault:other#key}' } } }),
      { ignoreMissing: false },
    );
    expect(rendered.env).toEqual({
      A: 'vault:other#key ${vault:other#key}',
      B: 'xvault:other#key ${vault:other#key}',
    });
  });

  it('fails with NOT_FOUND naming variable, path and key, listing key names but no values', () => {
    const error = thrown(() =>
      renderPlan(plan({ DB_PASS: 'vault:secret/db#passwd' }), results({ 'secret/db': { data: DB } }), {
        ignoreMissing: false,
      }),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe('DB_PASS: key "passwd" not found at secret/db');
    expect(error.hint).toBe('did you mean "password"? keys there: extra, password, port, tls, user');
    for (const text of [error.message, error.hint]) {
      expect(text).not.toContain('alice');
      expect(text).not.toContain('pw-9f8e7d6c');
      expect(text).not.toContain('5432');
    }
  });

  it('names the version of a missing key, and says when a secret has no keys', () => {
    const error = thrown(() =>
      renderPlan(plan({ A: '${vault:secret/db#x#4}' }), results({ 'secret/db#4': { data: {} } }), {
        ignoreMissing: false,
      }),
    );
    expect(error.message).toBe('A: key "x" not found at secret/db (version 4)');
    expect(error.hint).toBe('the secret has no keys');
  });

  it('does not take inherited properties for keys', () => {
    const error = thrown(() =>
      renderPlan(plan({ A: 'vault:s#toString' }), results({ s: { data: { k: 'v' } } }), {
        ignoreMissing: false,
      }),
    );
    expect(error.code).toBe('NOT_FOUND');
  });

  it('propagates a failed read with its code and hint, naming the variable', () => {
    const cause = new VaultrunError('PERMISSION_DENIED', 'permission denied while reading secret/db', {
      hint: 'grant read',
    });
    const error = thrown(() =>
      renderPlan(plan({ DB_USER: 'vault:secret/db#user' }), results({ 'secret/db': { error: cause } }), {
        ignoreMissing: false,
      }),
    );
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toBe('DB_USER: permission denied while reading secret/db');
    expect(error.hint).toBe('grant read');
    expect(error.cause).toBe(cause);
  });

  it('does not name the variable twice when the message already starts with it', () => {
    const cause = new VaultrunError('VAULT_ERROR', 'A: already named');
    const error = thrown(() =>
      renderPlan(plan({ A: 'vault:s#k' }), results({ s: { error: cause } }), { ignoreMissing: false }),
    );
    expect(error.message).toBe('A: already named');
  });

  it('reports a read that was never made as an internal error', () => {
    const error = thrown(() => renderPlan(plan({ A: 'vault:s#k' }), new Map(), { ignoreMissing: false }));
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toContain('A');
  });

  it('with ignoreMissing, skips variables whose key or path is missing, and keeps the others', () => {
    const rendered = renderPlan(
      plan({
        GOOD: 'vault:secret/db#user',
        NO_KEY: 'x${vault:secret/db#nope}',
        NO_PATH: 'vault:secret/gone#k',
        NO_PATH_FILE: 'vault:secret/gone#k',
      }),
      results({
        'secret/db': { data: DB },
        'secret/gone': { error: new VaultrunError('NOT_FOUND', 'no secret at secret/gone') },
      }),
      { ignoreMissing: true },
    );
    expect(rendered.env).toEqual({ GOOD: 'alice' });
    expect(rendered.files).toEqual({});
    expect(rendered.skipped.map((s) => s.name)).toEqual(['NO_KEY', 'NO_PATH', 'NO_PATH_FILE']);
    const [noKey, noPath, noPathFile] = rendered.skipped.map((s) => s.reason);
    expect(noKey).toBe('NO_KEY: key "nope" not found at secret/db');
    expect(noPath).toMatch(/^NO_PATH: no secret at secret\/gone\b/);
    expect(noPathFile).toMatch(/^NO_PATH_FILE: no secret at secret\/gone\b/);
  });

  it('with ignoreMissing, still fails on anything but NOT_FOUND', () => {
    const error = thrown(() =>
      renderPlan(
        plan({ MISSING: 'vault:secret/db#nope', DENIED: 'vault:secret/locked#k' }),
        results({
          'secret/db': { data: DB },
          'secret/locked': { error: new VaultrunError('PERMISSION_DENIED', 'permission denied') },
        }),
        { ignoreMissing: true },
      ),
    );
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toBe('DENIED: permission denied');
  });

  it('without ignoreMissing, reports every failure in one error, one variable per line', () => {
    const error = thrown(() =>
      renderPlan(
        plan({
          A_MISSING: 'vault:secret/db#nope',
          B_DENIED: 'vault:secret/locked#k',
          C_OK: 'vault:secret/db#user',
          D_GONE: 'x${vault:secret/gone#k}',
        }),
        results({
          'secret/db': { data: DB },
          'secret/locked': {
            error: new VaultrunError('PERMISSION_DENIED', 'permission denied', { hint: 'fix policy' }),
          },
          'secret/gone': { error: new VaultrunError('NOT_FOUND', 'no secret at secret/gone') },
        }),
        { ignoreMissing: false },
      ),
    );
    const [head, ...lines] = error.message.split('\n');
    expect(head).toBe('3 references could not be resolved:');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('  A_MISSING: key "nope" not found at secret/db');
    expect(lines[1]).toBe('  B_DENIED: permission denied');
    expect(lines[2]).toMatch(/^ {2}D_GONE: no secret at secret\/gone\b/);
    // Lines in variable order; the most serious failure decides the code and the hint, whatever the names.
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.hint).toBe('fix policy');
    expect(error.message).not.toContain('alice');
  });
});
