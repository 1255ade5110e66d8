import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EnvFile, mergeEnv, readEnvFile } from '../../src/env/sources.js';
import { rejected } from '../support/errors.js';

const file = (path: string, vars: Record<string, string>): EnvFile => ({ path, vars });

describe('mergeEnv', () => {
  const first = file('/first.env', { A: 'first', B: 'first', C: 'first' });
  const second = file('/second.env', { B: 'second', C: 'second', D: 'second' });
  const processEnv = { C: 'process', E: 'process', F: undefined };

  it('by default: the process environment beats files, a later file beats an earlier one', () => {
    expect(mergeEnv(processEnv, [first, second], false)).toEqual({
      A: 'first',
      B: 'second',
      C: 'process',
      D: 'second',
      E: 'process',
    });
  });

  it('with override: files beat the process environment, still the later file winning', () => {
    expect(mergeEnv(processEnv, [first, second], true)).toEqual({
      A: 'first',
      B: 'second',
      C: 'second',
      D: 'second',
      E: 'process',
    });
  });

  it('order of files matters', () => {
    expect(mergeEnv({}, [second, first], false)).toMatchObject({ B: 'first', C: 'first' });
  });

  it('drops undefined process values, but keeps empty strings (an empty string is set)', () => {
    const merged = mergeEnv(
      { EMPTY: '', GONE: undefined },
      [file('/f', { EMPTY: 'from-file', GONE: 'from-file' })],
      false,
    );
    expect(merged).toEqual({ EMPTY: '', GONE: 'from-file' });
  });

  it('without files returns the process environment', () => {
    expect(mergeEnv({ A: '1', B: undefined }, [], false)).toEqual({ A: '1' });
    expect(mergeEnv({ A: '1' }, [], true)).toEqual({ A: '1' });
  });

  it('does not modify its inputs', () => {
    const env = { A: 'p' };
    const f = file('/f', { A: 'f', B: 'f' });
    mergeEnv(env, [f], true);
    expect(env).toEqual({ A: 'p' });
    expect(f.vars).toEqual({ A: 'f', B: 'f' });
  });
});

describe('readEnvFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-sources-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses dotenv syntax, keeping references as text', async () => {
    const path = join(dir, 'app.env');
    await writeFile(
      path,
      [
        '# comment',
        'DB_PASSWORD=vault:secret/db#password',
        "DSN='postgres://${vault:secret/db#user}@db/app'",
        'PLAIN="quoted value"',
        'export EXPORTED=yes',
        '',
      ].join('\n'),
    );
    expect(await readEnvFile(path)).toEqual({
      path,
      vars: {
        DB_PASSWORD: 'vault:secret/db#password',
        DSN: 'postgres://${vault:secret/db#user}@db/app',
        PLAIN: 'quoted value',
        EXPORTED: 'yes',
      },
    });
  });

  it('fails with IO naming the file and the reason', async () => {
    const path = join(dir, 'missing.env');
    const error = await rejected(readEnvFile(path));
    expect(error.code).toBe('IO');
    expect(error.message).toBe(`cannot read env file ${path}: ENOENT`);
    expect(error.hint).toContain('--env-file');
  });
});
