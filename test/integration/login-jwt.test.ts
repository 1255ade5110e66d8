// JWT / OIDC login against OpenBao's jwt auth method, configured with key pairs made in the test
// (jwt_validation_pubkeys): tokens signed with the right key, audience and claims log in; the wrong audience,
// claims, key, or an expired token are refused (67) with the method named; the JWT never appears in any output
// and never reaches the command.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signingKey, signJwt } from '../support/identity.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  type ProbeRun,
  probeEnv,
  runProbe,
  Sensitive,
  tempDir,
  unique,
} from '../support/resolution.js';

describe('jwt login', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const deployKey = sensitive.add('deploy key', unique('deploykey'));
  const rsa = signingKey('RS256');
  const ec = signingKey('ES256');
  const stranger = signingKey('RS256');
  const REFS = { DEPLOY_KEY: 'vault:secret/ci/deploy#key' };
  const CLAIMS = {
    iss: 'https://ci.example.test',
    aud: 'vaultrun-test',
    sub: 'project_path:acme/app:ref:main',
    project_path: 'acme/app',
  };

  /** A JWT (registered as sensitive) signed by `key` with the good claims, changed by `extra`. */
  function jwt(extra: Record<string, unknown> = {}, key = rsa): string {
    return sensitive.add('jwt', signJwt(key, { ...CLAIMS, ...extra }));
  }

  function expectResolved(run: ProbeRun): void {
    const env = probeEnv(run);
    expect(env.DEPLOY_KEY).toBe(deployKey);
    expectScrubbed(env);
    expect(run.stderr).toMatch(/resolved 1 reference from 1 path in \d+ ms via jwt\b/);
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('ci/deploy', { key: deployKey });
    await bao.writePolicy('read-ci', 'path "secret/data/ci/*" { capabilities = ["read"] }');
    for (const mount of ['jwt', 'gitlab']) {
      await bao.api('POST', `sys/auth/${mount}`, { type: 'jwt' });
      await bao.api('POST', `auth/${mount}/config`, {
        jwt_validation_pubkeys: [rsa.publicPem, ec.publicPem],
        bound_issuer: CLAIMS.iss,
        ...(mount === 'gitlab' ? { default_role: 'deploy' } : {}),
      });
      await bao.api('POST', `auth/${mount}/role/${mount === 'gitlab' ? 'deploy' : 'ci'}`, {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_audiences: [CLAIMS.aud],
        bound_claims: { project_path: 'acme/app' },
        token_policies: ['read-ci'],
        token_ttl: '10m',
      });
    }
  });

  afterAll(async () => {
    await bao?.stop();
  });

  const env = (vars: Record<string, string>) => ({ VAULT_ADDR: bao.addr, ...REFS, ...vars });

  it('from VAULTRUN_JWT with VAULTRUN_JWT_ROLE: inferred, logged in, the JWT scrubbed from the command', async () => {
    const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(), VAULTRUN_JWT_ROLE: 'ci' }));
    expectResolved(run);
    expect(run.stderr).toMatch(/logged in to Vault method=jwt source="VAULTRUN_JWT at auth\/jwt"/);
    const logins = await auditRequests(bao, 'auth/jwt/login');
    expect(logins.length).toBeGreaterThan(0);
  });

  it('from VAULTRUN_JWT_FILE with --jwt-role, signed with ES256', async () => {
    const file = join(tempDir(), 'id_token');
    writeFileSync(file, `${jwt({}, ec)}\n`);
    const run = await runProbe(sensitive, env({ VAULTRUN_JWT_FILE: file }), { args: ['--jwt-role', 'ci'] });
    expectResolved(run);
  });

  it("without a role, the mount's default_role (VAULTRUN_JWT_MOUNT=gitlab)", async () => {
    const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(), VAULTRUN_JWT_MOUNT: 'gitlab' }));
    expectResolved(run);
    expect((await auditRequests(bao, 'auth/gitlab/login')).length).toBeGreaterThan(0);
  });

  it('VAULTRUN_AUTH_METHOD=jwt picks the JWT when a token is set too', async () => {
    const run = await runProbe(
      sensitive,
      env({
        VAULTRUN_AUTH_METHOD: 'jwt',
        VAULTRUN_JWT: jwt(),
        VAULTRUN_JWT_ROLE: 'ci',
        VAULT_TOKEN: bao.rootToken,
      }),
    );
    expectResolved(run);
  });

  describe('refused: 67, naming the method and what to check', () => {
    it.each<[string, Record<string, unknown>, RegExp]>([
      ['the wrong audience', { aud: 'someone-else' }, /aud/i],
      ['a claim that does not match the role', { project_path: 'evil/fork' }, /claim/i],
      ['an expired token', { exp: Math.floor(Date.now() / 1000) - 600, nbf: 0, iat: 0 }, /expired|exp/i],
      ['the wrong issuer', { iss: 'https://evil.example' }, /iss/i],
    ])('%s', async (_, claims, reason) => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(claims), VAULTRUN_JWT_ROLE: 'ci' }));
      expectFailure(run, 67, /login refused/, /logging in with jwt \(auth\/jwt, role ci\)/, reason);
      expect(run.stderr).toMatch(/VAULTRUN_JWT_ROLE=ci/);
    });

    it('a token signed by a key OpenBao does not know', async () => {
      const run = await runProbe(
        sensitive,
        env({ VAULTRUN_JWT: jwt({}, stranger), VAULTRUN_JWT_ROLE: 'ci' }),
      );
      expectFailure(run, 67, /login refused/, /jwt/);
    });

    it('no role and no default_role on the mount', async () => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt() }));
      expectFailure(run, 67, /login refused/, /default_role/, /VAULTRUN_JWT_ROLE is unset/);
    });

    it('a role that does not exist', async () => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(), VAULTRUN_JWT_ROLE: 'nope' }));
      expectFailure(run, 67, /login refused/, /role nope/);
    });
  });

  describe('missing or conflicting inputs', () => {
    it('VAULTRUN_AUTH_METHOD=jwt without a JWT: 67 saying what to set, without contacting Vault', async () => {
      const before = await auditRequests(bao);
      const run = await runProbe(sensitive, env({ VAULTRUN_AUTH_METHOD: 'jwt', VAULTRUN_JWT_ROLE: 'ci' }));
      expectFailure(run, 67, /jwt login needs a JWT/, /VAULTRUN_JWT_FILE/);
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('a role alone chooses jwt, which says the JWT is missing', async () => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT_ROLE: 'ci' }));
      expectFailure(run, 67, /jwt login needs a JWT/);
    });

    it('an unreadable VAULTRUN_JWT_FILE: 74 naming the file', async () => {
      const file = join(tempDir(), 'absent');
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT_FILE: file, VAULTRUN_JWT_ROLE: 'ci' }));
      expectFailure(run, 74, new RegExp(`cannot read VAULTRUN_JWT_FILE file ${file}: ENOENT`));
    });

    it('a JWT and a token without VAULTRUN_AUTH_METHOD: ambiguous (64)', async () => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(), VAULT_TOKEN: bao.rootToken }));
      expectFailure(
        run,
        64,
        /both a token .* and a JWT/,
        /VAULTRUN_AUTH_METHOD=token or VAULTRUN_AUTH_METHOD=jwt/,
      );
    });

    it('VAULTRUN_JWT and VAULTRUN_JWT_FILE together (64)', async () => {
      const run = await runProbe(sensitive, env({ VAULTRUN_JWT: jwt(), VAULTRUN_JWT_FILE: '/x' }));
      expectFailure(run, 64, /VAULTRUN_JWT \/ VAULTRUN_JWT_FILE: set one of them, not both/);
    });
  });
});
