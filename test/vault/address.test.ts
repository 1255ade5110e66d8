import { describe, expect, it } from 'vitest';
import { Masker } from '../../src/log.js';
import { isCredentialVariable } from '../../src/settings.js';
import {
  addressCredentials,
  basicCredentials,
  displayAddress,
  hasUserinfo,
} from '../../src/vault/address.js';

describe('displayAddress', () => {
  it.each([
    ['http://admin:S3cret@127.0.0.1:18412', 'http://admin:<redacted>@127.0.0.1:18412'],
    [
      'https://admin:S3cret@vault.example.com:8200/prefix',
      'https://admin:<redacted>@vault.example.com:8200/prefix',
    ],
    ['https://admin:@vault:8200', 'https://admin:<redacted>@vault:8200'],
    ['https://apikey0123@vault:8200', 'https://<redacted>@vault:8200'],
    // An "@" in the password: the URL parser takes the last "@" before the host.
    ['http://admin:p@ss:w@rd@vault:8200', 'http://admin:<redacted>@vault:8200'],
    ['http://admin:p%40ss@[::1]:8200', 'http://admin:<redacted>@[::1]:8200'],
    ['HTTPS://Admin:S3cret@Vault:8200', 'HTTPS://Admin:<redacted>@Vault:8200'],
  ])('%s → %s', (addr, shown) => {
    expect(displayAddress(addr)).toBe(shown);
  });

  it.each([
    'https://vault.example.com:8200',
    'http://127.0.0.1:8200/some@path',
    'http://vault:8200?x=a@b',
    'http://vault:8200#a@b',
    'http://vault:8200\\a@b',
    'https://[::1]:8200',
  ])('shows %s as given (no userinfo)', (addr) => {
    expect(displayAddress(addr)).toBe(addr);
    expect(hasUserinfo(addr)).toBe(false);
    expect(addressCredentials(addr)).toEqual([]);
  });

  it('agrees with the URL parser about where the userinfo ends', () => {
    for (const addr of ['http://a:b@h:1/x@y', 'http://a:b@c@h:1', 'http://h:1/a:b@c', 'http://u@h']) {
      const url = new URL(addr);
      const shown = displayAddress(addr);
      if (url.password) expect(shown).not.toContain(`:${url.password}@`);
      expect(shown.endsWith(`${url.host}${url.pathname === '/' ? '' : url.pathname}`)).toBe(true);
    }
  });
});

describe('the credentials of an address', () => {
  it('are every form the password can take: as written, encoded, decoded, the pair, the base64', () => {
    const addr = 'http://admin:p%40ss word@vault:8200';
    const url = new URL(addr);
    const basic = basicCredentials(url) as string;
    expect(Buffer.from(basic, 'base64').toString()).toBe('admin:p@ss word');
    expect(addressCredentials(addr)).toEqual(
      expect.arrayContaining(['p%40ss word', 'p%40ss%20word', 'p@ss word', 'admin:p@ss word', basic]),
    );
  });

  it('a user name without a password is the credential', () => {
    const creds = addressCredentials('https://apikey0123@vault:8200');
    expect(creds).toEqual(
      expect.arrayContaining(['apikey0123', Buffer.from('apikey0123:').toString('base64')]),
    );
  });

  it('a stray % is sent as written instead of failing', () => {
    expect(Buffer.from(basicCredentials(new URL('http://u:100%zz@h')) as string, 'base64').toString()).toBe(
      'u:100%zz',
    );
  });

  it('once in the masker, no form of them is printed', () => {
    const addr = 'http://admin:S3cretPass@127.0.0.1:8200';
    const masker = new Masker();
    for (const v of addressCredentials(addr)) masker.add(v);
    const basic = Buffer.from('admin:S3cretPass').toString('base64');
    const echoed = `{"authorization":"Basic ${basic}","x":"${addr}","y":"S3cretPass"}`;
    for (const text of [masker.mask(echoed), masker.maskUntrusted(echoed)]) {
      expect(text).not.toContain('S3cretPass');
      expect(text).not.toContain(basic);
    }
    expect(masker.mask(displayAddress(addr))).toBe('http://admin:<redacted>@127.0.0.1:8200');
  });
});

describe('isCredentialVariable', () => {
  it.each([
    ['VAULT_ADDR', 'http://admin:pw@vault:8200', true],
    ['BAO_ADDR', 'http://key@vault:8200', true],
    ['VAULT_ADDR', 'http://vault:8200', false],
    ['APP_URL', 'http://admin:pw@app', false],
    ['VAULT_TOKEN', 'whatever', true],
    ['VAULT_TOKEN', undefined, true],
  ])('%s=%s → %s', (name, value, credential) => {
    expect(isCredentialVariable(name, value)).toBe(credential);
  });
});
