import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { isLoginReference, loginVariables } from '../../src/refs/login.js';
import { isOwnSetting } from '../../src/settings.js';
import { childPolicies } from '../../src/vault/child-token.js';

describe('NAME=vault:login', () => {
  it.each([
    ['vault:login', true],
    [' vault:login', false],
    ['vault:login ', false],
    ['vault:LOGIN', false],
    ['vault:login#x', false],
    ['${vault:login}', false],
    ['vault:secret/login#token', false],
  ])('%j asks for a token: %s', (value, expected) => {
    expect(isLoginReference(value)).toBe(expected);
  });

  it('finds the variables that ask for one: any name, and of our own settings only VAULT_TOKEN / BAO_TOKEN', () => {
    const env = {
      APP_VAULT_TOKEN: 'vault:login',
      B_FILE: 'vault:login',
      VAULT_TOKEN: 'vault:login',
      BAO_TOKEN: 'vault:login',
      VAULT_ROLE_ID: 'vault:login',
      VAULTRUN_X: 'vault:login',
      LISTED: 'vault:login',
      OTHER: 'vault:secret/a#b',
      UNSET: undefined,
    };
    expect(loginVariables(env, new Set(['LISTED']), isOwnSetting)).toEqual([
      'APP_VAULT_TOKEN',
      'BAO_TOKEN',
      'B_FILE',
      'VAULT_TOKEN',
    ]);
  });

  it('VAULT_TOKEN=vault:login is not our credential: the next source is used, or none', () => {
    expect(loadConfig({}, { VAULT_TOKEN: 'vault:login' }).auth.token).toBeUndefined();
    expect(loadConfig({}, { VAULT_TOKEN: 'vault:login', BAO_TOKEN: 'hvs.x' }).auth.token).toBe('hvs.x');
    expect(loadConfig({}, { VAULT_TOKEN: 'vault:login', VAULT_TOKEN_FILE: '/t' }).auth.tokenFile).toBe('/t');
  });

  it('other settings holding it are still refused', () => {
    expect(() => loadConfig({}, { VAULT_ROLE_ID: 'vault:login' })).toThrow(
      /VAULT_ROLE_ID: holds a Vault reference/,
    );
  });
});

describe('childPolicies', () => {
  it.each<[string[], string[] | undefined, string[]]>([
    [['app', 'default'], undefined, ['app', 'default']],
    [['root'], undefined, ['default']],
    [['root', 'app'], undefined, ['app']],
    [['app', 'app'], undefined, ['app']],
    [[], undefined, ['default']],
    [['root'], ['reader'], ['reader']],
    [['app'], [], ['app']],
  ])('parent %j, chosen %j → %j', (parent, chosen, expected) => {
    expect(childPolicies(parent, chosen)).toEqual(expected);
  });
});
