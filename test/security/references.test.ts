// A reference can name only a secret (issue 8, items 3 and 12), against a real OpenBao: references aiming at
// the token store, sys/, identity/, in any spelling or behind a namespace, fail with exit 64 before any such
// request is sent, and the command never runs; a read denied by the policy is "denied" (77) whatever the path
// is called, also where node-vault would have taken a failed answer for a success (paths with "sys/health").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  probeEnv,
  runProbe,
  Sensitive,
  unique,
} from '../support/resolution.js';

describe('references name only secrets', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const secretValue = sensitive.add('kv value', unique('kvval'));
  let broad: { roleId: string; secretId: string };
  let narrow: { roleId: string; secretId: string };

  /** AppRole login (no lookup-self at login) with a policy that may read everything, the worst case. */
  const env = (vars: Record<string, string>, role = broad) => ({
    VAULT_ADDR: bao.addr,
    VAULT_ROLE_ID: role.roleId,
    VAULT_SECRET_ID: role.secretId,
    ...vars,
  });

  /** Audit entries before the tests (the set-up's own requests with the root token). */
  let setupEntries = 0;

  /**
   * Paths of requests sent by the runs that reach the token store, sys/ or identity/ (mount look-ups aside,
   * which answer with a mount's description, never with a token).
   */
  async function forbiddenRequests(): Promise<string[]> {
    return (await auditRequests(bao))
      .slice(setupEntries)
      .map((e) => e.path)
      .filter((p) => !p.startsWith('sys/internal/ui/mounts/'))
      .filter((p) => /(^|\/)(auth\/token\/lookup|sys\/|identity\/)/.test(p) || p.includes('lookup-self'));
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/db', { password: secretValue });
    await bao.api('POST', 'sys/namespaces/ns1', {});
    await bao.writePolicy('everything', 'path "*" {\n  capabilities = ["read", "list"]\n}\n');
    await bao.writePolicy(
      'app',
      [
        'path "secret/data/app/*" {\n  capabilities = ["read"]\n}',
        'path "secret/data/app/sys/health" {\n  capabilities = ["deny"]\n}',
      ].join('\n'),
    );
    broad = await bao.setupAppRole({ role: 'broad', policies: ['everything'] });
    narrow = await bao.setupAppRole({ role: 'narrow', policies: ['app'] });
    for (const v of [broad.roleId, broad.secretId, narrow.roleId, narrow.secretId])
      sensitive.add('approle', v);
    setupEntries = (await auditRequests(bao)).length;
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('control: the broad role reads a secret (the refusals below are not a broken setup)', async () => {
    const run = await runProbe(sensitive, env({ DB_PASSWORD: 'vault:secret/app/db#password' }));
    expect(probeEnv(run).DB_PASSWORD).toBe(secretValue);
  });

  it.each([
    'auth/token/lookup-self#id',
    'Auth/token/lookup-self#id',
    'auth/approle/role/broad/role-id#role_id',
    'sys/wrapping/lookup#creation_path',
    'sys/health#initialized',
    'sys/seal-status#sealed',
    'identity/oidc/token/app#token',
    'cubbyhole/../auth/token/lookup-self#id',
    'secret/../auth/token/lookup-self#id',
    'secret/data/../../auth/token/lookup-self#id',
    'secret/%2e%2e/auth/token/lookup-self#id',
    'secret/%2E%2E/auth/token/lookup-self#id',
    'secret/.%2e/auth/token/lookup-self#id',
    'secret/%2e./auth/token/lookup-self#id',
    'secret/%252e%252e/auth/token/lookup-self#id',
    'secret%2f..%2fauth/token/lookup-self#id',
    'secret\\..\\auth\\token\\lookup-self#id',
    'secret/..\\auth/token/lookup-self#id',
    'secret//../auth/token/lookup-self#id',
    'secret/./../auth/token/lookup-self#id',
    'secret/x?/../../auth/token/lookup-self#id',
    'secret/x;/../../auth/token/lookup-self#id',
    'secret/\uff0e\uff0e/auth/token/lookup-self#id',
    'secret/ ../auth/token/lookup-self#id',
  ])('vault:%s → 64 naming the variable, nothing sent, the command never runs', async (body) => {
    const before = (await auditRequests(bao)).length;
    const run = await runProbe(
      sensitive,
      env({ LEAK: `vault:${body}`, OTHER: 'vault:secret/app/db#password' }),
    );
    expectFailure(run, 64, /LEAK: invalid Vault reference/, /segments separated by single '\/'/);
    // Parsing comes first: not even the login was sent.
    expect((await auditRequests(bao)).length).toBe(before);
  });

  it('inline references too: ${vault:secret/../auth/token/lookup-self#id} → 64', async () => {
    const before = (await auditRequests(bao)).length;
    const run = await runProbe(
      sensitive,
      env({ URL: 'postgres://u:${vault:secret/%2e%2e/auth/token/lookup-self#id}@db/app' }),
    );
    expectFailure(run, 64, /URL: invalid Vault reference/);
    expect((await auditRequests(bao)).length).toBe(before);
  });

  it.each(['ns1/auth/token/lookup-self#id', 'ns1/sys/health#initialized', 'ns1/identity/entity/name/x#id'])(
    'behind a namespace prefix: vault:%s → 64, the endpoint itself never read',
    async (body) => {
      const run = await runProbe(sensitive, env({ LEAK: `vault:${body}` }));
      expectFailure(run, 64, /LEAK: .*is not readable by a reference: it is in the ns_\w+ mount ns1\//);
      expect(await forbiddenRequests()).toEqual([]);
    },
  );

  it('behind a namespace prefix, where Vault denies even the mount look-up: 77, the path never read', async () => {
    const run = await runProbe(sensitive, env({ LEAK: 'vault:ns1/auth/approle/role/x/role-id#role_id' }));
    expectFailure(run, 77, /LEAK: permission denied while looking up the mount of ns1\/auth\/approle/);
    expect(await forbiddenRequests()).toEqual([]);
    const reads = (await auditRequests(bao))
      .slice(setupEntries)
      .map((e) => e.path)
      .filter((p) => p.endsWith('role-id') && !p.startsWith('sys/internal/ui/mounts/'));
    expect(reads).toEqual([]);
  });

  it('with VAULT_NAMESPACE set, auth/token/lookup-self is refused the same', async () => {
    const before = (await auditRequests(bao)).length;
    const run = await runProbe(
      sensitive,
      env({ VAULT_NAMESPACE: 'ns1', LEAK: 'vault:auth/token/lookup-self#id' }),
    );
    expectFailure(run, 64, /LEAK: invalid Vault reference/);
    expect((await auditRequests(bao)).length).toBe(before);
  });

  it('no run above sent a request to the token store, sys/ (look-ups aside) or identity/', async () => {
    expect(await forbiddenRequests()).toEqual([]);
  });
});

describe('a denied read is denied (77), whatever the path is called', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  let narrow: { roleId: string; secretId: string };

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/sys/health', { x: unique('hidden') });
    await bao.kvPut('app/db', { password: sensitive.add('db password', unique('dbpass')) });
    await bao.writePolicy(
      'app',
      [
        'path "secret/data/app/*" {\n  capabilities = ["read"]\n}',
        'path "secret/data/app/sys/health" {\n  capabilities = ["deny"]\n}',
        'path "secret/data/app/mysys/healthz" {\n  capabilities = ["deny"]\n}',
      ].join('\n'),
    );
    narrow = await bao.setupAppRole({ role: 'narrow', policies: ['app'] });
    sensitive.add('role_id', narrow.roleId);
    sensitive.add('secret_id', narrow.secretId);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  const env = (vars: Record<string, string>) => ({
    VAULT_ADDR: bao.addr,
    VAULT_ROLE_ID: narrow.roleId,
    VAULT_SECRET_ID: narrow.secretId,
    ...vars,
  });

  it.each([
    // A path the policy denies explicitly, in a mount it may look up.
    'secret/app/sys/health#x',
    'secret/app/mysys/healthz#x',
    // A path outside the policy: even the mount look-up is denied.
    'secret/other/sys/health#x',
  ])('vault:%s → 77 "permission denied", never 66 "missing"', async (body) => {
    const run = await runProbe(sensitive, env({ HEALTH: `vault:${body}` }));
    expectFailure(run, 77, /HEALTH: .*permission denied/);
    expect(run.stderr).not.toMatch(/empty|no data|not found|nothing found/);
  });

  it('control: the policy does allow the neighbour, so 77 is about the path', async () => {
    const run = await runProbe(sensitive, env({ DB: 'vault:secret/app/db#password' }));
    expect(probeEnv(run).DB).toMatch(/^dbpass-/);
  });
});
