// Bulk import (--from-path / VAULTRUN_FROM_PATH / VAULT_ENV_FROM_PATH): the item grammar, the key → name rule,
// precedence and conflicts, the planner's one read per (path, version), and check's rows. Pure.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCheckTable, importRows } from '../../src/commands/check.js';
import { loadConfig } from '../../src/config.js';
import { VaultrunError } from '../../src/errors.js';
import { type ImportSpec, parseImport, parseImports } from '../../src/refs/imports.js';
import { planReferences, type ReadResult, renderPlan } from '../../src/refs/plan.js';
import { sameContent } from '../../src/run/rotation/change.js';
import { isOwnSetting } from '../../src/settings.js';
import { thrown } from '../support/errors.js';

const plan = (env: Record<string, string>, items: string[]) =>
  planReferences(env, { passthrough: new Set(), fileEnv: true, isOwnSetting, imports: parseImports(items) });
const results = (entries: Record<string, ReadResult>) => new Map(Object.entries(entries));

describe('parseImport', () => {
  it.each<[string, Omit<ImportSpec, 'label'>, string]>([
    ['secret/dify/api', { path: 'secret/dify/api', prefix: '' }, 'secret/dify/api'],
    ['/secret/dify/api/', { path: 'secret/dify/api', prefix: '' }, 'secret/dify/api'],
    ['secret/dify/api#3', { path: 'secret/dify/api', version: 3, prefix: '' }, 'secret/dify/api#3'],
    [
      ' secret/dify/api#3|prefix=DIFY_ ',
      { path: 'secret/dify/api', version: 3, prefix: 'DIFY_' },
      'secret/dify/api#3|prefix=DIFY_',
    ],
    ['kv/a=b:c|prefix=', { path: 'kv/a=b:c', prefix: '' }, 'kv/a=b:c'],
  ])('%j', (item, spec, label) => {
    expect(parseImport(item, 1)).toEqual({ ...spec, label });
  });

  it.each<[string, RegExp]>([
    ['#3', /empty path/],
    ['secret/../sys/x', /'\.' or '\.\.' segment/],
    ['sys/policies', /reserved sys\/ mount/],
    ['auth/token/lookup-self', /reserved auth\/ mount/],
    ['secret/a?x', /contains '\?'/],
    ['secret/a#0', /version must be a positive whole number/],
    ['secret/a#1#2', /too many '#'/],
    ['secret/a|prefx=X', /unknown option/],
    ['secret/a|prefix=1X', /a prefix is made of letters, digits and _/],
    ['secret/a|prefix=A-B', /a prefix is made of letters/],
  ])('%j is refused with exit 64, naming the setting and the item number, not the item', (item, problem) => {
    const error = thrown(() => parseImports(['secret/ok', item]));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^--from-path \/ VAULTRUN_FROM_PATH item 2: /);
    expect(error.message).toMatch(problem);
  });

  it('config: --from-path is repeatable; VAULTRUN_FROM_PATH and vault-env’s VAULT_ENV_FROM_PATH are comma lists', () => {
    const base = { VAULT_ADDR: 'http://127.0.0.1:8200' };
    expect(loadConfig({}, { ...base, VAULT_ENV_FROM_PATH: 'secret/a,secret/b#2' }).fromPaths).toEqual([
      { path: 'secret/a', prefix: '', label: 'secret/a' },
      { path: 'secret/b', version: 2, prefix: '', label: 'secret/b#2' },
    ]);
    expect(
      loadConfig({ fromPath: ['secret/a|prefix=X_', 'secret/c'] }, base).fromPaths.map((s) => s.label),
    ).toEqual(['secret/a|prefix=X_', 'secret/c']);
    expect(loadConfig({}, base).fromPaths).toEqual([]);
    expect(isOwnSetting('VAULT_ENV_FROM_PATH')).toBe(true); // scrubbed, never passed on
  });

  it('property: any item parses or fails with our USAGE error, never quoting it', () => {
    const junk = fc.string({ unit: fc.constantFrom(...'#/|=?._ab9-'.split(''), 'prefix='), maxLength: 10 });
    const token = fc.stringMatching(/^[a-z][a-z0-9]{7,15}$/);
    fc.assert(
      fc.property(junk, token, junk, (a, secret, b) => {
        try {
          parseImport(`${a}${secret}${b}`, 1);
        } catch (error) {
          if (!(error instanceof VaultrunError)) throw error;
          expect(error.code).toBe('USAGE');
          expect(`${error.message}\n${error.hint}`).not.toContain(secret);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('planning and rendering imports', () => {
  it('a path imported and also referenced is read once; versions are separate reads', () => {
    const p = plan({ DB: 'vault:secret/api#db', OLD: 'vault:secret/api#db#2' }, [
      'secret/api',
      'secret/api#2',
      'secret/x',
    ]);
    expect(p.reads.map((r) => [r.id, r.variables])).toEqual([
      ['secret/api', ['DB', 'VAULTRUN_FROM_PATH']],
      ['secret/api#2', ['OLD', 'VAULTRUN_FROM_PATH']],
      ['secret/x', ['VAULTRUN_FROM_PATH']],
    ]);
    expect(p.referenceCount).toBe(5);
  });

  it('keys become PREFIX+KEY unchanged; explicit variables win; invalid names and our settings are skipped', () => {
    const p = plan({ EXPLICIT: 'mine', FROM_REF: 'vault:secret/x#other' }, [
      'secret/api',
      'secret/x|prefix=X_',
    ]);
    const rendered = renderPlan(
      p,
      results({
        'secret/api': {
          data: {
            API_KEY: 'k1',
            EXPLICIT: 'theirs',
            FROM_REF: 'theirs',
            'tls.crt': 'c',
            '1ABC': 'n',
            VAULT_TOKEN: 'stolen',
            VAULTRUN_PASSTHROUGH: 'X',
            json: { a: 1 },
          },
        },
        'secret/x': { data: { other: 'o', lower_case: 'l' } },
      }),
      { ignoreMissing: false, isOwnSetting },
    );
    expect(rendered.env).toEqual({
      FROM_REF: 'o',
      API_KEY: 'k1',
      json: '{"a":1}',
      X_lower_case: 'l',
      X_other: 'o',
    });
    expect(rendered.imported).toEqual(['API_KEY', 'X_lower_case', 'X_other', 'json']);
    expect(rendered.importSkipped.map((s) => [s.key, s.reason])).toEqual([
      ['1ABC', 'invalid name'],
      ['EXPLICIT', 'explicit'],
      ['FROM_REF', 'explicit'],
      ['VAULTRUN_PASSTHROUGH', 'own setting'],
      ['VAULT_TOKEN', 'own setting'],
      ['tls.crt', 'invalid name'],
    ]);
    expect(rendered.secrets).toEqual(expect.arrayContaining(['k1', 'l']));
  });

  it('imported values are literal: never references, never files', () => {
    const rendered = renderPlan(
      plan({}, ['secret/api']),
      results({ 'secret/api': { data: { A: 'vault:secret/x#y', CERT_FILE: 'vault:secret/x#y' } } }),
      { ignoreMissing: false, isOwnSetting },
    );
    expect(rendered.env).toEqual({ A: 'vault:secret/x#y', CERT_FILE: 'vault:secret/x#y' });
    expect(rendered.files).toEqual({});
  });

  it('two imports defining one name: exit 64 naming the name and both paths', () => {
    const error = thrown(() =>
      renderPlan(
        plan({}, ['secret/a', 'secret/b']),
        results({ 'secret/a': { data: { TOKEN: 'x' } }, 'secret/b': { data: { TOKEN: 'y' } } }),
        { ignoreMissing: false, isOwnSetting },
      ),
    );
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe(
      'TOKEN: imported from both secret/a and secret/b (--from-path / VAULTRUN_FROM_PATH)',
    );
    expect(error.hint).toMatch(/prefix=PREFIX/);
  });

  it('a missing import path fails (66) unless --ignore-missing; a denied one always fails', () => {
    const missing = results({
      'secret/a': { error: new VaultrunError('NOT_FOUND', 'no secret at secret/a') },
    });
    const error = thrown(() => renderPlan(plan({}, ['secret/a']), missing, { ignoreMissing: false }));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toBe('--from-path secret/a: no secret at secret/a');
    expect(renderPlan(plan({}, ['secret/a']), missing, { ignoreMissing: true }).skipped).toEqual([
      { name: '*', reason: '--from-path secret/a: no secret at secret/a' },
    ]);
    const denied = results({
      'secret/a': { error: new VaultrunError('PERMISSION_DENIED', 'permission denied') },
    });
    expect(thrown(() => renderPlan(plan({}, ['secret/a']), denied, { ignoreMissing: true })).code).toBe(
      'PERMISSION_DENIED',
    );
  });
});

describe('check rows of imports', () => {
  it('lists each name an import defines or skips, never a value', () => {
    const p = plan({ SET: 'x' }, ['secret/api#2|prefix=P_', 'secret/gone', 'secret/empty']);
    const rows = importRows(
      p,
      results({
        'secret/api#2': { data: { KEY: 'hunter2', 'bad-key': 'v' } },
        'secret/gone': { error: new VaultrunError('NOT_FOUND', 'no secret at secret/gone') },
        'secret/empty': { data: {} },
      }),
      false,
    );
    const table = formatCheckTable(rows);
    expect(table).toBe(
      'VARIABLE   REFERENCE                      STATUS\n' +
        'P_KEY      secret/api#KEY#2 (import)      ok\n' +
        'P_bad-key  secret/api#bad-key#2 (import)  skipped\n' +
        '*          secret/gone (import)           missing path\n' +
        '*          secret/empty (import)          ok\n',
    );
    expect(JSON.stringify(rows)).not.toContain('hunter2');
    expect(rows[2]?.exit).toBe(66);
  });
});

describe('sameContent (a secret file that holds bytes)', () => {
  it('compares bytes by content, so an unchanged binary file is not a change', () => {
    expect(sameContent(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(sameContent(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(sameContent('a', new Uint8Array([97]))).toBe(false);
    expect(sameContent('a', 'a')).toBe(true);
    expect(sameContent(undefined, 'a')).toBe(false);
  });
});
