// Transit decryption against a real OpenBao: the test encrypts values with OpenBao's transit engine, vaultrun
// decrypts every ciphertext of the start in ONE batch request (counted in the audit log), whole values and
// inline ones alike, in exec mode, `resolve` and `check`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { auditRequests, probeEnv, runProbe, Sensitive, unique } from '../support/resolution.js';

describe('transit ciphertexts (vault:v1:…)', () => {
  let bao: OpenBao;
  let token: string;
  const secrets = new Sensitive();
  const dbPassword = secrets.add('db password', `${unique('pw')} with spaces & ünïcode`);
  const apiKey = secrets.add('api key', unique('sk'));
  const kvSecret = secrets.add('kv secret', unique('kv'));
  const ct: Record<string, string> = {};

  async function encrypt(key: string, plaintext: string): Promise<string> {
    const res = await bao.api<{ data: { ciphertext: string } }>('POST', `transit/encrypt/${key}`, {
      plaintext: Buffer.from(plaintext).toString('base64'),
    });
    return res.data.ciphertext;
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    secrets.add('root token', bao.rootToken);
    await bao.api('POST', 'sys/mounts/transit', { type: 'transit' });
    await bao.api('POST', 'transit/keys/app', {});
    await bao.api('POST', 'transit/keys/other', {});
    await bao.kvPut('app/kv', { value: kvSecret });
    ct.db = await encrypt('app', dbPassword);
    ct.api = await encrypt('app', apiKey);
    ct.foreign = await encrypt('other', 'x');
    await bao.writePolicy(
      'transit-app',
      'path "transit/decrypt/app" { capabilities = ["update"] }\npath "secret/data/app/*" { capabilities = ["read"] }',
    );
    token = await bao.createToken({ policies: ['transit-app'] });
    secrets.add('token', token);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('exec: whole and inline ciphertexts (and a KV reference) decrypted with one batch request; VAULT_TRANSIT_KEY_ID accepted', async () => {
    const before = (await auditRequests(bao, 'transit/decrypt/app')).length;
    const run = await runProbe(secrets, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULT_TRANSIT_KEY_ID: 'app',
      DB_PASSWORD: ct.db as string,
      DB_PASSWORD_AGAIN: ct.db as string,
      DSN: `postgres://app:\${${ct.db as string}}@db/app?key=\${${ct.api}}`,
      KV: 'vault:secret/app/kv#value',
    });
    const env = probeEnv(run);
    expect(env.DB_PASSWORD).toBe(dbPassword);
    expect(env.DB_PASSWORD_AGAIN).toBe(dbPassword);
    expect(env.DSN).toBe(`postgres://app:${dbPassword}@db/app?key=${apiKey}`);
    expect(env.KV).toBe(kvSecret);
    expect(env.VAULT_TRANSIT_KEY_ID).toBeUndefined(); // our setting: scrubbed
    const decrypts = (await auditRequests(bao, 'transit/decrypt/app')).slice(before);
    expect(decrypts).toHaveLength(1);
  });

  it('resolve prints the plaintext; --transit-mount / --transit-key flags', async () => {
    await bao.api('POST', 'sys/mounts/team-transit', { type: 'transit' });
    await bao.api('POST', 'team-transit/keys/k2', {});
    const res = await bao.api<{ data: { ciphertext: string } }>('POST', 'team-transit/encrypt/k2', {
      plaintext: Buffer.from(apiKey).toString('base64'),
    });
    const result = await runVaultrun(
      ['resolve', '--format', 'json', '--transit-mount', 'team-transit', '--transit-key', 'k2'],
      { env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, API_KEY: res.data.ciphertext }) },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ API_KEY: apiKey });
  });

  it('no key configured: a usage error naming the variable, before any decryption', async () => {
    const before = (await auditRequests(bao, /transit\/decrypt/)).length;
    const run = await runProbe(secrets, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      DB_PASSWORD: ct.db as string,
    });
    expect(run.exitCode, run.output).toBe(64);
    expect(run.stderr).toMatch(
      /DB_PASSWORD: a transit ciphertext \(vault:v1:…\) is in the environment but no transit key is set/,
    );
    expect(await auditRequests(bao, /transit\/decrypt/)).toHaveLength(before);
  });

  it('a refused decryption fails the start, naming the path and what to check: no update on the key (77), a key that does not exist (76)', async () => {
    const cases = [
      {
        what: 'a token whose policy does not cover transit/decrypt/other',
        key: 'other',
        code: 77,
        message: 'DB_PASSWORD: permission denied decrypting with transit/decrypt/other',
        hint: 'the token\'s policies must allow it: path "transit/decrypt/other" { capabilities = ["update"] }',
        token: () => token,
      },
      {
        what: 'a key that does not exist',
        key: 'missing',
        code: 76,
        message: 'DB_PASSWORD: could not decrypt with transit/decrypt/missing: ',
        hint: 'check the transit mount (--transit-mount) and key (--transit-key): `vault read MOUNT/keys/KEY`',
        token: () => bao.rootToken,
      },
    ];
    for (const c of cases) {
      const run = await runVaultrun(['resolve'], {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: c.token(),
          VAULTRUN_TRANSIT_KEY: c.key,
          VAULTRUN_LOG_FORMAT: 'json',
          DB_PASSWORD: ct.db as string,
        }),
      });
      expect(run.exitCode, `${c.what}: ${run.stderr}`).toBe(c.code);
      expect(run.stdout, c.what).toBe('');
      const errors = run.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string; hint?: string })
        .filter((l) => l.level === 'error');
      expect(errors, `${c.what}: ${run.stderr}`).toHaveLength(1);
      expect(errors[0]?.msg.startsWith(c.message), `${c.what}: ${errors[0]?.msg}`).toBe(true);
      expect(errors[0]?.hint, c.what).toBe(c.hint);
      expect(secrets.leaks(run.stderr), c.what).toEqual([]);
    }
  });

  it('check: a ciphertext of another key fails its row only; the others are ok', async () => {
    const result = await runVaultrun(['check'], {
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        VAULTRUN_TRANSIT_KEY: 'app',
        GOOD: ct.db as string,
        BAD: ct.foreign as string,
      }),
    });
    expect(result.exitCode).not.toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s{2,}/));
    expect(rows.map((r) => [r[0], r[2]])).toEqual([
      ['BAD', 'error'],
      ['GOOD', 'ok'],
    ]);
    expect(rows[0]?.[1]).toMatch(/^vault:v1:.*… \(transit\)$/);
    for (const s of [dbPassword, apiKey]) expect(`${result.stdout}${result.stderr}`).not.toContain(s);
  });
});
