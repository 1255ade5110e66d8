import { describe, expect, it } from 'vitest';
import {
  type Config,
  type FlagValues,
  isHttps,
  loadConfig,
  parseBool,
  parseDuration,
  parseMount,
} from '../src/config.js';
import { NamePatterns } from '../src/env/names.js';
import { SETTINGS, type Setting } from '../src/settings.js';
import { requestUrl } from '../src/vault/client.js';
import { thrown } from './support/errors.js';

type Env = Record<string, string | undefined>;
const load = (flags: FlagValues = {}, env: Env = {}): Config => loadConfig(flags, env);
const usage = (flags: FlagValues, env: Env) => {
  const error = thrown(() => loadConfig(flags, env));
  expect(error.code).toBe('USAGE');
  return error;
};

describe('loadConfig defaults', () => {
  it('has a default for everything that needs one, and nothing else', () => {
    const config = load();
    expect(config).toMatchObject({
      addr: 'https://127.0.0.1:8200',
      skipVerify: false,
      clientTimeoutMs: 60_000,
      auth: { approleMount: 'approle', secretIdWrapped: false, deleteSecretIdFile: false },
      envFiles: [],
      envFileOverride: false,
      passthrough: new NamePatterns(),
      ignoreMissing: false,
      fileEnv: true,
      fileEnvExclude: new Set(['AWS_WEB_IDENTITY_TOKEN_FILE']),
      fileEnvDirs: ['/run/secrets', '/var/run/secrets', '/vault/secrets'],
      supervise: false,
      waitMs: 30_000,
      concurrency: 8,
      logLevel: 'info',
      logFormat: 'text',
    });
    expect(config.auth).toMatchObject({
      approleMount: 'approle',
      secretIdWrapped: false,
      deleteSecretIdFile: false,
    });
    for (const key of ['method', 'token', 'tokenFile', 'roleId', 'roleIdFile', 'secretId', 'secretIdFile']) {
      expect(Object.hasOwn(config.auth, key), key).toBe(false);
    }
    for (const key of [
      'namespace',
      'caCert',
      'caPath',
      'clientCert',
      'clientKey',
      'tlsServerName',
      'runtimeDir',
    ]) {
      expect(Object.hasOwn(config, key), key).toBe(false);
    }
  });

  it('reads nothing from the environment it was not given', () => {
    // process.env may hold anything; loadConfig must only look at its argument.
    expect(load({}, {}).addr).toBe('https://127.0.0.1:8200');
  });
});

describe('loadConfig precedence: flag beats env beats default', () => {
  type Case = [
    label: string,
    flags: FlagValues,
    env: Env,
    pick: (c: Config) => unknown,
    fromFlag: unknown,
    fromEnv: unknown,
    fallback: unknown,
  ];
  it.each<Case>([
    [
      'addr',
      { addr: 'http://flag:1' },
      { VAULT_ADDR: 'http://env:2' },
      (c) => c.addr,
      'http://flag:1',
      'http://env:2',
      'https://127.0.0.1:8200',
    ],
    ['wait', { wait: '5s' }, { VAULTRUN_WAIT: '10s' }, (c) => c.waitMs, 5_000, 10_000, 30_000],
    [
      'clientTimeout',
      { clientTimeout: '2' },
      { VAULT_CLIENT_TIMEOUT: '3' },
      (c) => c.clientTimeoutMs,
      2_000,
      3_000,
      60_000,
    ],
    ['concurrency', { concurrency: '3' }, { VAULTRUN_CONCURRENCY: '4' }, (c) => c.concurrency, 3, 4, 8],
    [
      'logLevel',
      { logLevel: 'debug' },
      { VAULTRUN_LOG_LEVEL: 'warn' },
      (c) => c.logLevel,
      'debug',
      'warn',
      'info',
    ],
    [
      'logFormat',
      { logFormat: 'json' },
      { VAULTRUN_LOG_FORMAT: 'text' },
      (c) => c.logFormat,
      'json',
      'text',
      'text',
    ],
    [
      'skipVerify',
      { skipVerify: true },
      { VAULT_SKIP_VERIFY: 'false' },
      (c) => c.skipVerify,
      true,
      false,
      false,
    ],
    // --no-file-env (false) beats VAULTRUN_FILE_ENV=true.
    ['fileEnv', { fileEnv: false }, { VAULTRUN_FILE_ENV: 'true' }, (c) => c.fileEnv, false, true, true],
    ['supervise', { supervise: true }, { VAULTRUN_SUPERVISE: '0' }, (c) => c.supervise, true, false, false],
    [
      'passthrough',
      { passthrough: ['A'] },
      { VAULTRUN_PASSTHROUGH: 'B,C' },
      (c) => [...c.passthrough],
      ['A'],
      ['B', 'C'],
      [],
    ],
    [
      'fileEnvDirs',
      { fileEnvDirs: ['/flag'] },
      { VAULTRUN_FILE_ENV_DIRS: '/env' },
      (c) => c.fileEnvDirs,
      ['/flag'],
      ['/env'],
      ['/run/secrets', '/var/run/secrets', '/vault/secrets'],
    ],
    [
      'approleMount',
      { approleMount: 'flag-mount' },
      { VAULTRUN_APPROLE_MOUNT: 'env-mount' },
      (c) => c.auth.approleMount,
      'flag-mount',
      'env-mount',
      'approle',
    ],
    [
      'namespace',
      { namespace: 'ns-flag' },
      { VAULT_NAMESPACE: 'ns-env' },
      (c) => c.namespace,
      'ns-flag',
      'ns-env',
      undefined,
    ],
  ])('%s', (_label, flags, env, pick, fromFlag, fromEnv, fallback) => {
    expect(pick(load(flags, env))).toEqual(fromFlag);
    expect(pick(load({}, env))).toEqual(fromEnv);
    expect(pick(load({}, {}))).toEqual(fallback);
  });

  it('treats an empty environment value as unset', () => {
    expect(load({}, { VAULT_ADDR: '', VAULTRUN_WAIT: '' })).toMatchObject({
      addr: 'https://127.0.0.1:8200',
      waitMs: 30_000,
    });
    expect(load({}, { VAULT_ADDR: '', BAO_ADDR: 'http://bao:8200' }).addr).toBe('http://bao:8200');
  });

  it('treats an empty repeatable flag as unset', () => {
    expect([...load({ passthrough: [] }, { VAULTRUN_PASSTHROUGH: 'X' }).passthrough]).toEqual(['X']);
  });

  it('takes an error in a flag over a valid environment value, naming the flag', () => {
    const error = usage({ wait: 'soon' }, { VAULTRUN_WAIT: '10s' });
    expect(error.message).toMatch(/^--wait: /);
  });

  it('does not validate a value that a flag overrides', () => {
    expect(load({ wait: '1s' }, { VAULTRUN_WAIT: 'garbage' }).waitMs).toBe(1_000);
  });
});

describe('loadConfig: BAO_* spellings', () => {
  it.each<[Env, (c: Config) => unknown, unknown]>([
    [{ BAO_ADDR: 'http://bao:8200' }, (c) => c.addr, 'http://bao:8200'],
    [{ BAO_NAMESPACE: 'team' }, (c) => c.namespace, 'team'],
    [{ BAO_CACERT: '/ca.pem' }, (c) => c.caCert, '/ca.pem'],
    [{ BAO_CAPATH: '/cas' }, (c) => c.caPath, '/cas'],
    [{ BAO_SKIP_VERIFY: 'true' }, (c) => c.skipVerify, true],
    [{ BAO_TLS_SERVER_NAME: 'bao.local' }, (c) => c.tlsServerName, 'bao.local'],
    [{ BAO_CLIENT_TIMEOUT: '5s' }, (c) => c.clientTimeoutMs, 5_000],
    [{ BAO_TOKEN: 'hvs.bao' }, (c) => c.auth.token, 'hvs.bao'],
    [{ BAO_TOKEN_FILE: '/t' }, (c) => c.auth.tokenFile, '/t'],
    [{ BAO_ROLE_ID: 'rid' }, (c) => c.auth.roleId, 'rid'],
    [{ BAO_ROLE_ID_FILE: '/rid' }, (c) => c.auth.roleIdFile, '/rid'],
    [{ BAO_SECRET_ID: 'sid' }, (c) => c.auth.secretId, 'sid'],
    [{ BAO_SECRET_ID_FILE: '/sid' }, (c) => c.auth.secretIdFile, '/sid'],
    [
      { BAO_CLIENT_CERT: '/c.pem', BAO_CLIENT_KEY: '/k.pem' },
      (c) => [c.clientCert, c.clientKey],
      ['/c.pem', '/k.pem'],
    ],
  ])('%o', (env, pick, expected) => {
    expect(pick(load({}, env))).toEqual(expected);
  });

  it('prefers the VAULT_* spelling when both are set', () => {
    const config = load(
      {},
      { VAULT_ADDR: 'http://vault:1', BAO_ADDR: 'http://bao:2', VAULT_TOKEN: 'v', BAO_TOKEN: 'b' },
    );
    expect(config.addr).toBe('http://vault:1');
    expect(config.auth.token).toBe('v');
  });

  it('names the BAO_* variable a bad value came from', () => {
    expect(usage({}, { BAO_SKIP_VERIFY: 'maybe' }).message).toMatch(/^BAO_SKIP_VERIFY: /);
  });
});

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['2', 2_000],
    ['1.5', 1_500],
    ['0.5s', 500],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['1m500ms', 60_500],
    ['5m', 300_000],
    [' 10s ', 10_000],
    ['0', 0],
  ])('%j → %i ms', (text, ms) => {
    expect(parseDuration(text, 'X')).toBe(ms);
  });

  it.each([
    '',
    'abc',
    '10x',
    '1d',
    '-1s',
    '-5',
    '1 m',
    's',
    'ms',
    '10s garbage',
    'garbage 10s',
    '1,5s',
    '.5s',
    '1e3',
  ])('%j is rejected, naming where it came from', (text) => {
    const error = thrown(() => parseDuration(text, 'VAULTRUN_WAIT'));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^VAULTRUN_WAIT: expected a duration/);
  });

  it.each<[FlagValues, Env, RegExp]>([
    [{}, { VAULTRUN_WAIT: 'forever' }, /^VAULTRUN_WAIT: expected a duration/],
    [{ wait: '10 s' }, {}, /^--wait: expected a duration/],
    [{}, { VAULT_CLIENT_TIMEOUT: '1y' }, /^VAULT_CLIENT_TIMEOUT: expected a duration/],
    [{ clientTimeout: 'x' }, {}, /^--client-timeout: expected a duration/],
    [{}, { VAULTRUN_WAIT: '0' }, /^VAULTRUN_WAIT: must be greater than zero/],
    [{ wait: '0s' }, {}, /^--wait: must be greater than zero/],
    [{}, { VAULT_CLIENT_TIMEOUT: '0ms' }, /^VAULT_CLIENT_TIMEOUT: must be greater than zero/],
  ])('loadConfig(%o, %o) fails', (flags, env, message) => {
    expect(usage(flags, env).message).toMatch(message);
  });
});

describe('an address with a user name or password', () => {
  it.each(['http://admin:S3cretPw@vault:8200', 'https://apikey0123@vault:8200'])(
    'is refused as --addr %s (a command line is readable by every process), never printed',
    (addr) => {
      const error = usage({ addr }, {});
      expect(error.message).toMatch(/^--addr: holds a user name or password .*\/proc\/PID\/cmdline/);
      expect(error.hint).toMatch(/VAULT_ADDR/);
      expect(`${error.message} ${error.hint}`).not.toMatch(/S3cretPw|apikey0123/);
    },
  );

  it('is taken from VAULT_ADDR / BAO_ADDR as given', () => {
    expect(load({}, { VAULT_ADDR: 'http://admin:S3cretPw@vault:8200/' }).addr).toBe(
      'http://admin:S3cretPw@vault:8200',
    );
    expect(load({}, { BAO_ADDR: 'https://apikey0123@vault:8200' }).addr).toBe(
      'https://apikey0123@vault:8200',
    );
  });
});

describe('parseBool', () => {
  it.each(['true', '1', 'yes', 'y', 'on', 't', 'TRUE', 'Yes', ' on '])('%j → true', (text) => {
    expect(parseBool(text, 'X')).toBe(true);
  });
  it.each(['false', '0', 'no', 'n', 'off', 'f', 'FALSE', 'No'])('%j → false', (text) => {
    expect(parseBool(text, 'X')).toBe(false);
  });
  it.each(['', 'maybe', '2', 'enabled', 'truee', 'yes please'])('%j is rejected', (text) => {
    const error = thrown(() => parseBool(text, 'VAULTRUN_SUPERVISE'));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^VAULTRUN_SUPERVISE: expected true or false/);
  });

  it('names the variable in loadConfig', () => {
    expect(usage({}, { VAULTRUN_IGNORE_MISSING: 'sometimes' }).message).toMatch(/^VAULTRUN_IGNORE_MISSING: /);
    expect(usage({}, { VAULT_SKIP_VERIFY: 'sure' }).message).toMatch(/^VAULT_SKIP_VERIFY: /);
  });

  it('accepts booleans from flags as they are, and strings from flags parsed', () => {
    expect(load({ ignoreMissing: true }).ignoreMissing).toBe(true);
    expect(load({ ignoreMissing: 'yes' }).ignoreMissing).toBe(true);
    expect(usage({ ignoreMissing: 'perhaps' }, {}).message).toMatch(/^--ignore-missing: /);
  });
});

describe('lists', () => {
  it('splits environment values on commas, trimming and dropping empty items', () => {
    expect([...load({}, { VAULTRUN_PASSTHROUGH: ' A, B,,C ,' }).passthrough]).toEqual(['A', 'B', 'C']);
    expect(load({}, { VAULTRUN_ENV_FILE: '/a.env,/b.env' }).envFiles).toEqual(['/a.env', '/b.env']);
    expect([...load({}, { VAULTRUN_FILE_ENV_EXCLUDE: 'X_FILE,Y_FILE' }).fileEnvExclude]).toEqual([
      'X_FILE',
      'Y_FILE',
    ]);
  });

  it('takes repeated flags, each of which may hold a comma-separated list', () => {
    expect(load({ envFile: ['/a.env', '/b.env,/c.env'] }).envFiles).toEqual(['/a.env', '/b.env', '/c.env']);
    expect(load({ fileEnvDirs: ['/'] }).fileEnvDirs).toEqual(['/']);
  });

  it('keeps the order of env files (later ones win when merged)', () => {
    expect(load({}, { VAULTRUN_ENV_FILE: '/z.env,/a.env' }).envFiles).toEqual(['/z.env', '/a.env']);
  });
});

describe('isHttps', () => {
  it.each<[string, boolean]>([
    ['https://vault:8200', true],
    ['HTTPS://vault:8200', true],
    ['HtTpS://vault', true],
    ['http://vault:8200', false],
    ['Http://vault:8200', false],
    ['https', false],
    ['', false],
  ])('%j: %s', (addr, expected) => {
    expect(isHttps(addr)).toBe(expected);
  });
});

describe('URL validation', () => {
  it.each<[string, string]>([
    ['http://vault:8200', 'http://vault:8200'],
    ['https://vault.example.com:8200/', 'https://vault.example.com:8200'],
    ['https://vault.example.com///', 'https://vault.example.com'],
    ['http://127.0.0.1:8200', 'http://127.0.0.1:8200'],
    ['https://[::1]:8200', 'https://[::1]:8200'],
    ['  http://vault:8200/  ', 'http://vault:8200'],
    // The scheme in any case, kept as given (the check is written without /i: docs/performance.md).
    ['HTTPS://Vault.Example.com:8200', 'HTTPS://Vault.Example.com:8200'],
    ['Http://127.0.0.1:8200', 'Http://127.0.0.1:8200'],
  ])('%j → %j', (text, addr) => {
    expect(load({}, { VAULT_ADDR: text }).addr).toBe(addr);
  });

  it.each<[string, RegExp, RegExp]>([
    ['not a url', /^VAULT_ADDR: no scheme/, /expected e\.g\. https:\/\/vault\.example\.com:8200/],
    ['vault.example.com', /^VAULT_ADDR: no scheme/, /^write https:\/\/vault\.example\.com \(or http:\/\//],
    ['http//vault:8200', /^VAULT_ADDR: no scheme/, /https:\/\//],
    ['https://vault:8200:1', /^VAULT_ADDR: not a URL/, /https:\/\//],
    ['ftp://vault:21', /^VAULT_ADDR: unsupported scheme ftp:/, /https?:\/\//],
    ['unix:///run/vault.sock', /^VAULT_ADDR: unsupported scheme unix:/, /https?:\/\//],
    // Without a scheme, "host:port" would parse as a URL with the scheme "host:": it is named as missing.
    [
      'localhost:8200',
      /^VAULT_ADDR: no scheme/,
      /^write https:\/\/localhost:8200 \(or http:\/\/localhost:8200/,
    ],
    ['127.0.0.1:8200', /^VAULT_ADDR: no scheme/, /^write https:\/\/127\.0\.0\.1:8200/],
    // Vault's API prefix is added by vaultrun: an address ending in /v1 would ask for /v1/v1/….
    ['https://vault.example.com/v1', /^VAULT_ADDR: ends with \/v1/, /^remove \/v1 from the address/],
    ['http://127.0.0.1:8200/v1/', /^VAULT_ADDR: ends with \/v1/, /^remove \/v1/],
    // A query or fragment cannot survive /v1/PATH being appended (it was an INTERNAL error, exit 70, later).
    [
      'http://127.0.0.1:8200?x=1',
      /^VAULT_ADDR: has a query \(\?…\) or a fragment/,
      /^give scheme:\/\/host:port, e\.g\. http:\/\/127\.0\.0\.1:8200$/,
    ],
    ['http://127.0.0.1:8200#frag', /^VAULT_ADDR: has a query/, /e\.g\. http:\/\/127\.0\.0\.1:8200$/],
    ['http://127.0.0.1:8200/?', /^VAULT_ADDR: has a query/, /scheme:\/\/host:port/],
    ['https://vault:8200/prefix#', /^VAULT_ADDR: has a query/, /e\.g\. https:\/\/vault:8200$/],
  ])('%j is rejected', (text, message, hint) => {
    const error = usage({}, { VAULT_ADDR: text });
    expect(error.message).toMatch(message);
    expect(error.hint).toMatch(hint);
  });

  it('an address with a path prefix (a proxy) is kept, /v1 only refused at the end', () => {
    expect(load({}, { VAULT_ADDR: 'https://proxy.example.com/vault/' }).addr).toBe(
      'https://proxy.example.com/vault',
    );
    expect(load({}, { VAULT_ADDR: 'https://proxy.example.com/v1x' }).addr).toBe(
      'https://proxy.example.com/v1x',
    );
  });

  it('addrIsDefault says whether VAULT_ADDR / BAO_ADDR / --addr was given', () => {
    expect(load({}, {}).addrIsDefault).toBe(true);
    expect(load({}, { VAULT_ADDR: 'http://x:1' }).addrIsDefault).toBeUndefined();
    expect(load({}, { BAO_ADDR: 'http://x:1' }).addrIsDefault).toBeUndefined();
    expect(load({ addr: 'http://x:1' }, {}).addrIsDefault).toBeUndefined();
  });

  it.each<[Record<string, string>, Record<string, string>, string]>([
    [{ namespace: 'vault:secret/ns#name' }, {}, '--namespace'],
    [{}, { VAULT_NAMESPACE: '${vault:secret/ns#name}' }, 'VAULT_NAMESPACE'],
    [{}, { VAULT_TOKEN: 'vault:secret/token#value' }, 'VAULT_TOKEN'],
    [{}, { VAULT_ADDR: 'vault:secret/addr#url' }, 'VAULT_ADDR'],
  ])('a reference in a setting (%j %j) is refused, naming %s and not the value', (flags, env, origin) => {
    const error = usage(flags, env);
    expect(error.message).toBe(
      `${origin}: holds a Vault reference, but vaultrun's own settings are not resolved`,
    );
    expect(error.hint).toMatch(/^give the value itself; for credentials, use the \*_FILE settings/);
    expect(`${error.message} ${error.hint}`).not.toMatch(/secret\//);
  });

  it('names the flag when the URL came from --addr', () => {
    expect(usage({ addr: 'nope' }, {}).message).toMatch(/^--addr: no scheme/);
    expect(usage({ addr: 'http://vault:8200?x=1' }, {}).message).toMatch(/^--addr: has a query/);
  });

  it('a query or fragment in an address with a password: the address is not echoed', () => {
    const error = usage({}, { VAULT_ADDR: 'https://u:S3cretPw@vault:8200/?x' });
    expect(`${error.message} ${error.hint}`).not.toContain('S3cretPw');
  });

  it('every address loadConfig accepts builds request URLs (no INTERNAL error later)', () => {
    for (const text of [
      'http://vault:8200',
      'https://proxy.example.com/vault/',
      'http://vault:8200/a/../b',
      'http://vault:8200/a b',
      'http://vault:8200/%2e%2e/x',
      'http://vault:8200\\x',
      'https://u:p@vault:8200/x',
    ]) {
      const addr = load({}, { VAULT_ADDR: text }).addr;
      expect(() => requestUrl(addr, 'sys/health'), text).not.toThrow();
    }
  });
});

describe('--cluster-addr: each one scheme://host:port, checked at start', () => {
  it('keeps the origins', () => {
    expect(
      load({ clusterAddrs: ['https://vault-1:8200/', 'http://10.0.0.2:8200'] }, {}).clusterAddrs,
    ).toEqual(['https://vault-1:8200', 'http://10.0.0.2:8200']);
    expect(load({}, { VAULTRUN_CLUSTER_ADDRS: 'https://a:8200, https://b:8200' }).clusterAddrs).toEqual([
      'https://a:8200',
      'https://b:8200',
    ]);
  });

  it.each<[FlagValues, Env, RegExp, RegExp]>([
    [{ clusterAddrs: ['vault-2:8200'] }, {}, /^--cluster-addr: no scheme/, /^write https:\/\/vault-2:8200/],
    [{ clusterAddrs: ['ftp://x'] }, {}, /^--cluster-addr: unsupported scheme ftp:/, /http/],
    [{ clusterAddrs: ['notaurl'] }, {}, /^--cluster-addr: no scheme/, /https:\/\//],
    [{}, { VAULTRUN_CLUSTER_ADDRS: 'https://a:8200,b:8200' }, /^VAULTRUN_CLUSTER_ADDRS: no scheme/, /b:8200/],
    [
      { clusterAddrs: ['https://a:8200/vault'] },
      {},
      /^--cluster-addr: a cluster node address is scheme:\/\/host:port only/,
      /^write e\.g\. https:\/\/a:8200$/,
    ],
    [{ clusterAddrs: ['https://a:8200?x'] }, {}, /scheme:\/\/host:port only/, /https:\/\/a:8200/],
    [{}, { VAULTRUN_CLUSTER_ADDRS: 'https://u:pw@a:8200' }, /scheme:\/\/host:port only/, /https:\/\/a:8200/],
  ])('%j %j is refused', (flags, env, message, hint) => {
    const error = usage(flags, env);
    expect(error.message).toMatch(message);
    expect(error.hint).toMatch(hint);
  });
});

describe('mount paths (--approle-mount, --jwt-mount, --kubernetes-mount, --cert-mount, --transit-mount)', () => {
  it.each<[FlagValues, Env, (c: Config) => unknown, unknown]>([
    [{ approleMount: '/approle-ci/' }, {}, (c) => c.auth.approleMount, 'approle-ci'],
    [{ jwtMount: 'team/gitlab' }, {}, (c) => c.auth.jwtMount, 'team/gitlab'],
    [{}, { VAULTRUN_KUBERNETES_MOUNT: 'k8s-prod' }, (c) => c.auth.kubernetesMount, 'k8s-prod'],
    [{}, { VAULTRUN_CERT_MOUNT: '' }, (c) => c.auth.certMount, 'cert'],
    [{}, { VAULT_TRANSIT_PATH: 'transit/' }, (c) => c.transitMount, 'transit'],
    // An auth method's mount follows auth/: the reserved names of references do not apply to it.
    [{ approleMount: 'identity' }, {}, (c) => c.auth.approleMount, 'identity'],
  ])('%j %j', (flags, env, pick, expected) => {
    expect(pick(load(flags, env))).toEqual(expected);
  });

  it.each<[FlagValues, Env, RegExp]>([
    [
      { approleMount: '../sys' },
      {},
      /^--approle-mount: invalid mount path: path has an empty, '\.' or '\.\.' segment \(segment 1\)/,
    ],
    [{ approleMount: 'a?b' }, {}, /^--approle-mount: invalid mount path: path segment 1 contains '\?'/],
    [{ approleMount: 'a#b' }, {}, /^--approle-mount: invalid mount path: path segment 1 contains '#'/],
    [{ approleMount: 'a%2fb' }, {}, /'%'/],
    [{ approleMount: 'a\\b' }, {}, /a backslash/],
    [{ approleMount: 'a\nb' }, {}, /U\+000A/],
    [{ approleMount: 'a//b' }, {}, /empty, '\.' or '\.\.' segment \(segment 2\)/],
    [{ approleMount: '' }, {}, /^--approle-mount: is empty: a mount path is needed$/],
    [{ jwtMount: '' }, {}, /^--jwt-mount: is empty/],
    [{ kubernetesMount: '/' }, {}, /^--kubernetes-mount: is empty/],
    [{ certMount: '.' }, {}, /^--cert-mount: invalid mount path/],
    [
      { jwtMount: 'auth/jwt' },
      {},
      /^--jwt-mount: invalid mount path: it starts with auth\/, which vaultrun adds itself/,
    ],
    [{}, { VAULTRUN_APPROLE_MOUNT: 'x/../y' }, /^VAULTRUN_APPROLE_MOUNT: invalid mount path/],
    [{ transitMount: '' }, {}, /^--transit-mount: is empty/],
    [
      {},
      { VAULT_TRANSIT_PATH: 'sys' },
      /^VAULT_TRANSIT_PATH: invalid mount path: path is in Vault's reserved sys\/ mount/,
    ],
  ])('%j %j is refused (64)', (flags, env, message) => {
    const error = usage(flags, env);
    expect(error.message).toMatch(message);
    expect(error.hint).toMatch(/^give the path the .*(auth method|transit engine) is mounted at/);
  });

  it('the hint names the method and its default', () => {
    expect(usage({ approleMount: '' }, {}).hint).toBe(
      'give the path the AppRole auth method is mounted at, without auth/ (vault auth list shows them), e.g. approle; or leave the setting out for the default',
    );
  });
});

describe('--user: an empty value is refused (it would run the command as root)', () => {
  it.each<[FlagValues, Env, string]>([
    [{ user: '' }, {}, '--user'],
    [{ user: '  ' }, {}, '--user'],
    [{}, { VAULTRUN_USER: '' }, 'VAULTRUN_USER'],
  ])('%j %j', (flags, env, origin) => {
    const error = usage(flags, env);
    expect(error.message).toBe(`${origin}: is empty`);
    expect(error.hint).toBe('give a user name or UID[:GID], or leave the setting out');
  });

  it('unset, or given, as before', () => {
    expect(Object.hasOwn(load({}, {}), 'user')).toBe(false);
    expect(load({}, { VAULTRUN_USER: 'app:app' }).user).toBe('app:app');
    expect(load({ user: '1000' }, { VAULTRUN_USER: '' }).user).toBe('1000');
  });
});

describe('choices and numbers', () => {
  it.each<[FlagValues, Env, RegExp]>([
    [
      {},
      { VAULTRUN_LOG_LEVEL: 'verbose' },
      /^VAULTRUN_LOG_LEVEL: expected one of debug, info, warn, error, silent/,
    ],
    [{ logFormat: 'yaml' }, {}, /^--log-format: expected one of text, json, got "yaml"/],
    [
      {},
      { VAULTRUN_AUTH_METHOD: 'no-such-method' },
      /^VAULTRUN_AUTH_METHOD: expected one of token, approle\b/,
    ],
    [{}, { VAULTRUN_LOG_LEVEL: 'INFO' }, /^VAULTRUN_LOG_LEVEL: /],
    [{}, { VAULTRUN_CONCURRENCY: '0' }, /^VAULTRUN_CONCURRENCY: expected a whole number from 1 to 256/],
    [{}, { VAULTRUN_CONCURRENCY: '257' }, /^VAULTRUN_CONCURRENCY: /],
    [{}, { VAULTRUN_CONCURRENCY: '-1' }, /^VAULTRUN_CONCURRENCY: /],
    [{}, { VAULTRUN_CONCURRENCY: '1.5' }, /^VAULTRUN_CONCURRENCY: /],
    [{ concurrency: 'many' }, {}, /^--concurrency: /],
  ])('loadConfig(%o, %o) fails', (flags, env, message) => {
    expect(usage(flags, env).message).toMatch(message);
  });

  it.each<[string, number]>([
    ['1', 1],
    ['256', 256],
    [' 16 ', 16],
  ])('concurrency %j → %i', (text, n) => {
    expect(load({}, { VAULTRUN_CONCURRENCY: text }).concurrency).toBe(n);
  });

  it.each(['token', 'approle'])('auth method %s', (method) => {
    expect(load({}, { VAULTRUN_AUTH_METHOD: method }).auth.method).toBe(method);
  });
});

describe('conflicts', () => {
  it.each<[string, FlagValues, Env, RegExp]>([
    [
      'token and token file',
      {},
      { VAULT_TOKEN: 'hvs.x', VAULT_TOKEN_FILE: '/t' },
      /VAULT_TOKEN \/ VAULT_TOKEN_FILE/,
    ],
    [
      'token and --token-file',
      { tokenFile: '/t' },
      { VAULT_TOKEN: 'hvs.x' },
      /VAULT_TOKEN \/ VAULT_TOKEN_FILE/,
    ],
    [
      'BAO token and token file',
      {},
      { BAO_TOKEN: 'hvs.x', BAO_TOKEN_FILE: '/t' },
      /VAULT_TOKEN \/ VAULT_TOKEN_FILE/,
    ],
    [
      'role_id and its file',
      {},
      { VAULT_ROLE_ID: 'r', VAULT_ROLE_ID_FILE: '/r' },
      /VAULT_ROLE_ID \/ VAULT_ROLE_ID_FILE/,
    ],
    [
      'secret_id and its file',
      {},
      { VAULT_SECRET_ID: 's', VAULT_SECRET_ID_FILE: '/s' },
      /VAULT_SECRET_ID \/ VAULT_SECRET_ID_FILE/,
    ],
    [
      'client cert without key',
      {},
      { VAULT_CLIENT_CERT: '/c.pem' },
      /VAULT_CLIENT_CERT \/ VAULT_CLIENT_KEY: set both/,
    ],
    [
      'client key without cert',
      { clientKey: '/k.pem' },
      {},
      /VAULT_CLIENT_CERT \/ VAULT_CLIENT_KEY: set both/,
    ],
    [
      'delete-secret-id-file alone',
      { deleteSecretIdFile: true },
      {},
      /^--delete-secret-id-file: needs VAULT_SECRET_ID_FILE/,
    ],
    [
      'delete-secret-id-file with a secret_id in the environment',
      {},
      { VAULTRUN_DELETE_SECRET_ID_FILE: 'true', VAULT_SECRET_ID: 's' },
      /delete-secret-id-file: needs VAULT_SECRET_ID_FILE/,
    ],
  ])('%s → USAGE', (_label, flags, env, message) => {
    expect(usage(flags, env).message).toMatch(message);
  });

  it('never puts a credential into the message', () => {
    const error = usage({}, { VAULT_TOKEN: 'hvs.SUPER-SECRET-TOKEN', VAULT_TOKEN_FILE: '/t' });
    expect(`${error.message} ${error.hint ?? ''}`).not.toContain('SUPER-SECRET');
  });

  it('accepts the valid combinations', () => {
    expect(load({}, { VAULT_CLIENT_CERT: '/c.pem', VAULT_CLIENT_KEY: '/k.pem' })).toMatchObject({
      clientCert: '/c.pem',
      clientKey: '/k.pem',
    });
    expect(load({ deleteSecretIdFile: true, secretIdFile: '/s' }).auth).toMatchObject({
      secretIdFile: '/s',
      deleteSecretIdFile: true,
    });
    expect(load({}, { VAULT_ROLE_ID: 'r', VAULT_SECRET_ID_FILE: '/s' }).auth).toMatchObject({
      roleId: 'r',
      secretIdFile: '/s',
    });
  });
});

describe('loadConfig: what to do on a change', () => {
  it.each<[Env, (c: Config) => unknown, unknown]>([
    [{}, (c) => c.onChange, { action: 'restart' }],
    [{ VAULTRUN_ON_CHANGE: 'exit' }, (c) => c.onChange, { action: 'exit' }],
    [{ VAULTRUN_ON_CHANGE: 'none' }, (c) => c.onChange, { action: 'none' }],
    [{ VAULTRUN_ON_CHANGE: 'signal:hup' }, (c) => c.onChange, { action: 'signal', signal: 'SIGHUP' }],
    [{}, (c) => [c.changeHook, c.pin], [undefined, new Set()]],
    [{ VAULTRUN_CHANGE_HOOK: ' /hooks/reload ' }, (c) => c.changeHook, '/hooks/reload'],
    [{ VAULTRUN_PIN: 'SECRET_KEY, OTHER' }, (c) => c.pin, new Set(['SECRET_KEY', 'OTHER'])],
    [{}, (c) => c.childToken, { ttlS: 3600 }],
    [
      { VAULTRUN_CHILD_TOKEN_TTL: '10m', VAULTRUN_CHILD_TOKEN_POLICIES: 'app,default' },
      (c) => c.childToken,
      { ttlS: 600, policies: ['app', 'default'] },
    ],
  ])('%o', (env, pick, expected) => {
    expect(pick(load({}, env))).toEqual(expected);
  });

  it('names the choices when --on-change is wrong', () => {
    expect(usage({ onChange: 'quit' }, {}).message).toMatch(/restart, signal:SIGNAL, exit or none/);
  });
});

describe('mount defaults', () => {
  it('every mount setting has a default that is a valid mount path as it is (loadConfig takes it unchecked)', () => {
    const mounts = (SETTINGS as readonly Setting[]).filter((s) => s.kind === 'mount');
    expect(mounts.length).toBeGreaterThanOrEqual(5);
    for (const setting of mounts) {
      expect(setting.default, setting.key).toBeDefined();
      expect(parseMount(setting.default as string, 'default', setting)).toBe(setting.default);
    }
  });
});
