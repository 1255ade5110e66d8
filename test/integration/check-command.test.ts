// `vaultrun check` against a real OpenBao: a status per reference (ok, missing path, missing key, denied,
// invalid) without stopping at the first failure, the highest failing status as exit status, never a value in
// the output; and `vaultrun -- check` still runs a program named check.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { writeFile } from '../support/processes.js';
import { auditRequests, expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

describe('vaultrun check', () => {
  let bao: OpenBao;
  let token: string;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));
  const user = sensitive.add('db user', unique('dbuser'));
  const oldKey = sensitive.add('old api key', unique('apikey1'));

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/db', { password, user });
    await bao.kvPut('app/api', { key: oldKey });
    await bao.kvPut('app/api', { key: sensitive.add('api key', unique('apikey2')) });
    await bao.api('POST', 'secret/delete/app/api', { versions: [1] });
    await bao.kvPut('other/x', { k: sensitive.add('other secret', unique('other')) });
    await bao.writePolicy('read-app', 'path "secret/data/app/*" { capabilities = ["read"] }');
    token = sensitive.add('token', await bao.createToken({ policies: ['read-app'], ttl: '1h' }));
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function check(vars: Record<string, string>, args: string[] = []): Promise<RunResult> {
    const result = await runVaultrun(['check', ...args], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: token, VAULTRUN_LOG_LEVEL: 'debug', ...vars }),
    });
    expectNoLeaks(`${result.stdout}${result.stderr}`, sensitive);
    return result;
  }

  /** The table's rows as [variable, reference, status]. */
  function rows(stdout: string): string[][] {
    const [header, ...lines] = stdout.trimEnd().split('\n');
    expect(header).toMatch(/^VARIABLE +REFERENCE +STATUS$/);
    return lines.map((l) => {
      const [variable = '', reference = '', ...status] = l.split(/ {2,}/);
      return [variable, reference, status.join('  ')];
    });
  }

  it('a status for every reference, without stopping at the first failure; exit: the highest (77)', async () => {
    const result = await check({
      DB_PASSWORD: 'vault:secret/app/db#password',
      DB_URL: 'postgres://${vault:secret/app/db#user}:${vault:secret/app/db#pasword}@db/app',
      API_KEY_V1: 'vault:secret/app/api#key#1',
      MISSING: 'vault:secret/app/nope#key',
      OTHER: 'vault:secret/other/x#k',
      BROKEN: 'vault:secret/app/db',
      PLAIN: 'not a reference',
    });
    expect(result.exitCode).toBe(77);
    expect(rows(result.stdout)).toEqual([
      ['API_KEY_V1', 'secret/app/api#key#1', 'missing path'],
      ['BROKEN', '-', 'invalid'],
      ['DB_PASSWORD', 'secret/app/db#password', 'ok'],
      ['DB_URL', 'secret/app/db#user', 'ok'],
      ['DB_URL', 'secret/app/db#pasword', 'missing key'],
      ['MISSING', 'secret/app/nope#key', 'missing path'],
      ['OTHER', 'secret/other/x#k', 'denied'],
    ]);
    // Details on stderr, one per failing row: names, paths, keys, never values.
    expect(result.stderr).toMatch(/no secret at secret\/app\/api version 1 variable=API_KEY_V1/);
    expect(result.stderr).toMatch(/BROKEN: invalid Vault reference: missing #KEY/);
    expect(result.stderr).toMatch(
      /key "pasword" not found at secret\/app\/db; did you mean "password"\? keys there: password, user/,
    );
    expect(result.stderr).toMatch(/permission denied reading secret\/other\/x/);
    expect(result.stderr).toMatch(/checked 7 references: 2 ok or ignored, 5 failed exit=77/);
  });

  it('all ok: 0, and each path read once however many variables use it', async () => {
    const before = await auditRequests(bao, 'secret/data/app/db');
    const result = await check({
      A: 'vault:secret/app/db#password',
      B: 'vault:secret/app/db#user',
      C: 'x${vault:secret/app/db#user}y',
    });
    expect(result.exitCode).toBe(0);
    expect(rows(result.stdout).map((r) => r[2])).toEqual(['ok', 'ok', 'ok']);
    expect(await auditRequests(bao, 'secret/data/app/db')).toHaveLength(before.length + 1);
  });

  it.each<[string, Record<string, string>, number]>([
    ['missing only: 66', { A: 'vault:secret/app/db#nope', B: 'vault:secret/app/db#user' }, 66],
    ['invalid only: 64', { A: 'vault:secret/app/db#user#v2' }, 64],
    ['missing beats invalid: 66', { A: 'vault:nope', B: 'vault:secret/app/none#k' }, 66],
  ])('%s', async (_, vars, status) => {
    expect((await check(vars)).exitCode).toBe(status);
  });

  it('--ignore-missing: missing references are shown as ignored and do not fail the check', async () => {
    const result = await check({ A: 'vault:secret/app/db#nope', B: 'vault:secret/app/db#user' }, [
      '--ignore-missing',
    ]);
    expect(result.exitCode).toBe(0);
    expect(rows(result.stdout)).toEqual([
      ['A', 'secret/app/db#nope', 'missing key (ignored)'],
      ['B', 'secret/app/db#user', 'ok'],
    ]);
  });

  it('checks the references in --env-file files too', async () => {
    const file = join(tempDir(), 'app.env');
    writeFileSync(file, 'FROM_FILE=vault:secret/app/db#password\n');
    const result = await check({}, ['--env-file', file]);
    expect(result.exitCode).toBe(0);
    expect(rows(result.stdout)).toEqual([['FROM_FILE', 'secret/app/db#password', 'ok']]);
  });

  it('a refused login is not a row: 67, no table', async () => {
    const result = await check({ VAULT_TOKEN: 'not-a-valid-token-at-all', A: 'vault:secret/app/db#user' });
    expect(result.exitCode).toBe(67);
    expect(result.stdout).toBe('');
  });

  it('leaves no login behind: the token it logged in with (AppRole) is revoked', async () => {
    const app = await bao.setupAppRole({ role: 'checker', policies: ['read-app'] });
    sensitive.add('role_id', app.roleId);
    sensitive.add('secret_id', app.secretId);
    const before = await auditRequests(bao, 'auth/token/revoke-self');
    const result = await check({
      VAULT_TOKEN: '',
      VAULT_ROLE_ID: app.roleId,
      VAULT_SECRET_ID: app.secretId,
      A: 'vault:secret/app/db#user',
    });
    expect(result.exitCode).toBe(0);
    expect(await auditRequests(bao, 'auth/token/revoke-self')).toHaveLength(before.length + 1);
  });

  it('no references: nothing on stdout, 0, no request to Vault', async () => {
    const before = await auditRequests(bao);
    const result = await check({ PLAIN: 'x' });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('');
    expect(await auditRequests(bao)).toHaveLength(before.length);
  });

  it('`vaultrun -- check` and `vaultrun -- resolve` run programs named check and resolve', async () => {
    const bin = tempDir();
    for (const name of ['check', 'resolve']) {
      writeFile(join(bin, name), `#!/bin/sh\necho "the program ${name} ran with $*"\n`, 0o755);
    }
    const env = baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: token, A: 'vault:secret/app/db#user' });
    env.PATH = `${bin}:${env.PATH}`;
    for (const name of ['check', 'resolve']) {
      const program = await runVaultrun(['--', name, 'x'], { env });
      expect(program.exitCode, program.stderr).toBe(0);
      expect(program.stdout).toBe(`the program ${name} ran with x\n`);
      const withOptions = await runVaultrun(['--supervise', '--', name], { env });
      expect(withOptions.stdout).toBe(`the program ${name} ran with \n`);
    }
    const subcommand = await runVaultrun(['check'], { env });
    expect(subcommand.exitCode).toBe(0);
    expect(rows(subcommand.stdout)).toEqual([['A', 'secret/app/db#user', 'ok']]);
  });
});
