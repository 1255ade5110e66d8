// OpenBao namespaces end to end: AppRole enabled inside a namespace and a login there (VAULT_NAMESPACE),
// references resolved inside it (KV v2 mounted in the namespace), a nested namespace reached by a path prefix,
// a namespace reached by a path prefix from the root namespace (VAULT_NAMESPACE unset), --watch polling inside
// a namespace, the command's token (vault:login) created in the namespace, and the security rule that a
// namespace prefix never opens sys/, auth/ or identity/. Real OpenBao; namespaces made with sys/namespaces.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir, writeFile } from '../support/processes.js';
import { unique } from '../support/resolution.js';
import { ROTATION_APP, startResident, WATCH_FAST, waitForStart, waitUntil } from '../support/rotation.js';

const PRINT = ['--', 'node', '-e', 'process.stdout.write(JSON.stringify(process.env))'];

describe('namespaces', () => {
  let bao: OpenBao;
  let roleId: string;
  let secretId: string;
  const v1 = unique('ns1-value');
  const nested = unique('nested-value');
  const rootValue = unique('root-value');

  /** A call inside namespace `ns` (X-Vault-Namespace), with the root token. */
  const inNs = <T>(ns: string, method: string, path: string, body?: unknown) =>
    bao.api<T>(method, path, body, bao.rootToken, { 'X-Vault-Namespace': ns });

  async function kvPut(ns: string, path: string, data: Record<string, string>): Promise<void> {
    // A freshly mounted KV v2 answers "upgrading" for a moment: retry briefly.
    for (let i = 0; ; i++) {
      try {
        await inNs(ns, 'POST', `secret/data/${path}`, { data });
        return;
      } catch (error) {
        if (i > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.api('POST', 'sys/namespaces/ns1', {});
    await inNs('ns1', 'POST', 'sys/namespaces/child', {});
    for (const ns of ['ns1', 'ns1/child']) {
      await inNs(ns, 'POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    }
    await kvPut('ns1', 'app', { password: v1 });
    await kvPut('ns1/child', 'app', { password: nested });
    await bao.kvPut('app', { password: rootValue }); // the same path in the root namespace
    await inNs('ns1', 'PUT', 'sys/policies/acl/app', {
      policy: [
        'path "secret/data/*" { capabilities = ["read"] }',
        'path "secret/metadata/*" { capabilities = ["read"] }',
        'path "child/secret/data/*" { capabilities = ["read"] }',
        'path "auth/token/create" { capabilities = ["update"] }',
      ].join('\n'),
    });
    await inNs('ns1', 'POST', 'sys/auth/approle', { type: 'approle' });
    await inNs('ns1', 'POST', 'auth/approle/role/app', { token_policies: ['app'] });
    roleId = (await inNs<{ data: { role_id: string } }>('ns1', 'GET', 'auth/approle/role/app/role-id')).data
      .role_id;
    secretId = (
      await inNs<{ data: { secret_id: string } }>('ns1', 'POST', 'auth/approle/role/app/secret-id', {})
    ).data.secret_id;
  });

  afterAll(async () => {
    await bao?.stop();
  });

  function env(extra: Record<string, string>): Record<string, string> {
    return baseEnv({ VAULT_ADDR: bao.addr, ...extra });
  }

  const approle = () => ({ VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId });

  it('VAULT_NAMESPACE: AppRole login inside the namespace, references read inside it', async () => {
    const run = await runVaultrun(PRINT, {
      env: env({ ...approle(), VAULT_NAMESPACE: 'ns1', DB_PASSWORD: 'vault:secret/app#password' }),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    const got = JSON.parse(run.stdout) as Record<string, string>;
    expect(got.DB_PASSWORD).toBe(v1);
    expect(got.VAULT_NAMESPACE).toBeUndefined(); // our setting, scrubbed as the others
    expect(run.stderr).toMatch(/via approle/);
  });

  it("a child namespace by path prefix with the namespace's policies: OpenBao refuses the mount look-up, so the read fails closed (77)", async () => {
    // OpenBao 2.7 answers sys/internal/ui/mounts/child/… with "preflight capability check returned 403" for a
    // token of ns1 whose policy grants child/secret/data/*: the mount stays unknown, and the path is read as
    // given (KV v1 semantics), which the policy denies. Documented: set VAULT_NAMESPACE to the namespace instead.
    const run = await runVaultrun(PRINT, {
      env: env({ ...approle(), VAULT_NAMESPACE: 'ns1', NESTED: 'vault:child/secret/app#password' }),
    });
    expect(run.exitCode, run.stderr).toBe(77);
    expect(run.stdout).toBe('');
  });

  it('BAO_NAMESPACE works the same; a trailing slash is fine', async () => {
    const run = await runVaultrun(PRINT, {
      env: env({ ...approle(), BAO_NAMESPACE: 'ns1/', DB_PASSWORD: 'vault:secret/app#password' }),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as Record<string, string>).DB_PASSWORD).toBe(v1);
  });

  it('without VAULT_NAMESPACE, a path prefixed by the namespace reads in it (root-namespace token)', async () => {
    const run = await runVaultrun(PRINT, {
      env: env({
        VAULT_TOKEN: bao.rootToken,
        IN_NS: 'vault:ns1/secret/app#password',
        NESTED: 'vault:ns1/child/secret/app#password',
        ROOT: 'vault:secret/app#password',
      }),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    const got = JSON.parse(run.stdout) as Record<string, string>;
    expect(got).toMatchObject({ IN_NS: v1, NESTED: nested, ROOT: rootValue });
  });

  it('a path is relative to VAULT_NAMESPACE: the namespace written twice is another path (ns1/ns1/…), denied (77)', async () => {
    const run = await runVaultrun(PRINT, {
      env: env({ ...approle(), VAULT_NAMESPACE: 'ns1', X: 'vault:ns1/secret/app#password' }),
    });
    expect(run.exitCode, run.stderr).toBe(77);
    expect(run.stdout).toBe('');
  });

  it('a login in the wrong namespace is refused (67): the role exists only in ns1', async () => {
    const run = await runVaultrun(PRINT, {
      env: env({ ...approle(), DB_PASSWORD: 'vault:secret/app#password' }),
    });
    expect(run.exitCode, run.stderr).toBe(67);
  });

  it('a namespace prefix never opens the token store, sys/ or identity/ (64, before any read)', async () => {
    for (const [ref, ns] of [
      ['vault:ns1/auth/token/lookup-self#id', undefined],
      ['vault:ns1/sys/mounts#secret/', undefined],
      ['vault:child/auth/token/lookup-self#id', 'ns1'],
      ['vault:ns1/identity/entity/name#keys', undefined],
    ] as const) {
      const run = await runVaultrun(PRINT, {
        env: env({ VAULT_TOKEN: bao.rootToken, LEAK: ref, ...(ns ? { VAULT_NAMESPACE: ns } : {}) }),
      });
      expect(run.exitCode, `${ref}: ${run.stderr}`).toBe(64);
      expect(run.stderr).toMatch(/not readable by a reference/);
      expect(run.stdout).toBe('');
    }
  });

  it('--watch inside a namespace: a change there restarts the command with the new value', async () => {
    const path = 'watched';
    const w1 = unique('w1');
    const w2 = unique('w2');
    await kvPut('ns1', path, { password: w1 });
    const appLog = join(workDir('vaultrun-ns-'), 'app.log');
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], {
      env: env({
        ...approle(),
        VAULT_NAMESPACE: 'ns1',
        DB_PASSWORD: `vault:secret/${path}#password`,
        APP_LOG: appLog,
        APP_VARS: 'DB_PASSWORD',
      }),
    });
    expect((await waitForStart(appLog, 1)).vars?.DB_PASSWORD).toBe(w1);
    await kvPut('ns1', path, { password: w2 });
    expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(w2);
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
  });

  it("vault:login in a namespace: the command's token is created in it, works there, and is revoked on exit", async () => {
    const dir = workDir('vaultrun-ns-tok-');
    const out = join(dir, 'out.json');
    const app = writeFile(
      join(dir, 'app.mjs'),
      `import { writeFileSync } from 'node:fs';
const headers = { 'X-Vault-Token': process.env.APP_TOKEN, 'X-Vault-Namespace': 'ns1' };
const self = await fetch(process.env.APP_ADDR + '/v1/auth/token/lookup-self', { headers });
const read = await fetch(process.env.APP_ADDR + '/v1/secret/data/app', { headers });
writeFileSync(process.env.APP_OUT + '.tmp', JSON.stringify({ token: process.env.APP_TOKEN, self: (await self.json()).data, read: read.status }));
(await import('node:fs')).renameSync(process.env.APP_OUT + '.tmp', process.env.APP_OUT);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`,
      0o644,
    );
    const run = startResident(['node', app], {
      env: env({
        ...approle(),
        VAULT_NAMESPACE: 'ns1',
        APP_TOKEN: 'vault:login',
        APP_ADDR: bao.addr,
        APP_OUT: out,
      }),
    });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const got = JSON.parse(readFileSync(out, 'utf8')) as {
      token: string;
      self: { namespace_path: string; path: string; policies: string[] };
      read: number;
    };
    expect(got.self.namespace_path).toBe('ns1/');
    expect(got.self.path).toBe('auth/token/create');
    expect(got.self.policies.sort()).toEqual(['app', 'default']);
    expect(got.read).toBe(200);
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
    await expect(
      bao.api('GET', 'auth/token/lookup-self', undefined, got.token, { 'X-Vault-Namespace': 'ns1' }),
    ).rejects.toThrow(/HTTP 403/);
  });
});
