// TLS certificate login against OpenBao's cert auth method, with a CA, a server certificate (127.0.0.1) and
// client certificates made by openssl in the test, and OpenBao listening with TLS. Only when chosen explicitly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki, type Pki } from '../support/identity.js';
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

describe('cert login', () => {
  let bao: OpenBao;
  let pki: Pki;
  const sensitive = new Sensitive();
  const signingSecret = sensitive.add('signing secret', unique('signing'));
  const REFS = { SIGNING_SECRET: 'vault:secret/ci/signing#secret' };

  beforeAll(async () => {
    pki = makePki(tempDir('vaultrun-pki-'));
    bao = await startOpenBao({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('ci/signing', { secret: signingSecret });
    await bao.writePolicy('read-ci', 'path "secret/data/ci/*" { capabilities = ["read"] }');
    for (const mount of ['cert', 'tls-ci']) {
      await bao.api('POST', `sys/auth/${mount}`, { type: 'cert' });
      await bao.api('POST', `auth/${mount}/certs/ci`, {
        certificate: pki.caPem,
        token_policies: ['read-ci'],
        token_ttl: '10m',
      });
    }
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** TLS to OpenBao verified with our CA, the client certificate presented. */
  const tlsEnv = (vars: Record<string, string> = {}) => ({
    VAULT_ADDR: bao.tlsAddr as string,
    VAULT_CACERT: pki.caFile,
    VAULT_CLIENT_CERT: pki.clientCert,
    VAULT_CLIENT_KEY: pki.clientKey,
    ...REFS,
    ...vars,
  });

  it('VAULTRUN_AUTH_METHOD=cert with VAULTRUN_CERT_ROLE logs in with the client certificate', async () => {
    expect(bao.tlsAddr).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const run = await runProbe(sensitive, tlsEnv({ VAULTRUN_AUTH_METHOD: 'cert', VAULTRUN_CERT_ROLE: 'ci' }));
    const e = probeEnv(run);
    expect(e.SIGNING_SECRET).toBe(signingSecret);
    expectScrubbed(e);
    expect(run.stderr).toMatch(/resolved 1 reference from 1 path in \d+ ms via cert\b/);
    expect((await auditRequests(bao, 'auth/cert/login')).length).toBeGreaterThan(0);
  });

  it('the address with its scheme in capitals (HTTPS://) is https for cert login too', async () => {
    const addr = (bao.tlsAddr as string).replace(/^https:/, 'HTTPS:');
    const run = await runProbe(sensitive, tlsEnv({ VAULT_ADDR: addr, VAULTRUN_AUTH_METHOD: 'cert' }));
    expect(probeEnv(run).SIGNING_SECRET).toBe(signingSecret);
  });

  it('without a role name (any role that trusts the certificate), at another mount (--cert-mount)', async () => {
    const run = await runProbe(sensitive, tlsEnv(), {
      args: ['--auth-method', 'cert', '--cert-mount', 'tls-ci'],
    });
    expect(probeEnv(run).SIGNING_SECRET).toBe(signingSecret);
    expect((await auditRequests(bao, 'auth/tls-ci/login')).length).toBeGreaterThan(0);
  });

  describe('refused: 67, naming the method and what to check', () => {
    it('a certificate from a CA no role trusts', async () => {
      const run = await runProbe(
        sensitive,
        tlsEnv({
          VAULTRUN_AUTH_METHOD: 'cert',
          VAULT_CLIENT_CERT: pki.strangerCert,
          VAULT_CLIENT_KEY: pki.strangerKey,
        }),
      );
      expectFailure(run, 67, /login refused/, /logging in with cert \(auth\/cert\)/, /VAULT_CLIENT_CERT/);
    });

    it('a certificate role that does not exist', async () => {
      const run = await runProbe(
        sensitive,
        tlsEnv({ VAULTRUN_AUTH_METHOD: 'cert', VAULTRUN_CERT_ROLE: 'nope' }),
      );
      expectFailure(run, 67, /login refused/, /certificate role nope/);
    });
  });

  describe('missing inputs', () => {
    it('no client certificate: 67 saying what to set, without contacting Vault', async () => {
      const before = await auditRequests(bao);
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.tlsAddr as string,
        VAULT_CACERT: pki.caFile,
        VAULTRUN_AUTH_METHOD: 'cert',
        ...REFS,
      });
      expectFailure(
        run,
        67,
        /cert login needs a TLS client certificate/,
        /VAULT_CLIENT_CERT and VAULT_CLIENT_KEY/,
      );
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('an http:// address: 64', async () => {
      const run = await runProbe(sensitive, tlsEnv({ VAULT_ADDR: bao.addr, VAULTRUN_AUTH_METHOD: 'cert' }));
      expectFailure(run, 64, /cert login needs an https:\/\/ address/);
    });

    it('a client certificate alone does not choose cert login (it may be there for mutual TLS only)', async () => {
      const run = await runProbe(sensitive, tlsEnv());
      expectFailure(run, 67, /no credentials are configured/, /VAULTRUN_AUTH_METHOD=cert/);
    });

    it("the server's certificate is verified: without its CA, a TLS failure (69)", async () => {
      const { VAULT_CACERT: _, ...noCa } = tlsEnv({ VAULTRUN_AUTH_METHOD: 'cert' });
      const run = await runProbe(sensitive, noCa);
      expectFailure(run, 69, /TLS failure/);
    });
  });
});
