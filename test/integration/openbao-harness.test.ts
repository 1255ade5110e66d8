// Proof that the OpenBao test harness works against a real dev server. Each test sets up what it uses (one
// server is shared): any of them passes alone (vitest -t) or in any order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';

describe('OpenBao harness', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** What several tests read: a secret at app/db and a policy that may read it (idempotent). */
  async function seedApp(): Promise<void> {
    await bao.kvPut('app/db', { user: 'alice', password: 's3cret' });
    await bao.writePolicy('read-app', 'path "secret/data/app/*" { capabilities = ["read"] }');
  }

  it('starts an unsealed dev server with the audit device enabled', async () => {
    const health = await bao.api('GET', 'sys/health');
    expect(health).toMatchObject({ initialized: true, sealed: false, version: '2.7.2' });
    const audit = await bao.api('GET', 'sys/audit');
    expect(audit.data['file/']).toMatchObject({ type: 'file', options: { file_path: bao.auditFile } });
  });

  it('writes and reads KV v2 at secret/', async () => {
    await bao.kvPut('kv2-roundtrip', { user: 'alice', password: 's3cret' });
    const res = await bao.api('GET', 'secret/data/kv2-roundtrip');
    expect(res.data.data).toEqual({ user: 'alice', password: 's3cret' });
    expect(res.data.metadata.version).toBe(1);
  });

  it('enables KV v1 mounts', async () => {
    await bao.enableKvV1('kv1');
    await bao.api('POST', 'kv1/app', { token: 'abc' });
    const res = await bao.api('GET', 'kv1/app');
    expect(res.data).toEqual({ token: 'abc' });
  });

  it('throws OpenBaoApiError with status and errors on non-2xx', async () => {
    const err = await bao.api('GET', 'secret/data/nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenBaoApiError);
    expect((err as OpenBaoApiError).status).toBe(404);
    expect((err as OpenBaoApiError).message).toContain('HTTP 404');
  });

  it('creates tokens limited by a policy', async () => {
    await seedApp();
    const token = await bao.createToken({ policies: ['read-app'], ttl: '5m' });
    const ok = await bao.api('GET', 'secret/data/app/db', undefined, token);
    expect(ok.data.data.user).toBe('alice');
    await bao.kvPut('other', { x: 1 });
    const denied = await bao.api('GET', 'secret/data/other', undefined, token).catch((e: unknown) => e);
    expect((denied as OpenBaoApiError).status).toBe(403);
  });

  it('limits token uses with numUses', async () => {
    await seedApp();
    const token = await bao.createToken({ policies: ['read-app'], numUses: 1 });
    await bao.api('GET', 'secret/data/app/db', undefined, token);
    const second = await bao.api('GET', 'secret/data/app/db', undefined, token).catch((e: unknown) => e);
    expect((second as OpenBaoApiError).status).toBe(403);
  });

  it('sets up AppRole; the returned role_id/secret_id log in', async () => {
    await seedApp();
    const { roleId, secretId } = await bao.setupAppRole({
      role: 'web',
      policies: ['read-app'],
      secretIdNumUses: 1,
      tokenTtl: '10m',
    });
    const login = await bao.api('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
    expect(login.auth.policies).toContain('read-app');
    expect(login.auth.lease_duration).toBe(600);
    const res = await bao.api('GET', 'secret/data/app/db', undefined, login.auth.client_token);
    expect(res.data.data.password).toBe('s3cret');
    // secret_id_num_uses=1: a second login fails.
    const again = await bao
      .api('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId })
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpenBaoApiError);
  });

  it('returns a wrapping token that unwraps to a working secret_id', async () => {
    await seedApp();
    await bao.setupAppRole({ role: 'wrapped', policies: ['read-app'] }); // mounts approle if not yet there
    const wrapping = await bao.wrappedSecretId('wrapped', 'approle', '60s');
    const lookup = await bao.api('POST', 'sys/wrapping/lookup', { token: wrapping });
    expect(lookup.data.creation_path).toBe('auth/approle/role/wrapped/secret-id');
    const unwrapped = await bao.api('POST', 'sys/wrapping/unwrap', undefined, wrapping);
    expect(unwrapped.data.secret_id).toMatch(/^[0-9a-f-]{36}$/);
    const roleId = (await bao.api('GET', 'auth/approle/role/wrapped/role-id')).data.role_id;
    const login = await bao.api('POST', 'auth/approle/login', {
      role_id: roleId,
      secret_id: unwrapped.data.secret_id,
    });
    expect(login.auth.client_token).toBeTruthy();
    // A wrapping token is single-use.
    const twice = await bao.api('POST', 'sys/wrapping/unwrap', undefined, wrapping).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(OpenBaoApiError);
  });

  it('records request paths in the audit log', async () => {
    await bao.kvPut('audited', { k: 'v' });
    await bao.api('GET', 'secret/data/audited');
    const entries = await bao.auditEntries();
    const reads = entries.filter((e) => e.path === 'secret/data/audited' && e.operation === 'read');
    expect(reads.map((e) => e.type)).toEqual(['request', 'response']);
    expect(entries.some((e) => e.path === 'secret/data/audited' && e.operation === 'create')).toBe(true);
  });

  it('restarts on the same address with a fresh (empty) dev server', async () => {
    await seedApp();
    expect((await bao.api('GET', 'secret/data/app/db')).data.data.user).toBe('alice');
    const addr = bao.addr;
    await bao.restart();
    expect(bao.addr).toBe(addr);
    const health = await bao.api('GET', 'sys/health');
    expect(health.sealed).toBe(false);
    const gone = await bao.api('GET', 'secret/data/app/db').catch((e: unknown) => e);
    expect((gone as OpenBaoApiError).status).toBe(404);
    await bao.kvPut('after-restart', { ok: true });
    expect((await bao.api('GET', 'secret/data/after-restart')).data.data).toEqual({ ok: true });
  });
});
