// Kubernetes login against OpenBao's kubernetes auth method, whose kubernetes_host points at a TokenReview
// endpoint served by the test (the one stub: no cluster runs here). OpenBao validates the service-account
// token with it, exactly as with a cluster, and applies the role's bound names and namespaces.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makePki,
  type Pki,
  serviceAccountClaims,
  signingKey,
  signJwt,
  startTokenReviewer,
  type TokenReviewer,
} from '../support/identity.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  probeEnv,
  runProbe,
  Sensitive,
  tempDir,
  unique,
} from '../support/resolution.js';

describe('kubernetes login', () => {
  let bao: OpenBao;
  let reviewer: TokenReviewer;
  let pki: Pki;
  const sensitive = new Sensitive();
  const apiKey = sensitive.add('api key', unique('apikey'));
  const clusterKey = signingKey('RS256');
  const REFS = { API_KEY: 'vault:secret/prod/app#api_key' };

  /**
   * A service-account token file for namespace/name; `known`: the cluster's TokenReview accepts it.
   * Returns its path.
   */
  function tokenFile(namespace: string, name: string, known = true): string {
    const uid = randomUUID();
    const token = sensitive.add(
      'service-account token',
      signJwt(clusterKey, serviceAccountClaims(namespace, name, uid)),
    );
    if (known) reviewer.accept(token, namespace, name, uid);
    const file = join(tempDir(), 'token');
    writeFileSync(file, token);
    return file;
  }

  beforeAll(async () => {
    pki = makePki(tempDir('vaultrun-pki-'));
    reviewer = await startTokenReviewer(pki);
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('prod/app', { api_key: apiKey });
    await bao.writePolicy('read-prod', 'path "secret/data/prod/*" { capabilities = ["read"] }');
    for (const mount of ['kubernetes', 'k8s-prod']) {
      await bao.api('POST', `sys/auth/${mount}`, { type: 'kubernetes' });
      await bao.api('POST', `auth/${mount}/config`, {
        kubernetes_host: reviewer.host,
        kubernetes_ca_cert: pki.caPem,
        disable_local_ca_jwt: true,
      });
      await bao.api('POST', `auth/${mount}/role/app`, {
        bound_service_account_names: ['app'],
        bound_service_account_namespaces: ['prod'],
        token_policies: ['read-prod'],
        token_ttl: '10m',
      });
    }
  });

  afterAll(async () => {
    await bao?.stop();
    await reviewer?.close();
  });

  const env = (vars: Record<string, string>) => ({ VAULT_ADDR: bao.addr, ...REFS, ...vars });

  it('VAULTRUN_KUBERNETES_ROLE chooses kubernetes; OpenBao reviews the token with the cluster', async () => {
    const file = tokenFile('prod', 'app');
    const reviewed = reviewer.reviewed.length;
    const run = await runProbe(
      sensitive,
      env({ VAULTRUN_KUBERNETES_ROLE: 'app', VAULTRUN_KUBERNETES_TOKEN_FILE: file }),
    );
    const e = probeEnv(run);
    expect(e.API_KEY).toBe(apiKey);
    expectScrubbed(e);
    expect(run.stderr).toMatch(/resolved 1 reference from 1 path in \d+ ms via kubernetes\b/);
    expect(reviewer.reviewed.length).toBe(reviewed + 1);
    expect((await auditRequests(bao, 'auth/kubernetes/login')).length).toBeGreaterThan(0);
  });

  it('--kubernetes-token-file and VAULTRUN_KUBERNETES_MOUNT', async () => {
    const run = await runProbe(
      sensitive,
      env({ VAULTRUN_KUBERNETES_ROLE: 'app', VAULTRUN_KUBERNETES_MOUNT: 'k8s-prod' }),
      { args: ['--kubernetes-token-file', tokenFile('prod', 'app')] },
    );
    expect(probeEnv(run).API_KEY).toBe(apiKey);
    expect((await auditRequests(bao, 'auth/k8s-prod/login')).length).toBeGreaterThan(0);
  });

  describe('refused: 67, naming the method and what to check', () => {
    it('a token the cluster does not accept', async () => {
      const run = await runProbe(
        sensitive,
        env({
          VAULTRUN_KUBERNETES_ROLE: 'app',
          VAULTRUN_KUBERNETES_TOKEN_FILE: tokenFile('prod', 'app', false),
        }),
      );
      expectFailure(run, 67, /login refused/, /logging in with kubernetes \(auth\/kubernetes, role app\)/);
      expect(run.stderr).toMatch(/VAULTRUN_KUBERNETES_ROLE=app/);
    });

    it.each([
      ['a service account the role is not bound to', 'prod', 'worker', /service account name not authorized/],
      ['a namespace the role is not bound to', 'staging', 'app', /namespace not authorized/],
    ])('%s', async (_, namespace, name, reason) => {
      const run = await runProbe(
        sensitive,
        env({ VAULTRUN_KUBERNETES_ROLE: 'app', VAULTRUN_KUBERNETES_TOKEN_FILE: tokenFile(namespace, name) }),
      );
      expectFailure(run, 67, /login refused/, /kubernetes/, reason);
    });
  });

  describe('missing or conflicting inputs', () => {
    it('no token file: 74 naming the file and the setting', async () => {
      const file = join(tempDir(), 'no-such-token');
      const run = await runProbe(
        sensitive,
        env({ VAULTRUN_KUBERNETES_ROLE: 'app', VAULTRUN_KUBERNETES_TOKEN_FILE: file }),
      );
      expectFailure(
        run,
        74,
        new RegExp(`service-account token file ${file}: ENOENT`),
        /VAULTRUN_KUBERNETES_TOKEN_FILE/,
      );
    });

    it('VAULTRUN_AUTH_METHOD=kubernetes without a role: 67 saying what to set, without contacting Vault', async () => {
      const before = await auditRequests(bao);
      const run = await runProbe(sensitive, env({ VAULTRUN_AUTH_METHOD: 'kubernetes' }));
      expectFailure(run, 67, /kubernetes login needs a role/, /VAULTRUN_KUBERNETES_ROLE/);
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('a Kubernetes role and a token without VAULTRUN_AUTH_METHOD: ambiguous (64)', async () => {
      const run = await runProbe(
        sensitive,
        env({ VAULTRUN_KUBERNETES_ROLE: 'app', VAULT_TOKEN: bao.rootToken }),
      );
      expectFailure(run, 64, /both a token .* and a Kubernetes role/);
    });
  });
});
