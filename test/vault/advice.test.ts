// The words of the errors a user meets first: TLS failures by code, an unavailable Vault, a missing path, a
// denied read. Pure functions; the integration test test/integration/first-mistakes.test.ts runs each for real.
import { describe, expect, it } from 'vitest';
import { unavailableHint } from '../../src/vault/client.js';
import { notFoundHint, policyHint } from '../../src/vault/kv.js';
import { isTlsFailure, PLAIN_HTTP_TO_TLS, TransportError, tlsAdvice } from '../../src/vault/transport.js';

describe('tlsAdvice', () => {
  it.each<[string, RegExp, RegExp]>([
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /CA vaultrun does not trust/, /^set VAULT_CACERT=/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /self-signed/, /VAULT_CACERT/],
    ['SELF_SIGNED_CERT_IN_CHAIN', /does not trust/, /VAULT_CAPATH/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /not valid for the host name in VAULT_ADDR/, /VAULT_TLS_SERVER_NAME/],
    ['CERT_HAS_EXPIRED', /has expired/, /renew Vault's certificate/],
    ['CERT_NOT_YET_VALID', /not valid yet/, /clock/],
    ['EPROTO', /says https:\/\/, but the server did not answer with TLS/, /with http:\/\//],
    [PLAIN_HTTP_TO_TLS, /says http:\/\/, but the server expects TLS/, /with https:\/\//],
    ['ERR_SSL_SOMETHING_NEW', /TLS handshake failed/, /VAULT_CACERT/],
  ])('%s', (code, problem, hint) => {
    const advice = tlsAdvice(code);
    expect(advice.problem).toMatch(problem);
    expect(advice.hint).toMatch(hint);
    // each of them is final (not retried) and reported as a TLS failure
    expect(isTlsFailure(new TransportError(code, 'x'))).toBe(true);
  });

  it('connection failures are not TLS failures (they are retried)', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND']) {
      expect(isTlsFailure(new TransportError(code, 'x'))).toBe(false);
    }
  });
});

describe('unavailableHint', () => {
  it.each<[string, boolean, RegExp]>([
    ['ECONNREFUSED', true, /^set VAULT_ADDR \(or --addr\) to your Vault's address/],
    ['HTTP 503 (Vault is sealed)', false, /^Vault is sealed: unseal it \(vault operator unseal\)/],
    ['HTTP 503 (Vault is not initialized)', false, /^Vault is not initialised: vault operator init/],
    ['ECONNREFUSED', false, /^nothing answered at VAULT_ADDR: check its host and port/],
    ['ENOTFOUND', false, /^nothing answered at VAULT_ADDR/],
    ['HTTP 502', false, /^check VAULT_ADDR, the network/],
  ])('%s (default address: %s)', (reason, addrIsDefault, hint) => {
    expect(unavailableHint(reason, addrIsDefault)).toMatch(hint);
  });
});

describe('notFoundHint and policyHint', () => {
  const kv2 = { path: 'secret/', type: 'kv', kvVersion: 2 as const };
  const kv1 = { path: 'kv/', type: 'kv', kvVersion: 1 as const };
  it.each<[string, typeof kv2 | typeof kv1 | undefined, string]>([
    [
      'secret/app/dbb',
      kv2,
      'it is in mount secret/ (KV version 2); list what is there with `vault kv list secret/app`',
    ],
    [
      'secret/dbb',
      kv2,
      'it is in mount secret/ (KV version 2); list what is there with `vault kv list secret`',
    ],
    [
      'secret/data/app/dbb',
      kv2,
      'it is in mount secret/ (KV version 2); list what is there with `vault kv list secret/app`; data/ right after the mount is read as the KV v2 API path (secret NAME at MOUNT/data/NAME): a secret whose own name is data/app/dbb is written secret/data/data/app/dbb',
    ],
    ['kv/a/b', kv1, 'it is in mount kv/ (KV version 1); list what is there with `vault kv list kv/a`'],
  ])('%s', (path, mount, hint) => {
    expect(notFoundHint(path, mount)).toBe(hint);
  });

  it('no mount: say so and how to list the mounts', () => {
    expect(notFoundHint('secrt/app/db', undefined)).toMatch(
      /no secrets engine is mounted.*`vault secrets list`/,
    );
  });

  it.each<[string, typeof kv2 | typeof kv1 | undefined, string]>([
    ['secret/app/db', kv2, 'secret/data/app/db'],
    ['secret/data/app/db', kv2, 'secret/data/app/db'],
    ['kv/app/db', kv1, 'kv/app/db'],
    ['database/creds/app', undefined, 'database/creds/app'],
  ])('policyHint %s → %s', (path, mount, policyPath) => {
    expect(policyHint(path, mount)).toBe(
      `the token's policies must allow it: path "${policyPath}" { capabilities = ["read"] }`,
    );
  });
});
