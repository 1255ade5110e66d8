// Every reference form, KV v1 / KV v2 / a non-KV engine, and one read per unique (path, version),
// against a real OpenBao dev server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  probeEnv,
  runProbe,
  Sensitive,
  unique,
} from '../support/resolution.js';

describe('references', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const db = { user: unique('dbuser'), password: unique('dbpass') };
  const redisPassword = sensitive.add('redis password', unique('redispass'));
  const apiKeyV1 = sensitive.add('api key v1', unique('apikey1'));
  const apiKeyV2 = sensitive.add('api key v2', unique('apikey2'));
  const kv1Token = sensitive.add('kv1 token', unique('kv1tok'));
  const cubby = sensitive.add('cubbyhole value', unique('cubby'));
  sensitive.add('db user', db.user);
  sensitive.add('db password', db.password);

  const env = (vars: Record<string, string>) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/db', db);
    await bao.kvPut('dify/redis', { password: redisPassword });
    await bao.kvPut('dify/api', { key: apiKeyV1 });
    await bao.kvPut('dify/api', { key: apiKeyV2 });
    await bao.enableKvV1('kv1');
    await bao.api('POST', 'kv1/dify/app', { token: kv1Token });
    // cubbyhole belongs to the token that wrote it: vaultrun reads it with the same (root) token.
    await bao.api('POST', 'cubbyhole/dify/cache', { value: cubby });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('resolves a whole-value reference vault:PATH#KEY (KV v2)', async () => {
    const run = await runProbe(
      sensitive,
      env({ DB_PASSWORD: 'vault:secret/dify/db#password', DB_USER: 'vault:secret/dify/db#user', PLAIN: 'x' }),
    );
    const e = probeEnv(run);
    expect(e.DB_PASSWORD).toBe(db.password);
    expect(e.DB_USER).toBe(db.user);
    expect(e.PLAIN).toBe('x');
    expectScrubbed(e);
    expect(run.stderr).toMatch(/resolved 2 references from 1 path .* via token/);
  });

  it('resolves #KEY#VERSION: version 1 and the latest of a KV v2 secret with two versions', async () => {
    const before = await auditRequests(bao, 'secret/data/dify/api');
    const run = await runProbe(
      sensitive,
      env({
        API_KEY_OLD: 'vault:secret/dify/api#key#1',
        API_KEY_V2: 'vault:secret/dify/api#key#2',
        API_KEY: 'vault:secret/dify/api#key',
      }),
    );
    const e = probeEnv(run);
    expect(e.API_KEY_OLD).toBe(apiKeyV1);
    expect(e.API_KEY_V2).toBe(apiKeyV2);
    expect(e.API_KEY).toBe(apiKeyV2);
    // three distinct (path, version) reads: #1, #2 and the latest
    const after = await auditRequests(bao, 'secret/data/dify/api');
    expect(after.length - before.length).toBe(3);
  });

  it('a version that does not exist is "not found" (66)', async () => {
    const run = await runProbe(sensitive, env({ API_KEY: 'vault:secret/dify/api#key#9' }));
    expectFailure(run, 66, /API_KEY/, /secret\/dify\/api/);
  });

  it('resolves several inline ${vault:…} references in one value, with text around them', async () => {
    const run = await runProbe(
      sensitive,
      env({
        REDIS_URL: 'redis://:${vault:secret/dify/redis#password}@redis:6379/1',
        DSN: 'postgresql://${vault:secret/dify/db#user}:${vault:secret/dify/db#password}@db:5432/dify?k=${vault:kv1/dify/app#token}',
        TWICE: '${vault:secret/dify/redis#password}${vault:secret/dify/redis#password}',
      }),
    );
    const e = probeEnv(run);
    expect(e.REDIS_URL).toBe(`redis://:${redisPassword}@redis:6379/1`);
    expect(e.DSN).toBe(`postgresql://${db.user}:${db.password}@db:5432/dify?k=${kv1Token}`);
    expect(e.TWICE).toBe(`${redisPassword}${redisPassword}`);
    expect(run.stderr).toMatch(/resolved 6 references from 3 paths/);
  });

  it('a KV v2 path written with data/ already (secret/data/dify/db) still works', async () => {
    const run = await runProbe(
      sensitive,
      env({
        DB_PASSWORD: 'vault:secret/data/dify/db#password',
        INLINE: 'u=${vault:secret/data/dify/db#user}',
        OLD: 'vault:secret/data/dify/api#key#1',
      }),
    );
    const e = probeEnv(run);
    expect(e.DB_PASSWORD).toBe(db.password);
    expect(e.INLINE).toBe(`u=${db.user}`);
    expect(e.OLD).toBe(apiKeyV1);
  });

  it('a secret whose own name starts with data/: not found as MOUNT/data/NAME, with a hint to write MOUNT/data/data/NAME, which reads it', async () => {
    const own = sensitive.add('data/ secret', unique('datadata'));
    await bao.kvPut('data/own', { k: own });
    const missing = await runProbe(sensitive, env({ X: 'vault:secret/data/own#k' }));
    expectFailure(missing, 66, /a secret whose own name is data\/own is written secret\/data\/data\/own/);
    const run = await runProbe(sensitive, env({ X: 'vault:secret/data/data/own#k' }));
    expect(probeEnv(run).X).toBe(own);
  });

  it('reads KV v1 at its path as it is (no data/)', async () => {
    const before = await auditRequests(bao, /^kv1\//);
    const run = await runProbe(sensitive, env({ APP_TOKEN: 'vault:kv1/dify/app#token' }));
    expect(probeEnv(run).APP_TOKEN).toBe(kv1Token);
    const after = await auditRequests(bao, /^kv1\//);
    expect(after.slice(before.length).map((e) => `${e.operation} ${e.path}`)).toEqual(['read kv1/dify/app']);
  });

  it('reads a non-KV engine (cubbyhole) with a plain GET', async () => {
    const before = await auditRequests(bao, /^cubbyhole\//);
    const run = await runProbe(sensitive, env({ CACHE: 'vault:cubbyhole/dify/cache#value' }));
    expect(probeEnv(run).CACHE).toBe(cubby);
    const after = await auditRequests(bao, /^cubbyhole\//);
    expect(after.slice(before.length).map((e) => `${e.operation} ${e.path}`)).toEqual([
      'read cubbyhole/dify/cache',
    ]);
  });

  it('a #VERSION on a KV v1 path is a usage error (64)', async () => {
    const run = await runProbe(sensitive, env({ APP_TOKEN: 'vault:kv1/dify/app#token#1' }));
    expectFailure(run, 64, /kv1\/dify\/app/, /version/i);
  });

  it('a #VERSION on a non-KV path is a usage error (64)', async () => {
    const run = await runProbe(sensitive, env({ CACHE: 'vault:cubbyhole/dify/cache#value#2' }));
    expectFailure(run, 64, /cubbyhole\/dify\/cache/, /version/i);
  });

  it('a malformed reference is a usage error (64) naming the variable, not the value', async () => {
    const value = `vault:${unique('not-a-path-but-maybe-a-secret')}`;
    sensitive.add('malformed reference value', value.slice('vault:'.length));
    const run = await runProbe(sensitive, env({ ODD: value }));
    expectFailure(run, 64, /ODD/, /#KEY/);
  });

  it('makes exactly one read per unique (path, version) and at most one mount look-up per mount', async () => {
    const before = await auditRequests(bao);
    const run = await runProbe(
      sensitive,
      env({
        A: 'vault:secret/dify/db#password',
        B: 'vault:secret/dify/db#password',
        C: 'vault:secret/dify/db#user',
        D: 'x${vault:secret/dify/db#password}y${vault:secret/dify/db#user}',
        DB_PASSWORD_FILE: 'vault:secret/dify/db#password',
        R1: 'vault:secret/dify/redis#password',
        R2: 'redis://:${vault:secret/dify/redis#password}@redis',
        K1: 'vault:kv1/dify/app#token',
        K2: 'vault:kv1/dify/app#token',
        V1: 'vault:secret/dify/api#key#1',
        V1B: 'vault:secret/dify/api#key#1',
      }),
      { args: ['--runtime-dir', `${bao.dir}/run-dedup`] },
    );
    const e = probeEnv(run);
    expect([e.A, e.B, e.C, e.R1, e.K2, e.V1B]).toEqual([
      db.password,
      db.password,
      db.user,
      redisPassword,
      kv1Token,
      apiKeyV1,
    ]);
    const requests = (await auditRequests(bao)).slice(before.length);
    const count = (path: string) => requests.filter((r) => r.path === path).length;
    expect(count('secret/data/dify/db')).toBe(1);
    expect(count('secret/data/dify/redis')).toBe(1);
    expect(count('secret/data/dify/api')).toBe(1);
    expect(count('kv1/dify/app')).toBe(1);
    const lookups = requests
      .map((r) => /^sys\/internal\/ui\/mounts\/([^/]+)/.exec(r.path)?.[1])
      .filter((m): m is string => m !== undefined);
    const perMount = new Map<string, number>();
    for (const m of lookups) perMount.set(m, (perMount.get(m) ?? 0) + 1);
    expect(
      [...perMount.values()].every((n) => n === 1),
      JSON.stringify([...perMount]),
    ).toBe(true);
    expect(lookups.length).toBeLessThanOrEqual(2); // secret/ and kv1/
    // nothing else than the token check, the mount look-ups and the four reads
    expect(requests.length).toBe(1 + lookups.length + 4);
    expect(run.stderr).toMatch(/from 4 paths/);
  });
});
