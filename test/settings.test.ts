import { describe, expect, it } from 'vitest';
import { isCredential, isOwnSetting, SETTINGS, type Setting } from '../src/settings.js';

const all = SETTINGS as readonly Setting[];

describe('SETTINGS', () => {
  it('has unique keys, flags and environment names', () => {
    const unique = (xs: string[]) => expect(new Set(xs).size).toBe(xs.length);
    unique(all.map((s) => s.key));
    unique(all.flatMap((s) => (s.flag ? [s.flag] : [])));
    unique(all.flatMap((s) => s.env));
  });

  it('gives credentials no flag (a command line is visible in ps), but their _FILE forms one', () => {
    for (const s of all.filter((s) => s.secret)) {
      // A path to a credential (the _FILE forms, the client key) may be a flag; the credential itself never.
      if (s.key.endsWith('File') || s.kind === 'path') expect(s.flag, s.key).toBeDefined();
      else expect(s.flag, s.key).toBeUndefined();
    }
    expect(all.filter((s) => !s.flag).every((s) => s.secret)).toBe(true);
  });

  it('has valid defaults for settings with choices', () => {
    for (const s of all) {
      if (s.choices && s.default !== undefined) expect(s.choices, s.key).toContain(s.default);
    }
  });
});

describe('isOwnSetting', () => {
  it.each<[string, boolean]>([
    ['VAULT_ADDR', true],
    ['VAULT_ANYTHING_AT_ALL', true],
    ['VAULTRUN_PASSTHROUGH', true],
    ['VAULTRUN_X', true],
    ['BAO_ADDR', true],
    ['BAO_TOKEN', true],
    ['BAO_SECRET_ID_FILE', true],
    ['BAO_SOMETHING_ELSE', false],
    ['VAULT', false],
    ['VAULTRUN', false],
    ['MY_VAULT_TOKEN', false],
    ['vault_addr', false],
    ['DB_PASSWORD', false],
  ])('%s → %s', (name, expected) => {
    expect(isOwnSetting(name)).toBe(expected);
  });
});

describe('isCredential', () => {
  it.each<[string, boolean]>([
    ['VAULT_TOKEN', true],
    ['BAO_TOKEN', true],
    ['VAULT_TOKEN_FILE', true],
    ['VAULT_ROLE_ID', true],
    ['BAO_ROLE_ID_FILE', true],
    ['VAULT_SECRET_ID', true],
    ['BAO_SECRET_ID_FILE', true],
    ['VAULT_ADDR', false],
    ['VAULT_CLIENT_KEY', true],
    ['BAO_CLIENT_KEY', true],
    ['VAULT_CLIENT_CERT', false],
    ['VAULTRUN_SECRET_ID_WRAPPED', false],
    ['DB_TOKEN', false],
  ])('%s → %s', (name, expected) => {
    expect(isCredential(name)).toBe(expected);
  });
});
