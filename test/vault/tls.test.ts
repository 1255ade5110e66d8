import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config.js';
import { loadTls, pemProblem } from '../../src/vault/tls.js';
import { makePki } from '../support/identity.js';

const config = (env: Record<string, string>): Config => loadConfig({}, env);
const dir = mkdtempSync(join(tmpdir(), 'vaultrun-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pki = makePki(mkdtempSync(join(dir, 'pki-')));

describe('loadTls (the CA list and client certificate a connection uses)', () => {
  it("an https address without VAULT_CACERT / VAULT_CAPATH: Node's bundled list, explicitly", async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'https://vault.example.com:8200' }));
    expect(tls.ca?.map((b) => b.toString())).toEqual([...rootCertificates]);
    expect(tls.rejectUnauthorized).toBe(true);
  });

  it('the scheme in capitals is https too (the address is kept as given)', async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'HTTPS://vault:8200' }));
    expect(tls.ca).toHaveLength(rootCertificates.length);
  });

  it('a plain-http address: no CA list (node:tls is not even loaded for it)', async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'http://127.0.0.1:8200' }));
    expect(tls.ca).toBeUndefined();
  });

  it('VAULT_CACERT replaces the bundled list; VAULT_SKIP_VERIFY turns verification off', async () => {
    const tls = await loadTls(
      config({ VAULT_ADDR: 'https://vault:8200', VAULT_CACERT: pki.caFile, VAULT_SKIP_VERIFY: 'true' }),
    );
    expect(tls.ca?.map((b) => b.toString())).toEqual([readFileSync(pki.caFile, 'utf8')]);
    expect(tls.rejectUnauthorized).toBe(false);
  });

  it('a CA file that cannot be read: IO error naming the variable and the path', async () => {
    const missing = join(dir, 'missing.pem');
    await expect(
      loadTls(config({ VAULT_ADDR: 'https://vault:8200', VAULT_CACERT: missing })),
    ).rejects.toMatchObject({
      code: 'IO',
      message: `VAULT_CACERT: cannot read ${missing}: ENOENT`,
    });
  });

  it('a client certificate and key that are PEM and belong together are used', async () => {
    const tls = await loadTls(
      config({
        VAULT_ADDR: 'https://vault:8200',
        VAULT_CLIENT_CERT: pki.clientCert,
        VAULT_CLIENT_KEY: pki.clientKey,
      }),
    );
    expect(tls.cert?.toString()).toBe(readFileSync(pki.clientCert, 'utf8'));
    expect(tls.key).toBeDefined();
  });
});

describe('pemProblem (what a TLS file lacks; the content never echoed)', () => {
  it.each<['ca' | 'cert' | 'key', string, string | undefined]>([
    ['ca', '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n', undefined],
    ['ca', 'junk\n-----BEGIN TRUSTED CERTIFICATE-----\n', undefined],
    ['ca', 'myhost\n', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'],
    ['cert', '-----BEGIN PRIVATE KEY-----\n', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)'],
    ['key', '-----BEGIN PRIVATE KEY-----\n', undefined],
    ['key', '-----BEGIN EC PRIVATE KEY-----\n', undefined],
    ['key', '-----BEGIN RSA PRIVATE KEY-----\n', undefined],
    ['key', '-----BEGIN CERTIFICATE-----\n', 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)'],
    ['key', '', 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)'],
  ])('%s %j → %j', (kind, content, problem) => {
    expect(pemProblem(kind, content)).toBe(problem);
  });
});

describe('loadTls: TLS files with the wrong content are configuration errors (64) naming the setting and the path', () => {
  const notPem = join(dir, 'hostname');
  writeFileSync(notPem, 'myhost\n');
  const noCerts = join(dir, 'no-certs');
  mkdirSync(noCerts);
  writeFileSync(join(noCerts, 'readme.txt'), 'not a CA\n');
  writeFileSync(join(noCerts, 'key.pem'), '-----BEGIN PRIVATE KEY-----\n');
  const https = { VAULT_ADDR: 'https://vault:8200' };

  it.each<[string, () => Record<string, string>, string, string]>([
    [
      'VAULT_CACERT not PEM',
      () => ({ VAULT_CACERT: notPem }),
      `VAULT_CACERT: ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      "give a PEM file of the CA that signed Vault's certificate",
    ],
    [
      'VAULT_CAPATH without a certificate',
      () => ({ VAULT_CAPATH: noCerts }),
      `VAULT_CAPATH: ${noCerts} holds no CA certificate (no *.pem, *.crt or *.cer file with -----BEGIN CERTIFICATE-----)`,
      'give a directory of PEM CA files, or one PEM file in VAULT_CACERT',
    ],
    [
      'a client certificate that is not one',
      () => ({ VAULT_CLIENT_CERT: notPem, VAULT_CLIENT_KEY: notPem }),
      `VAULT_CLIENT_CERT: ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      'give the PEM client certificate (and its key in VAULT_CLIENT_KEY)',
    ],
    [
      'a key that is not one',
      () => ({ VAULT_CLIENT_CERT: pki.clientCert, VAULT_CLIENT_KEY: pki.clientCert }),
      `VAULT_CLIENT_KEY: ${pki.clientCert} holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
      'give the PEM private key of the client certificate (unencrypted: vaultrun has no passphrase setting)',
    ],
    [
      'a key of another certificate',
      () => ({ VAULT_CLIENT_CERT: pki.clientCert, VAULT_CLIENT_KEY: pki.serverKey }),
      `VAULT_CLIENT_CERT / VAULT_CLIENT_KEY: ${pki.clientCert} and ${pki.serverKey} cannot be used together (ERR_OSSL_X509_KEY_VALUES_MISMATCH)`,
      'the key is not the private key of the certificate: give the key the certificate was made for',
    ],
  ])('%s', async (_label, env, message, hint) => {
    await expect(loadTls(config({ ...https, ...env() }))).rejects.toMatchObject({
      code: 'USAGE',
      message,
      hint,
    });
  });

  it('a plain-http address: the files are checked all the same', async () => {
    await expect(
      loadTls(config({ VAULT_ADDR: 'http://vault:8200', VAULT_CACERT: notPem })),
    ).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('a VAULT_CAPATH file without a certificate is left out, the others used', async () => {
    const mixed = join(dir, 'mixed');
    mkdirSync(mixed);
    writeFileSync(join(mixed, 'a.pem'), '-----BEGIN PRIVATE KEY-----\n');
    writeFileSync(join(mixed, 'b.crt'), readFileSync(pki.caFile));
    const tls = await loadTls(config({ ...https, VAULT_CAPATH: mixed }));
    expect(tls.ca?.map((b) => b.toString())).toEqual([readFileSync(pki.caFile, 'utf8')]);
  });
});
