// Failures: missing path/key (66), permission denied (77), --ignore-missing, an unreachable Vault (69), and
// no sensitive value in the output of any run at debug level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  probeEnv,
  runProbe,
  Sensitive,
  unique,
} from '../support/resolution.js';

describe('errors', () => {
  let bao: OpenBao;
  let limited: string;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));
  const user = sensitive.add('db user', unique('dbuser'));
  const other = sensitive.add('other secret', unique('other'));

  const env = (vars: Record<string, string>, token = bao.rootToken) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: token,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/db', { password, user });
    await bao.kvPut('other/app', { key: other });
    await bao.writePolicy('read-dify', 'path "secret/data/dify/*" { capabilities = ["read"] }');
    limited = sensitive.add('limited token', await bao.createToken({ policies: ['read-dify'] }));
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('the leak check sees what the command prints too (it checks the whole output)', async () => {
    // Sanity check of the helper: the probe prints a secret on the stdout it shares with vaultrun.
    const unrelated = new Sensitive();
    unrelated.add('unrelated', unique('unrelated'));
    const run = await runProbe(unrelated, env({}), { probeArgs: ['--print', password] });
    expect(run.exitCode).toBe(0);
    expect(sensitive.leaks(run.output)).toEqual(['db password']);
  });

  it('a missing path: 66, naming the variable, the path and the key', async () => {
    const run = await runProbe(sensitive, env({ DB_PASSWORD: 'vault:secret/dify/nope#password' }));
    expectFailure(run, 66, /DB_PASSWORD/, /secret\/dify\/nope/, /"password"/);
  });

  it('a missing key: 66, naming the variable, the path and the key', async () => {
    const run = await runProbe(sensitive, env({ DB_PASSWORD: 'vault:secret/dify/db#pasword' }));
    expectFailure(run, 66, /DB_PASSWORD/, /secret\/dify\/db/, /"pasword"/);
    // the keys that do exist are named as a hint; their values are not printed (checked by runProbe)
    expect(run.stderr).toMatch(/keys there: password, user/);
  });

  it('several failures are all reported, each with its variable', async () => {
    const run = await runProbe(
      sensitive,
      env({
        A_PASSWORD: 'vault:secret/dify/nope#password',
        B_USER: 'x${vault:secret/dify/db#usr}',
        OK: 'vault:secret/dify/db#user',
      }),
    );
    expectFailure(
      run,
      66,
      /2 references could not be resolved/,
      /A_PASSWORD: .*secret\/dify\/nope/,
      /B_USER: .*"usr"/,
    );
  });

  it('a missing KV v1 path: 66', async () => {
    await bao.enableKvV1('kv1');
    const run = await runProbe(sensitive, env({ TOKEN: 'vault:kv1/nope#token' }));
    expectFailure(run, 66, /TOKEN/, /kv1\/nope/);
  });

  it('permission denied by the policy: 77, naming the variable and the path', async () => {
    const run = await runProbe(
      sensitive,
      env({ OTHER: 'vault:secret/other/app#key', DB_PASSWORD: 'vault:secret/dify/db#password' }, limited),
    );
    expectFailure(run, 77, /OTHER/, /permission denied/, /secret\/other\/app/);
    // the readable one is fine, so it is not reported
    expect(run.stderr).not.toMatch(/DB_PASSWORD/);
  });

  it('--ignore-missing does not hide a permission error (77)', async () => {
    const run = await runProbe(sensitive, env({ OTHER: 'vault:secret/other/app#key' }, limited), {
      args: ['--ignore-missing'],
    });
    expectFailure(run, 77, /OTHER/);
  });

  it('--ignore-missing leaves missing variables unset with a warning naming them; exit 0', async () => {
    const run = await runProbe(
      sensitive,
      env({
        NO_PATH: 'vault:secret/dify/nope#password',
        NO_KEY: 'vault:secret/dify/db#nokey',
        DB_USER: 'vault:secret/dify/db#user',
      }),
      { args: ['--ignore-missing'] },
    );
    const e = probeEnv(run);
    expect(e.DB_USER).toBe(user);
    expect('NO_PATH' in e).toBe(false);
    expect('NO_KEY' in e).toBe(false);
    expect(run.stderr).toMatch(/warn: .*variable=NO_PATH/);
    expect(run.stderr).toMatch(/warn: .*variable=NO_KEY/);
    expect(run.stderr).not.toMatch(/warn: .*variable=DB_USER/);
  });

  it('VAULTRUN_IGNORE_MISSING=true does the same', async () => {
    const run = await runProbe(
      sensitive,
      env({ NO_PATH: 'vault:secret/dify/nope#password', VAULTRUN_IGNORE_MISSING: 'true' }),
    );
    const e = probeEnv(run);
    expect('NO_PATH' in e).toBe(false);
    expect(run.stderr).toMatch(/warn: .*variable=NO_PATH/);
    expectScrubbed(e);
  });

  it('a closed port: retries until --wait runs out, then 69 "unavailable"', async () => {
    const port = await freePort();
    const run = await runProbe(
      sensitive,
      { ...env({ DB_PASSWORD: 'vault:secret/dify/db#password' }), VAULT_ADDR: `http://127.0.0.1:${port}` },
      { args: ['--wait', '2s'] },
    );
    expectFailure(run, 69, /retrying Vault request/, /unavailable/, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('a stopped server: retries, then 69, for AppRole too', async () => {
    const gone = await startOpenBao();
    const app = await gone.setupAppRole({ role: 'app', policies: ['default'] });
    sensitive.add('stopped server root token', gone.rootToken);
    sensitive.add('stopped server role_id', app.roleId);
    sensitive.add('stopped server secret_id', app.secretId);
    await gone.stop();
    const run = await runProbe(
      sensitive,
      {
        VAULT_ADDR: gone.addr,
        VAULT_ROLE_ID: app.roleId,
        VAULT_SECRET_ID: app.secretId,
        DB_PASSWORD: 'vault:secret/dify/db#password',
      },
      { args: ['--wait', '2s'] },
    );
    expectFailure(run, 69, /retrying Vault request/, /unavailable/, /approle/);
  });

  it('no secret, token, role_id or secret_id in the output of a run that prints everything it may', async () => {
    // A successful run at debug level with every kind of reference and a secret file.
    const app = await bao.setupAppRole({ role: 'app', policies: ['read-dify'] });
    sensitive.add('role_id', app.roleId);
    sensitive.add('secret_id', app.secretId);
    const before = await auditRequests(bao, 'secret/data/dify/db');
    const run = await runProbe(
      sensitive,
      {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: app.roleId,
        VAULT_SECRET_ID: app.secretId,
        DB_PASSWORD: 'vault:secret/dify/db#password',
        DSN: 'pg://${vault:secret/dify/db#user}:${vault:secret/dify/db#password}@db',
        CERT_FILE: 'vault:secret/dify/db#password',
        VAULTRUN_LOG_FORMAT: 'json',
      },
      { args: ['--runtime-dir', `${bao.dir}/run-leak`] },
    );
    const e = probeEnv(run);
    expect(e.DSN).toBe(`pg://${user}:${password}@db`);
    expect(await auditRequests(bao, 'secret/data/dify/db')).toHaveLength(before.length + 1);
    // JSON lines, each parseable (the format was honoured, so the check ran on the JSON output)
    const lines = run.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});
