// Per-reference optional/default values, value filters and bulk import (--from-path), end to end against a
// real OpenBao: exec, resolve, check (and --watch for bulk import).
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import {
  auditRequests,
  expectFailure,
  expectNoLeaks,
  probeEnv,
  runProbe,
  Sensitive,
  unique,
} from '../support/resolution.js';
import {
  ROTATION_APP,
  startResident,
  starts,
  WATCH_FAST,
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

describe('optional/default references and value filters', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const password = sensitive.add('password', unique('pw'));
  const email = sensitive.add('client email', `${unique('sa')}@project.iam.gserviceaccount.com`);
  const serviceAccount = JSON.stringify({ type: 'service_account', client_email: email, port: 5432 });
  const serviceAccountB64 = sensitive.add('sa b64', Buffer.from(serviceAccount).toString('base64'));
  sensitive.add('sa json', serviceAccount);
  const keystore = randomBytes(256); // binary, not UTF-8: a file only
  const keystoreB64 = sensitive.add('keystore b64', keystore.toString('base64'));

  const env = (vars: Record<string, string>, token?: string) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: token ?? bao.rootToken,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/db', { password, settings: { pool: 5, tls: true } });
    await bao.kvPut('app/gcp', { sa_b64: serviceAccountB64, sa_json: serviceAccount, keystore: keystoreB64 });
    await bao.writePolicy('only-db', 'path "secret/data/app/db" { capabilities = ["read"] }');
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('exec: defaults for a missing key/path/version, `?` leaves unset; one read per path', async () => {
    const run = await runProbe(
      sensitive,
      env({
        DB_PASSWORD: 'vault:secret/app/db#password?=unused-default',
        POOL: 'vault:secret/app/db#nokey?=10',
        MISSING_PATH: 'vault:secret/app/nothing-here#k?=fallback text #1',
        MISSING_VERSION: 'vault:secret/app/db#password#7?=v7-default',
        OPTIONAL: 'vault:secret/app/db#nokey?',
        URL: 'postgres://u:${vault:secret/app/db#password}@db/${vault:secret/app/db#dbname?=dify}',
      }),
    );
    const e = probeEnv(run);
    expect(e.DB_PASSWORD).toBe(password);
    expect(e.POOL).toBe('10');
    expect(e.MISSING_PATH).toBe('fallback text #1');
    expect(e.MISSING_VERSION).toBe('v7-default');
    expect('OPTIONAL' in e).toBe(false);
    expect(e.URL).toBe(`postgres://u:${password}@db/dify`);
    expect(run.stderr).toMatch(/variable left unset \(optional reference, missing in Vault\).*OPTIONAL/);
    // One read per unique (path, version): secret/app/db, secret/app/db#7, secret/app/nothing-here.
    const reads = (await auditRequests(bao, /^secret\/data\/app\//)).filter((r) => r.operation === 'read');
    expect(reads.length).toBe(3);
  });

  it('a permission error fails a reference with a default (exit 77); without it the default is used', async () => {
    const token = await bao.createToken({ policies: ['only-db'] });
    sensitive.add('limited token', token);
    const denied = await runProbe(
      sensitive,
      env({ DB_PASSWORD: 'vault:secret/app/db#password', GCP: 'vault:secret/app/gcp#sa_b64?=dflt' }, token),
    );
    expectFailure(denied, 77, /GCP/, /permission denied/i);
    const ok = await runProbe(
      sensitive,
      env({ DB_PASSWORD: 'vault:secret/app/db#password', X: 'vault:secret/app/db#nokey?=dflt' }, token),
    );
    expect(probeEnv(ok).X).toBe('dflt');
  });

  it('an unreachable Vault fails a reference with a default (exit 69)', async () => {
    const run = await runProbe(
      sensitive,
      { VAULT_ADDR: 'http://127.0.0.1:9', VAULT_TOKEN: 'unused', X: 'vault:secret/app/db#k?=dflt' },
      { args: ['--wait', '1s'] },
    );
    expectFailure(run, 69);
  });

  it('exec: filters — base64 JSON field, a Dify *_JSON_BASE64 setting, inline, tojson', async () => {
    const run = await runProbe(
      sensitive,
      env({
        GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64: 'vault:secret/app/gcp#sa_json|base64encode',
        CLIENT_EMAIL: 'vault:secret/app/gcp#sa_b64|base64decode|json:/client_email',
        SA_PORT: 'port=${vault:secret/app/gcp#sa_json|json:/port}',
        SETTINGS: 'vault:secret/app/db#settings',
        SETTINGS_TLS: 'vault:secret/app/db#settings|json:/tls|tojson',
      }),
    );
    const e = probeEnv(run);
    expect(Buffer.from(e.GOOGLE_STORAGE_SERVICE_ACCOUNT_JSON_BASE64 ?? '', 'base64').toString()).toBe(
      serviceAccount,
    );
    expect(e.CLIENT_EMAIL).toBe(email);
    expect(e.SA_PORT).toBe('port=5432');
    expect(JSON.parse(e.SETTINGS ?? '')).toEqual({ pool: 5, tls: true });
    expect(e.SETTINGS_TLS).toBe('true');
  });

  it('NAME_FILE with base64decode writes the exact bytes (a binary keystore), 0400', async () => {
    const script =
      "const fs=require('fs');const p=process.env.KEYSTORE_FILE;" +
      "process.stdout.write(require('crypto').createHash('sha256').update(fs.readFileSync(p)).digest('hex')+' '+(fs.statSync(p).mode&0o777).toString(8))";
    const run = await runVaultrun(['--', process.execPath, '-e', script], {
      env: baseEnv(env({ KEYSTORE_FILE: 'vault:secret/app/gcp#keystore|base64decode' })),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${createHash('sha256').update(keystore).digest('hex')} 400`);
    expectNoLeaks(`${run.stdout}${run.stderr}`, sensitive);
  });

  it('--watch: a binary NAME_FILE is compared by its bytes: same bytes in a new version, no restart; new bytes, one', async () => {
    const path = 'app/watch-bin';
    const v1 = randomBytes(64);
    const v2 = randomBytes(64);
    await bao.kvPut(path, { ks: sensitive.add('ks v1', v1.toString('base64')) });
    const appLog = join(workDir('vaultrun-bin-'), 'app.log');
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], {
      env: baseEnv(env({ APP_LOG: appLog, KS_FILE: `vault:secret/${path}#ks|base64decode` })),
    });
    await waitForStart(appLog, 1);
    // A new version with the same bytes (written differently: URL-safe alphabet, no padding).
    await bao.kvPut(path, { ks: v1.toString('base64url') });
    await run.waitForLog((l) => l.msg === 're-resolved: nothing changed for the command', 'a re-resolution');
    expect(starts(appLog)).toHaveLength(1);
    await bao.kvPut(path, { ks: sensitive.add('ks v2', v2.toString('base64')) });
    await waitForStart(appLog, 2);
    const restarts = run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');
    expect(restarts.map((l) => l.variables)).toEqual(['KS_FILE']);
    process.kill(run.pid, 'SIGTERM');
    const result = await run.result;
    expect(result.exitCode, result.stderr).toBe(0);
    expectNoLeaks(result.stderr, sensitive);
  });

  it('a filter that does not fit the value fails with exit 64 naming the variable, never the value', async () => {
    const run = await runProbe(sensitive, env({ KS: 'vault:secret/app/gcp#keystore|base64decode' }));
    expectFailure(run, 64, /KS: secret\/app\/gcp#keystore: a variable needs text/, /NAME_FILE/);
    const bad = await runProbe(sensitive, env({ E: 'vault:secret/app/db#password|json:/a' }));
    expectFailure(bad, 64, /E: secret\/app\/db#password: json: the value is not JSON/);
  });

  it('resolve prints defaults and filtered values; optional missing ones are left out', async () => {
    const run = await runVaultrun(['resolve', '--format', 'json'], {
      env: baseEnv(
        env({
          CLIENT_EMAIL: 'vault:secret/app/gcp#sa_b64|base64decode|json:/client_email',
          POOL: 'vault:secret/app/db#nokey?=10',
          OPTIONAL: 'vault:secret/app/db#nokey?',
        }),
      ),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ CLIENT_EMAIL: email, POOL: '10' });
    expectNoLeaks(run.stderr, sensitive);
  });

  it('check: default/optional rows pass and say so; a filter misfit is invalid; never a value', async () => {
    const run = await runVaultrun(['check'], {
      env: baseEnv(
        env({
          A_POOL: 'vault:secret/app/db#nokey?=secret-default',
          B_OPT: 'vault:secret/app/none#k?',
          C_EMAIL: 'vault:secret/app/gcp#sa_b64|base64decode|json:/client_email',
        }),
      ),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/A_POOL +secret\/app\/db#nokey\?=… +missing key \(default used\)/);
    expect(run.stdout).toMatch(/B_OPT +secret\/app\/none#k\? +missing path \(optional: unset\)/);
    expect(run.stdout).toMatch(/C_EMAIL +secret\/app\/gcp#sa_b64\|base64decode\|json:\/client_email +ok/);
    expect(run.stdout).not.toContain('secret-default');
    const bad = await runVaultrun(['check'], {
      env: baseEnv(env({ E: 'vault:secret/app/db#password|base64decode|json:/x' })),
    });
    expect(bad.exitCode).toBe(64);
    expect(bad.stdout).toMatch(/E +secret\/app\/db#password\|base64decode\|json:\/x +invalid/);
    expectNoLeaks(`${run.stdout}${run.stderr}${bad.stdout}${bad.stderr}`, sensitive);
  });
});

describe('bulk import (--from-path)', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const apiKey = sensitive.add('api key', unique('apikey'));
  const dbPassword = sensitive.add('db password', unique('dbpw'));
  const oldKey = sensitive.add('old api key', unique('oldkey'));
  const pluginKey = sensitive.add('plugin key', unique('plugin'));

  const env = (vars: Record<string, string>) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/api', { API_KEY: oldKey });
    await bao.kvPut('dify/api', {
      API_KEY: apiKey,
      DB_PASSWORD: dbPassword,
      'not-a-name': 'x',
      EXPLICIT: 'no',
    });
    await bao.kvPut('dify/plugin', { DAEMON_KEY: pluginKey });
    await bao.kvPut('dify/other', { DB_PASSWORD: 'clash' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('exec: every key becomes a variable; versions, prefixes, vault-env spelling; explicit wins; read once', async () => {
    const before = (await auditRequests(bao, 'secret/data/dify/api')).filter((r) => r.operation === 'read');
    const run = await runProbe(
      sensitive,
      env({
        VAULT_ENV_FROM_PATH:
          'secret/dify/api,secret/dify/api#1|prefix=OLD_,secret/dify/plugin|prefix=PLUGIN_',
        EXPLICIT: 'mine',
        REFERENCED: 'vault:secret/dify/api#API_KEY',
      }),
    );
    const e = probeEnv(run);
    expect(e.API_KEY).toBe(apiKey);
    expect(e.DB_PASSWORD).toBe(dbPassword);
    expect(e.OLD_API_KEY).toBe(oldKey);
    expect(e.PLUGIN_DAEMON_KEY).toBe(pluginKey);
    expect(e.EXPLICIT).toBe('mine');
    expect(e.REFERENCED).toBe(apiKey);
    expect('not-a-name' in e).toBe(false);
    expect('VAULT_ENV_FROM_PATH' in e).toBe(false);
    expect(run.stderr).toMatch(
      /a key of an imported secret is not a valid variable name: skipped.*not-a-name/,
    );
    // secret/dify/api: once for the import and the reference together, once at version 1.
    const after = (await auditRequests(bao, 'secret/data/dify/api')).filter((r) => r.operation === 'read');
    expect(after.length - before.length).toBe(2);
  });

  it('two imports defining one name fail with exit 64 naming both paths; a missing path fails (66)', async () => {
    const clash = await runProbe(sensitive, env({ VAULTRUN_FROM_PATH: 'secret/dify/api,secret/dify/other' }));
    expectFailure(clash, 64, /DB_PASSWORD: imported from both secret\/dify\/api and secret\/dify\/other/);
    const missing = await runProbe(sensitive, env({ VAULTRUN_FROM_PATH: 'secret/dify/nothing' }));
    expectFailure(missing, 66, /--from-path secret\/dify\/nothing/);
    const bad = await runProbe(sensitive, env({ VAULTRUN_FROM_PATH: 'sys/policies/acl' }));
    expectFailure(bad, 64, /VAULTRUN_FROM_PATH item 1: path is in Vault's reserved sys\/ mount/);
  });

  it('resolve prints the imported variables; check lists the names, never values', async () => {
    const resolved = await runVaultrun(['resolve', '--format', 'json', '--from-path', 'secret/dify/plugin'], {
      env: baseEnv(env({})),
    });
    expect(resolved.exitCode, resolved.stderr).toBe(0);
    expect(JSON.parse(resolved.stdout)).toEqual({ DAEMON_KEY: pluginKey });
    const check = await runVaultrun(['check', '--from-path', 'secret/dify/api|prefix=D_'], {
      env: baseEnv(env({ D_EXPLICIT: 'x' })),
    });
    expect(check.exitCode, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/D_API_KEY +secret\/dify\/api#API_KEY \(import\) +ok/);
    expect(check.stdout).toMatch(/D_DB_PASSWORD +secret\/dify\/api#DB_PASSWORD \(import\) +ok/);
    expect(check.stdout).toMatch(/D_EXPLICIT +secret\/dify\/api#EXPLICIT \(import\) +skipped/);
    expect(check.stdout).toMatch(/D_not-a-name +secret\/dify\/api#not-a-name \(import\) +skipped/);
    expectNoLeaks(`${resolved.stderr}${check.stdout}${check.stderr}`, sensitive);
  });

  it('--watch: a key added at an imported path restarts the command once, with the new variable', async () => {
    const path = 'watch/bulk';
    const first = unique('bulk-a');
    const added = sensitive.add('added key', unique('bulk-b'));
    sensitive.add('first key', first);
    await bao.kvPut(path, { A_KEY: first });
    const appLog = join(workDir('vaultrun-bulk-'), 'app.log');
    const run = startResident([...WATCH_FAST, '--from-path', `secret/${path}`, 'node', ROTATION_APP], {
      env: baseEnv(env({ APP_LOG: appLog, APP_VARS: 'A_KEY,B_KEY' })),
    });
    const one = await waitForStart(appLog, 1);
    expect(one.vars).toEqual({ A_KEY: first });
    await bao.kvPut(path, { A_KEY: first, B_KEY: added });
    const two = await waitForStart(appLog, 2);
    expect(two.vars).toEqual({ A_KEY: first, B_KEY: added });
    // The key removed again: a change too.
    await bao.kvPut(path, { A_KEY: first });
    const three = await waitForStart(appLog, 3);
    expect(three.vars).toEqual({ A_KEY: first });
    const restarts = () => run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');
    expect(restarts().map((l) => l.variables)).toEqual(['B_KEY', 'B_KEY']);
    // More polls, nothing new: no further restart.
    const polls = async () =>
      (await bao.auditEntries()).filter((e) => e.type === 'request' && e.path === `secret/metadata/${path}`)
        .length;
    const seen = await polls();
    await waitUntil(async () => (await polls()) >= seen + 3, '3 more polls');
    expect(starts(appLog)).toHaveLength(3);
    process.kill(run.pid, 'SIGTERM');
    const result = await run.result;
    expect(result.exitCode, result.stderr).toBe(0);
    expectNoLeaks(result.stderr, sensitive);
  });
});
