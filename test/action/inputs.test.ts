import { describe, expect, it } from 'vitest';
import { defaultName, inputOf, parseSecrets, planAction } from '../../src/action/inputs.js';
import { inInputWords } from '../../src/action/main.js';
import { isOwnSetting } from '../../src/settings.js';

const parse = (text: string) => parseSecrets(text, isOwnSetting).map(({ name, value }) => [name, value]);

describe('parseSecrets', () => {
  it.each<[string, string, string[][]]>([
    ['PATH#KEY | NAME', 'secret/ci#key | KEY_OUT', [['KEY_OUT', 'vault:secret/ci#key']]],
    ['with a version', 'secret/ci#key#3 | K', [['K', 'vault:secret/ci#key#3']]],
    ['with vault: in front', 'vault:secret/ci#key|K', [['K', 'vault:secret/ci#key']]],
    ["vault-action's PATH KEY | NAME ;", 'secret/data/ci key | K ;', [['K', 'vault:secret/data/ci#key']]],
    [
      'several on one line',
      'a/b x | X; a/b#y | Y',
      [
        ['X', 'vault:a/b#x'],
        ['Y', 'vault:a/b#y'],
      ],
    ],
    ['default name: the key upper-cased', 'a/b#api-key.v2', [['API_KEY_V2', 'vault:a/b#api-key.v2']]],
    ['default name of a key starting with a digit', 'a/b 2fa', [['_2FA', 'vault:a/b#2fa']]],
    [
      "vaultrun's own form",
      'DSN=x://${vault:a/b#u}:${vault:a/b#p}@h',
      [['DSN', 'x://${vault:a/b#u}:${vault:a/b#p}@h']],
    ],
    ["the own form keeps ';' inside", 'V=a;${vault:a/b#c};', [['V', 'a;${vault:a/b#c}']]],
    ['names with . and -', 'a/b#c | my-output.x', [['my-output.x', 'vault:a/b#c']]],
    ['comments, blank lines, CRLF', '# x\r\n\r\n  a/b#c | C  \r\n', [['C', 'vault:a/b#c']]],
  ])('%s', (_, text, expected) => {
    expect(parse(text)).toEqual(expected);
  });

  it.each<[string, string, RegExp]>([
    ['nothing', '  \n# only a comment\n', /input secrets: no secret requested/],
    ['no key', 'secret/ci | X', /secrets line 1: invalid Vault reference: missing #KEY/],
    ['three words', 'secret/ci a b | X', /secrets line 1: expected "PATH#KEY \| NAME" or "PATH KEY \| NAME"/],
    ['a wildcard', 'secret/ci * | X', /wildcard keys/],
    ['a bad name', 'a/b#c | 9lives', /"9lives" is not a valid output name/],
    ['a name twice', 'a/b#c | X\na/b#d | X', /secrets line 2: X is requested twice/],
    ['an own setting', 'a/b#c | VAULT_ADDR', /VAULT_ADDR is one of vaultrun's own settings/],
    ['the own form without a reference', 'X=plain', /X= holds no vault: reference/],
    ['a .. segment', 'a/../b#c', /path has an empty, '.' or '..' segment/],
  ])('refuses %s', (_, text, pattern) => {
    expect(() => parseSecrets(text, isOwnSetting)).toThrow(pattern);
  });

  it('defaultName', () => {
    expect(defaultName('password')).toBe('PASSWORD');
    expect(defaultName('a b/c')).toBe('A_B_C');
  });
});

describe('planAction', () => {
  const base = { INPUT_URL: 'https://vault.test', INPUT_SECRETS: 'a/b#c | C', INPUT_METHOD: 'jwt' };

  it('reads INPUT_ names as the runner writes them (upper-cased, spaces as _)', () => {
    expect(inputOf({ INPUT_JWTGITHUBAUDIENCE: ' x ' }, 'jwtGithubAudience')).toBe('x');
    expect(inputOf({ 'INPUT_MY_INPUT-X': 'y' }, 'my input-x')).toBe('y');
  });

  it('jwt: role and path become the jwt settings; only the listed secrets are planned', () => {
    const plan = planAction(
      { ...base, INPUT_ROLE: 'deploy', INPUT_PATH: 'github', DB: 'vault:x/y#z', VAULTRUN_WAIT: '5s' },
      isOwnSetting,
    );
    expect(plan.env).toEqual({
      VAULT_ADDR: 'https://vault.test',
      VAULTRUN_AUTH_METHOD: 'jwt',
      VAULTRUN_FILE_ENV: 'false',
      VAULTRUN_JWT_ROLE: 'deploy',
      VAULTRUN_JWT_MOUNT: 'github',
      VAULTRUN_WAIT: '5s',
      C: 'vault:a/b#c',
    });
    expect(plan.exportEnv).toBe(true);
    expect(plan.audience).toBeUndefined();
  });

  it('token and approle credentials replace the step env forms; skip-verify from the env is dropped', () => {
    const token = planAction(
      {
        ...base,
        INPUT_METHOD: 'token',
        INPUT_TOKEN: 't0ken',
        VAULT_TOKEN_FILE: '/x',
        VAULT_SKIP_VERIFY: 'true',
      },
      isOwnSetting,
    );
    expect(token.env.VAULT_TOKEN).toBe('t0ken');
    expect(token.env.VAULT_TOKEN_FILE).toBeUndefined();
    expect(token.env.VAULT_SKIP_VERIFY).toBeUndefined();
    const approle = planAction(
      { ...base, INPUT_METHOD: 'approle', INPUT_ROLEID: 'r', INPUT_SECRETID: 's', INPUT_PATH: 'ci' },
      isOwnSetting,
    );
    expect(approle.env).toMatchObject({
      VAULT_ROLE_ID: 'r',
      VAULT_SECRET_ID: 's',
      VAULTRUN_APPROLE_MOUNT: 'ci',
    });
  });

  it('caCertificate as PEM or base64 of PEM', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(planAction({ ...base, INPUT_CACERTIFICATE: pem }, isOwnSetting).caPem).toBe(pem.trim());
    const b64 = Buffer.from(pem).toString('base64');
    expect(planAction({ ...base, INPUT_CACERTIFICATE: b64 }, isOwnSetting).caPem).toBe(pem);
    expect(() => planAction({ ...base, INPUT_CACERTIFICATE: 'bm9wZQ==' }, isOwnSetting)).toThrow(
      /input caCertificate: neither PEM nor base64 of PEM/,
    );
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['no url', { INPUT_URL: '' }, /input url: no Vault address/],
    ['tlsSkipVerify', { INPUT_TLSSKIPVERIFY: 'true' }, /input tlsSkipVerify: vaultrun does not turn TLS/],
    ['a bad boolean', { INPUT_EXPORTENV: 'yes' }, /input exportEnv: expected true or false, got "yes"/],
    ['token without a token', { INPUT_METHOD: 'token' }, /input token: method token needs a token/],
    [
      'approle without secretId',
      { INPUT_METHOD: 'approle', INPUT_ROLEID: 'r' },
      /input secretId: method approle/,
    ],
    [
      'kubernetes without a role',
      { INPUT_METHOD: 'kubernetes' },
      /input role: method kubernetes needs a role/,
    ],
    [
      'a bad fileFormat',
      { INPUT_FILEFORMAT: 'yaml' },
      /input fileFormat: expected one of dotenv, json, shell/,
    ],
  ])('refuses %s', (_, inputs, pattern) => {
    expect(() => planAction({ ...base, ...inputs }, isOwnSetting)).toThrow(pattern);
  });

  it('VAULT_ADDR from the step environment when url is not given', () => {
    expect(planAction({ ...base, INPUT_URL: '', VAULT_ADDR: 'http://v' }, isOwnSetting).env.VAULT_ADDR).toBe(
      'http://v',
    );
  });
});

describe('planAction: names and the file format', () => {
  const base = { INPUT_URL: 'https://vault.test', INPUT_METHOD: 'jwt' };
  it.each<[string, string, boolean]>([
    ['dotenv', 'API-KEY', false],
    ['dotenv', 'my.key', false],
    ['shell', 'API-KEY', false],
    ['json', 'API-KEY', true],
    ['dotenv', 'API_KEY', true],
  ])('file in %s with output %s: allowed %s', (fileFormat, name, allowed) => {
    const plan = () =>
      planAction(
        {
          ...base,
          INPUT_SECRETS: `secret/ci/deploy#key | ${name}`,
          INPUT_FILE: 's.env',
          INPUT_FILEFORMAT: fileFormat,
        },
        isOwnSetting,
      );
    if (allowed) expect(plan().secrets.map((s) => s.name)).toEqual([name]);
    else
      expect(plan).toThrow(
        new RegExp(`^input secrets: ${name.replace('.', '\\.')}: not a shell variable name`),
      );
  });

  it('without a file, any output name the action takes', () => {
    const plan = planAction({ ...base, INPUT_SECRETS: 'secret/ci/deploy#key | API-KEY' }, isOwnSetting);
    expect(plan.secrets.map((s) => s.name)).toEqual(['API-KEY']);
  });
});

describe('inInputWords', () => {
  it('names the inputs instead of the settings the action set from them', () => {
    expect(
      inInputWords(
        'check the JWT from VAULTRUN_JWT against the role (VAULTRUN_JWT_ROLE=ci) and the mount (VAULTRUN_JWT_MOUNT=jwt); VAULT_ADDR',
      ),
    ).toBe(
      'check the GitHub OIDC token against the role (input role=ci) and the mount (input path=jwt); input url',
    );
  });

  it.each<[string, string]>([
    [
      'set the url input (or VAULT_ADDR in the step environment)',
      'set the url input (or VAULT_ADDR in the step environment)',
    ],
    [
      "set VAULT_CACERT=/path/to/ca.pem (the CA that signed Vault's certificate) or VAULT_CAPATH to a directory of CA files",
      "set the caCertificate input to the CA that signed Vault's certificate (PEM, or base64 of PEM)",
    ],
    [
      "set VAULT_CACERT / VAULT_CAPATH to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME",
      "set the caCertificate input to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME",
    ],
    [
      'is a symbolic link: not followed (give the path it points to, or leave --output out to write to stdout)',
      'is a symbolic link: not followed (give the path it points to, or leave the file input out)',
    ],
    [
      'write PATH#KEY; list the variable in VAULTRUN_PASSTHROUGH to pass it through untouched',
      'write PATH#KEY',
    ],
  ])('%s', (text, words) => {
    expect(inInputWords(text)).toBe(words);
  });
});
