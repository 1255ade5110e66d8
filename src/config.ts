import { constants as osConstants } from 'node:os';
import { NamePatterns } from './env/names.js';
import { VaultrunError } from './errors.js';
import type { LogFormat, LogLevel } from './log.js';
import { type ImportSpec, parseImports } from './refs/imports.js';
import { isLoginReference } from './refs/login.js';
import { pathProblem, segmentsProblem } from './refs/path.js';
import { SETTINGS, type Setting, type SettingKey } from './settings.js';
import { hasUserinfo } from './vault/address.js';
import type { AuthMethod, AuthSettings } from './vault/auth-types.js';
import type { Consistency } from './vault/client.js';

/**
 * Flags + environment → validated options. Pure (no files are read here), so that bad input fails before
 * anything else happens and the messages name the flag or variable it came from.
 */
export type FlagValues = Partial<Record<SettingKey, string | boolean | string[] | undefined>>;

export interface Config {
  addr: string;
  /** Neither VAULT_ADDR / BAO_ADDR nor --addr was given: `addr` is the default (warned about, named in errors). */
  addrIsDefault?: true;
  namespace?: string;
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  skipVerify: boolean;
  tlsServerName?: string;
  clientTimeoutMs: number;
  auth: AuthSettings;
  envFiles: string[];
  envFileOverride: boolean;
  /** VAULTRUN_PASSTHROUGH: exact names and PREFIX* patterns (env/names.ts). */
  passthrough: NamePatterns;
  ignoreMissing: boolean;
  /** Bulk imports (--from-path), parsed: every key of these secrets becomes a variable. */
  fromPaths: ImportSpec[];
  fileEnv: boolean;
  /** --transit-key / --transit-mount: what decrypts vault:v1:… ciphertexts. */
  transitKey?: string;
  transitMount: string;
  fileEnvExclude: Set<string>;
  fileEnvDirs: string[];
  runtimeDir?: string;
  supervise: boolean;
  /** --mask: resolved secrets in the command's stdout/stderr are replaced (resident mode only). */
  mask: boolean;
  /** undefined: decided by whether a secret has a lease. */
  watch?: boolean;
  pollIntervalMs: number;
  onChange:
    | { action: 'restart' }
    | { action: 'signal'; signal: NodeJS.Signals }
    | { action: 'exit' }
    | { action: 'none' };
  /** --change-hook: run on each change before the action (names of the changed variables, never values). */
  changeHook?: string;
  /** --pin: variables that keep their start value under a running command; a change to them alone does nothing. */
  pin: Set<string>;
  /** NAME=vault:login: the child token given to the command. */
  childToken: { ttlS: number; policies?: string[] };
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  debounceMs: number;
  splayMs: number;
  leaseRefresh: number;
  onLeaseExpiry: 'keep' | 'stop';
  revoke: boolean;
  user?: string;
  waitMs: number;
  consistency: Consistency;
  clusterAddrs: string[];
  concurrency: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

interface Raw {
  value: string | boolean | string[];
  /** "--wait" or "VAULTRUN_WAIT" or "default". */
  origin: string;
}

function rawValue(
  setting: Setting,
  flags: FlagValues,
  env: Readonly<Record<string, string | undefined>>,
): Raw | undefined {
  const flag = flags[setting.key as SettingKey];
  if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
    return { value: flag, origin: `--${setting.flag ?? setting.key}` };
  }
  for (const name of setting.env) {
    const v = env[name];
    // --user: an empty value would run the command as root (as vaultrun); it fails closed instead of counting
    // as unset.
    if (setting.key === 'user' && v === '') return { value: v, origin: name };
    // VAULT_TOKEN=vault:login asks for a token for the command (refs/login.ts): it is not our credential.
    if (setting.key === 'token' && isLoginReference(v)) continue;
    if (v !== undefined && v !== '') return { value: v, origin: name };
  }
  return setting.default === undefined ? undefined : { value: setting.default, origin: 'default' };
}

/** A whole-value or inline reference: `vault:…` or `${vault:…`. */
const LOOKS_LIKE_REFERENCE = /^\s*vault:|\$\{vault:/;

/** The hint for an address without a scheme: the fix, when the text is a plain host[:port]. */
function hostHint(text: string): string {
  const host = text.trim();
  return /^[A-Za-z0-9.[\]:-]+(\/[^\s]*)?$/.test(host)
    ? `write https://${host} (or http://${host} if Vault has no TLS)`
    : 'expected e.g. https://vault.example.com:8200';
}

function bad(origin: string, problem: string, hint?: string): VaultrunError {
  return new VaultrunError('USAGE', `${origin}: ${problem}`, hint ? { hint } : {});
}

export function parseBool(text: string, origin: string): boolean {
  const t = text.trim().toLowerCase();
  if (['1', 't', 'true', 'yes', 'y', 'on'].includes(t)) return true;
  if (['0', 'f', 'false', 'no', 'n', 'off'].includes(t)) return false;
  throw bad(origin, `expected true or false, got "${text}"`);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "1m30s", "500ms", "2h"; a plain number is seconds (as VAULT_CLIENT_TIMEOUT). */
export function parseDuration(text: string, origin: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw bad(origin, `expected a duration such as 30s, 1m30s, 500ms or a number of seconds, got "${text}"`);
  }
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (UNIT_MS[p[2] ?? 's'] ?? 1000), 0));
}

function asList(value: string | boolean | string[]): string[] {
  const items = Array.isArray(value) ? value : [String(value)];
  return items
    .flatMap((i) => i.split(','))
    .map((i) => i.trim())
    .filter((i) => i !== '');
}

/** "SIGHUP", "HUP" or "hup" → "SIGHUP"; a signal Node knows. */
export function parseSignal(text: string, origin: string): NodeJS.Signals {
  const name = text.trim().toUpperCase();
  const full = (name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals;
  if (!(full in osConstants.signals) || full === 'SIGKILL' || full === 'SIGSTOP') {
    throw bad(origin, `unknown or unusable signal "${text}"`, 'use a name such as SIGTERM, SIGHUP, SIGUSR1');
  }
  return full;
}

function parseOnChange(text: string): Config['onChange'] {
  if (text === 'restart' || text === 'exit' || text === 'none') return { action: text };
  if (text.startsWith('signal:')) {
    return {
      action: 'signal',
      signal: parseSignal(text.slice('signal:'.length), '--on-change / VAULTRUN_ON_CHANGE'),
    };
  }
  throw bad(
    '--on-change / VAULTRUN_ON_CHANGE',
    `expected restart, signal:SIGNAL, exit or none, got "${text}"`,
  );
}

/**
 * Whether a configured address is an https one. The address is kept as given, its scheme in any case
 * (`HTTPS://…` is valid): every place that asks goes through here. Plain string work, no case-insensitive
 * regular expression (one costs a start more to compile, docs/performance.md).
 */
export function isHttps(addr: string): boolean {
  return addr.slice(0, 6).toLowerCase() === 'https:';
}

/**
 * A Vault address (VAULT_ADDR, --addr) or a cluster node's address (--cluster-addr): http(s)://host[:port],
 * the Vault address with an optional path prefix (a proxy's), never a query or a fragment — every request URL
 * is built by appending /v1/PATH, which neither could survive.
 */
function parseAddress(text: string, origin: string, what: 'vault' | 'node'): string {
  let url: URL;
  // "vault.example.com:8200" parses as a URL whose scheme is "vault.example.com:": say what is missing.
  // (No /i: a case-insensitive regular expression costs a start more to compile; [A-Za-z] is what
  // [a-z] with /i matches.)
  if (!/^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) {
    throw bad(origin, 'no scheme: the address must start with https:// or http://', hostHint(text));
  }
  try {
    url = new URL(text);
  } catch {
    throw bad(origin, 'not a URL', 'expected e.g. https://vault.example.com:8200');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw bad(origin, `unsupported scheme ${url.protocol}`, 'use http:// or https://');
  }
  const example = `${url.protocol}//${url.host}`;
  if (what === 'node') {
    // Only the origin is compared with sys/leader's answer (vault/consistency.ts): anything else is a mistake.
    if (
      hasUserinfo(text) ||
      url.search !== '' ||
      url.hash !== '' ||
      /[?#]/.test(text) ||
      url.pathname !== '/'
    ) {
      throw bad(
        origin,
        'a cluster node address is scheme://host:port only (no user name, path, query or fragment)',
        `write e.g. ${example}`,
      );
    }
    return url.origin;
  }
  // Credentials are never flags: every process can read a command line (ps, /proc/PID/cmdline).
  if (origin.startsWith('--') && hasUserinfo(text)) {
    throw bad(
      origin,
      'holds a user name or password (user:password@), which every process could read in the command line (ps, /proc/PID/cmdline)',
      'put the address in VAULT_ADDR (or BAO_ADDR): vaultrun hides it from /proc/PID/environ and never passes it to the command',
    );
  }
  // '?' or '#' anywhere, even with nothing after it (new URL drops an empty query), and never the text itself
  // (the address may hold a password).
  if (/[?#]/.test(text)) {
    throw bad(
      origin,
      'has a query (?…) or a fragment (#…), which a Vault address cannot have: vaultrun adds /v1/PATH to it for every request',
      `give scheme://host:port, e.g. ${example}`,
    );
  }
  if (/\/v1\/*$/.test(url.pathname)) {
    throw bad(
      origin,
      'ends with /v1, but vaultrun adds /v1/ to every request itself',
      'remove /v1 from the address, e.g. https://vault.example.com:8200',
    );
  }
  // new URL() ignores surrounding whitespace; the address we use must not keep it either.
  return text.trim().replace(/\/+$/, '');
}

const AUTH_METHOD_OF_MOUNT: Partial<Record<string, string>> = {
  approleMount: 'AppRole',
  jwtMount: 'JWT/OIDC',
  kubernetesMount: 'Kubernetes',
  certMount: 'TLS certificate',
};

/**
 * A mount path setting (--approle-mount, --jwt-mount, --kubernetes-mount, --cert-mount, --transit-mount): a
 * Vault path in the reference grammar (refs/path.ts), leading and trailing '/' dropped (as the Vault CLI's
 * -path), never empty. An auth method's mount follows auth/, which vaultrun writes itself.
 */
export function parseMount(text: string, origin: string, setting: Pick<Setting, 'key' | 'default'>): string {
  const mount = text.trim().replace(/^\/+|\/+$/g, '');
  const method = AUTH_METHOD_OF_MOUNT[setting.key];
  const hint =
    method === undefined
      ? 'give the path the transit engine is mounted at (vault secrets list shows them), e.g. transit'
      : `give the path the ${method} auth method is mounted at, without auth/ (vault auth list shows them), e.g. ${setting.default ?? ''}; or leave the setting out for the default`;
  if (mount === '') throw bad(origin, 'is empty: a mount path is needed', hint);
  const problem = method === undefined ? pathProblem(mount) : segmentsProblem(mount);
  if (problem) throw bad(origin, `invalid mount path: ${problem}`, hint);
  if (method !== undefined && mount.split('/')[0]?.toLowerCase() === 'auth') {
    throw bad(origin, 'invalid mount path: it starts with auth/, which vaultrun adds itself', hint);
  }
  return mount;
}

export function loadConfig(flags: FlagValues, env: Readonly<Record<string, string | undefined>>): Config {
  const values = new Map<string, unknown>();
  const origins = new Map<string, string>();
  for (const setting of SETTINGS as readonly Setting[]) {
    const raw = rawValue(setting, flags, env);
    if (raw === undefined) continue;
    const { value, origin } = raw;
    const text = Array.isArray(value) ? value.join(',') : String(value);
    let parsed: unknown;
    if (setting.kind !== 'bool' && LOOKS_LIKE_REFERENCE.test(text)) {
      // Never the value (VAULT_TOKEN is a setting too): only where it came from.
      throw bad(
        origin,
        "holds a Vault reference, but vaultrun's own settings are not resolved",
        'give the value itself; for credentials, use the *_FILE settings (e.g. VAULT_TOKEN_FILE) to read them from a file',
      );
    }
    switch (setting.kind) {
      case 'bool':
        parsed = typeof value === 'boolean' ? value : parseBool(text, origin);
        break;
      case 'duration': {
        parsed = parseDuration(text, origin);
        if ((parsed as number) <= 0 && !(setting.allowZero && parsed === 0)) {
          throw bad(origin, 'must be greater than zero');
        }
        break;
      }
      case 'fraction': {
        const n = Number(text);
        if (!/^\s*(0?\.\d+|0|1)(\.0*)?\s*$/.test(text) || !(n > 0 && n < 1)) {
          throw bad(origin, `expected a fraction between 0 and 1 (exclusive), such as 0.67, got "${text}"`);
        }
        parsed = n;
        break;
      }
      case 'int': {
        if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > 256) {
          throw bad(origin, `expected a whole number from 1 to 256, got "${text}"`);
        }
        parsed = Number(text);
        break;
      }
      case 'list':
        parsed = asList(value);
        // --cluster-addr: each one an address, checked now (vault/consistency.ts only compares origins).
        if (setting.key === 'clusterAddrs')
          parsed = asList(value).map((a) => parseAddress(a, origin, 'node'));
        break;
      case 'url':
        parsed = parseAddress(text, origin, 'vault');
        break;
      case 'mount':
        // A default is a valid mount path already: checked by a test, not at every start.
        parsed = origin === 'default' ? text : parseMount(text, origin, setting);
        break;
      default: {
        if (setting.choices && !setting.choices.includes(text)) {
          throw bad(origin, `expected one of ${setting.choices.join(', ')}, got "${text}"`);
        }
        parsed = text;
      }
    }
    if (setting.key === 'user' && text.trim() === '') {
      throw bad(origin, 'is empty', `give a user name or UID[:GID], or leave the setting out`);
    }
    values.set(setting.key, parsed);
    origins.set(setting.key, origin);
  }
  const get = <T>(key: SettingKey): T => values.get(key) as T;
  const opt = <K extends string, T>(key: K, v: T | undefined): { [P in K]?: T } =>
    (v === undefined ? {} : { [key]: v }) as { [P in K]?: T };

  if (Boolean(get('clientCert')) !== Boolean(get('clientKey'))) {
    throw bad('VAULT_CLIENT_CERT / VAULT_CLIENT_KEY', 'set both or neither');
  }
  const auth: AuthSettings = {
    ...opt('method', get<AuthMethod | undefined>('authMethod')),
    ...opt('token', get<string | undefined>('token')),
    ...opt('tokenFile', get<string | undefined>('tokenFile')),
    ...opt('roleId', get<string | undefined>('roleId')),
    ...opt('roleIdFile', get<string | undefined>('roleIdFile')),
    ...opt('secretId', get<string | undefined>('secretId')),
    ...opt('secretIdFile', get<string | undefined>('secretIdFile')),
    approleMount: get<string>('approleMount'),
    secretIdWrapped: get<boolean>('secretIdWrapped'),
    deleteSecretIdFile: get<boolean>('deleteSecretIdFile'),
    ...opt('jwt', get<string | undefined>('jwt')),
    ...opt('jwtFile', get<string | undefined>('jwtFile')),
    ...opt('jwtRole', get<string | undefined>('jwtRole')),
    jwtMount: get<string>('jwtMount'),
    ...opt('kubernetesRole', get<string | undefined>('kubernetesRole')),
    kubernetesMount: get<string>('kubernetesMount'),
    kubernetesTokenFile: get<string>('kubernetesTokenFile'),
    ...opt('certRole', get<string | undefined>('certRole')),
    certMount: get<string>('certMount'),
  };
  if (auth.jwt && auth.jwtFile) throw bad('VAULTRUN_JWT / VAULTRUN_JWT_FILE', 'set one of them, not both');
  if (get<boolean>('mask') && !get<boolean>('supervise') && get<boolean | undefined>('watch') !== true) {
    throw bad(
      flags.mask !== undefined ? '--mask' : 'VAULTRUN_MASK',
      'needs --supervise: without it vaultrun replaces itself with the command and cannot filter its output',
      'add --supervise (VAULTRUN_SUPERVISE=true), or remove --mask',
    );
  }
  if (auth.token && auth.tokenFile) throw bad('VAULT_TOKEN / VAULT_TOKEN_FILE', 'set one of them, not both');
  if (auth.roleId && auth.roleIdFile)
    throw bad('VAULT_ROLE_ID / VAULT_ROLE_ID_FILE', 'set one of them, not both');
  if (auth.secretId && auth.secretIdFile)
    throw bad('VAULT_SECRET_ID / VAULT_SECRET_ID_FILE', 'set one of them, not both');
  if (auth.deleteSecretIdFile && !auth.secretIdFile) {
    throw bad('--delete-secret-id-file', 'needs VAULT_SECRET_ID_FILE / --secret-id-file');
  }
  return {
    addr: get<string>('addr'),
    ...(origins.get('addr') === 'default' ? { addrIsDefault: true as const } : {}),
    ...opt('namespace', get<string | undefined>('namespace')),
    ...opt('caCert', get<string | undefined>('caCert')),
    ...opt('caPath', get<string | undefined>('caPath')),
    ...opt('clientCert', get<string | undefined>('clientCert')),
    ...opt('clientKey', get<string | undefined>('clientKey')),
    skipVerify: get<boolean>('skipVerify'),
    ...opt('tlsServerName', get<string | undefined>('tlsServerName')),
    clientTimeoutMs: get<number>('clientTimeout'),
    auth,
    envFiles: get<string[] | undefined>('envFile') ?? [],
    envFileOverride: get<boolean>('envFileOverride'),
    passthrough: new NamePatterns(get<string[] | undefined>('passthrough') ?? []),
    ignoreMissing: get<boolean>('ignoreMissing'),
    fromPaths: parseImports(get<string[] | undefined>('fromPath') ?? []),
    fileEnv: get<boolean>('fileEnv'),
    ...opt('transitKey', get<string | undefined>('transitKey')),
    transitMount: get<string>('transitMount'),
    fileEnvExclude: new Set(get<string[] | undefined>('fileEnvExclude') ?? []),
    fileEnvDirs: get<string[] | undefined>('fileEnvDirs') ?? [],
    ...opt('runtimeDir', get<string | undefined>('runtimeDir')),
    supervise: get<boolean>('supervise'),
    mask: get<boolean>('mask'),
    ...opt('watch', get<boolean | undefined>('watch')),
    pollIntervalMs: get<number>('pollInterval'),
    onChange: parseOnChange(get<string>('onChange')),
    ...opt('changeHook', get<string | undefined>('changeHook')?.trim() || undefined),
    pin: new Set(get<string[] | undefined>('pin') ?? []),
    childToken: {
      ttlS: Math.max(1, Math.round(get<number>('childTokenTtl') / 1000)),
      ...opt('policies', get<string[] | undefined>('childTokenPolicies')),
    },
    stopSignal: parseSignal(get<string>('stopSignal'), '--stop-signal / VAULTRUN_STOP_SIGNAL'),
    stopTimeoutMs: get<number>('stopTimeout'),
    debounceMs: get<number>('debounce'),
    splayMs: get<number>('splay'),
    leaseRefresh: get<number>('leaseRefresh'),
    onLeaseExpiry: get<'keep' | 'stop'>('onLeaseExpiry'),
    revoke: get<boolean>('revoke'),
    ...opt('user', get<string | undefined>('user')),
    waitMs: get<number>('wait'),
    consistency: get<Consistency>('consistency'),
    clusterAddrs: get<string[] | undefined>('clusterAddrs') ?? [],
    concurrency: get<number>('concurrency'),
    logLevel: get<LogLevel>('logLevel'),
    logFormat: get<LogFormat>('logFormat'),
  };
}
