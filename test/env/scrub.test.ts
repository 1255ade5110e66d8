import { describe, expect, it } from 'vitest';
import { scrubEnvironment } from '../../src/env/scrub.js';

const CREDENTIALS = [
  'VAULT_TOKEN',
  'VAULT_TOKEN_FILE',
  'VAULT_ROLE_ID',
  'VAULT_ROLE_ID_FILE',
  'VAULT_SECRET_ID',
  'VAULT_SECRET_ID_FILE',
  'BAO_TOKEN',
  'BAO_TOKEN_FILE',
  'BAO_ROLE_ID',
  'BAO_ROLE_ID_FILE',
  'BAO_SECRET_ID',
  'BAO_SECRET_ID_FILE',
  // The TLS client key (a path, but to a private key that logs us in with cert auth).
  'VAULT_CLIENT_KEY',
  'BAO_CLIENT_KEY',
];

describe('scrubEnvironment', () => {
  it.each(CREDENTIALS)('always removes the credential %s, even when passed through', (name) => {
    const env = { [name]: 'credential-value', APP: 'kept' };
    expect(scrubEnvironment(env, new Set())).toEqual({
      env: { APP: 'kept' },
      removed: [name],
      refusedPassthrough: [],
    });
    expect(scrubEnvironment(env, new Set([name]))).toEqual({
      env: { APP: 'kept' },
      removed: [name],
      refusedPassthrough: [name],
    });
  });

  it.each([
    'VAULT_ADDR',
    'VAULT_NAMESPACE',
    'VAULT_CACERT',
    'VAULT_SKIP_VERIFY',
    'VAULT_SOMETHING_WE_DO_NOT_READ',
    'VAULTRUN_PASSTHROUGH',
    'VAULTRUN_LOG_LEVEL',
    'VAULTRUN_ANYTHING',
    'BAO_ADDR',
    'BAO_NAMESPACE',
    'BAO_CACERT',
  ])('removes our setting %s unless it is passed through', (name) => {
    const env = { [name]: 'v', APP: 'kept' };
    expect(scrubEnvironment(env, new Set())).toEqual({
      env: { APP: 'kept' },
      removed: [name],
      refusedPassthrough: [],
    });
    expect(scrubEnvironment(env, new Set([name]))).toEqual({ env, removed: [], refusedPassthrough: [] });
  });

  it.each(['VAULT_ADDR', 'BAO_ADDR'])('%s with a password is a credential: never passed through', (name) => {
    const env = { [name]: 'http://admin:S3cretPw@vault:8200', APP: 'kept' };
    expect(scrubEnvironment(env, new Set([name]))).toEqual({
      env: { APP: 'kept' },
      removed: [name],
      refusedPassthrough: [name],
    });
  });

  it('keeps unrelated variables, including BAO_* ones we do not read and look-alikes', () => {
    const env = {
      PATH: '/usr/bin',
      HOME: '/root',
      BAO_APP_SETTING: 'x',
      MY_VAULT_TOKEN: 'x',
      VAULT: 'x',
      VAULTRUN: 'x',
      vault_token: 'x',
      DB_PASSWORD: 'resolved',
    };
    expect(scrubEnvironment(env, new Set())).toEqual({ env, removed: [], refusedPassthrough: [] });
  });

  it('reports removed names sorted, keeps values untouched, and does not modify its input', () => {
    const env = Object.freeze({
      VAULTRUN_WAIT: '1s',
      VAULT_TOKEN: 't',
      BAO_ADDR: 'http://bao',
      APP: 'value with = and spaces',
      VAULT_ADDR: 'http://vault',
    });
    const result = scrubEnvironment(env, new Set(['VAULT_ADDR', 'VAULT_TOKEN', 'UNSET_NAME']));
    expect(result).toEqual({
      env: { APP: 'value with = and spaces', VAULT_ADDR: 'http://vault' },
      removed: ['BAO_ADDR', 'VAULTRUN_WAIT', 'VAULT_TOKEN'],
      refusedPassthrough: ['VAULT_TOKEN'],
    });
    expect(Object.keys(env)).toHaveLength(5);
  });
});
