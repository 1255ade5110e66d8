import { ADDRESS_VARIABLES, hasUserinfo } from './vault/address.js';

/**
 * Every setting, once: its flag, its environment names (Vault CLI conventions, BAO_* spellings, our own
 * VAULTRUN_*), its type, default and help. The CLI builds its flags and `--help` from this table, the config
 * loader validates against it, and the scrubber knows from it what is ours. Flag beats env beats default.
 *
 * Credentials (tokens, role_id, secret_id) have no flag on purpose: a command line is visible to every user
 * of the machine in `ps`. Their `_FILE` forms have flags.
 */
export type Kind = 'string' | 'bool' | 'duration' | 'int' | 'list' | 'path' | 'url' | 'fraction' | 'mount';

export interface Setting {
  key: string;
  /** Long flag without the dashes; undefined for env-only credentials. */
  flag?: string;
  env: readonly string[];
  kind: Kind;
  choices?: readonly string[];
  default?: string;
  /** A credential: masked in logs, always scrubbed from the child, never a flag. */
  secret?: boolean;
  /** Repeatable flag (lists). */
  repeatable?: boolean;
  /** Durations: zero is allowed (e.g. "no splay"). */
  allowZero?: boolean;
  help: string;
}

export const SETTINGS = [
  {
    key: 'addr',
    flag: 'addr',
    env: ['VAULT_ADDR', 'BAO_ADDR'],
    kind: 'url',
    default: 'https://127.0.0.1:8200',
    help: 'Vault / OpenBao address (with user:password@ for a proxy: a credential, environment only)',
  },
  {
    key: 'namespace',
    flag: 'namespace',
    env: ['VAULT_NAMESPACE', 'BAO_NAMESPACE'],
    kind: 'string',
    help: 'Vault Enterprise / OpenBao namespace',
  },
  {
    key: 'caCert',
    flag: 'ca-cert',
    env: ['VAULT_CACERT', 'BAO_CACERT'],
    kind: 'path',
    help: 'PEM file of the CA that signed the server certificate',
  },
  {
    key: 'caPath',
    flag: 'ca-path',
    env: ['VAULT_CAPATH', 'BAO_CAPATH'],
    kind: 'path',
    help: 'directory of PEM CA certificates',
  },
  {
    key: 'clientCert',
    flag: 'client-cert',
    env: ['VAULT_CLIENT_CERT', 'BAO_CLIENT_CERT'],
    kind: 'path',
    help: 'PEM client certificate for TLS',
  },
  {
    key: 'clientKey',
    flag: 'client-key',
    env: ['VAULT_CLIENT_KEY', 'BAO_CLIENT_KEY'],
    kind: 'path',
    secret: true,
    help: 'PEM private key of the client certificate',
  },
  {
    key: 'skipVerify',
    flag: 'tls-skip-verify',
    env: ['VAULT_SKIP_VERIFY', 'BAO_SKIP_VERIFY'],
    kind: 'bool',
    default: 'false',
    help: 'do not verify the server certificate (insecure; for tests)',
  },
  {
    key: 'tlsServerName',
    flag: 'tls-server-name',
    env: ['VAULT_TLS_SERVER_NAME', 'BAO_TLS_SERVER_NAME'],
    kind: 'string',
    help: 'name to use as SNI and to verify the certificate against',
  },
  {
    key: 'clientTimeout',
    flag: 'client-timeout',
    env: ['VAULT_CLIENT_TIMEOUT', 'BAO_CLIENT_TIMEOUT'],
    kind: 'duration',
    default: '60s',
    help: 'time limit of one HTTP request, connecting to last byte (a number is seconds); never past --wait in a start',
  },
  {
    key: 'authMethod',
    flag: 'auth-method',
    env: ['VAULTRUN_AUTH_METHOD'],
    kind: 'string',
    choices: ['token', 'approle', 'jwt', 'kubernetes', 'cert'],
    help: 'login method (default: inferred, see docs/login.md)',
  },
  {
    key: 'token',
    env: ['VAULT_TOKEN', 'BAO_TOKEN'],
    kind: 'string',
    secret: true,
    help: 'Vault token (environment only)',
  },
  {
    key: 'tokenFile',
    flag: 'token-file',
    env: ['VAULT_TOKEN_FILE', 'BAO_TOKEN_FILE'],
    kind: 'path',
    secret: true,
    help: 'file holding a Vault token',
  },
  {
    key: 'roleId',
    env: ['VAULT_ROLE_ID', 'BAO_ROLE_ID'],
    kind: 'string',
    secret: true,
    help: 'AppRole role_id (environment only)',
  },
  {
    key: 'roleIdFile',
    flag: 'role-id-file',
    env: ['VAULT_ROLE_ID_FILE', 'BAO_ROLE_ID_FILE'],
    kind: 'path',
    secret: true,
    help: 'file holding the AppRole role_id',
  },
  {
    key: 'secretId',
    env: ['VAULT_SECRET_ID', 'BAO_SECRET_ID'],
    kind: 'string',
    secret: true,
    help: 'AppRole secret_id or wrapping token (environment only)',
  },
  {
    key: 'secretIdFile',
    flag: 'secret-id-file',
    env: ['VAULT_SECRET_ID_FILE', 'BAO_SECRET_ID_FILE'],
    kind: 'path',
    secret: true,
    help: 'file holding the AppRole secret_id (or its wrapping token)',
  },
  {
    key: 'approleMount',
    flag: 'approle-mount',
    env: ['VAULTRUN_APPROLE_MOUNT'],
    kind: 'mount',
    default: 'approle',
    help: 'mount path of the AppRole auth method (without auth/; leading and trailing / dropped; empty refused)',
  },
  {
    key: 'secretIdWrapped',
    flag: 'secret-id-wrapped',
    env: ['VAULTRUN_SECRET_ID_WRAPPED'],
    kind: 'bool',
    default: 'false',
    help: "the secret_id is a response-wrapping token of AppRole's secret-id endpoint: check its origin, unwrap it",
  },
  {
    key: 'deleteSecretIdFile',
    flag: 'delete-secret-id-file',
    env: ['VAULTRUN_DELETE_SECRET_ID_FILE'],
    kind: 'bool',
    default: 'false',
    help: 'delete the secret_id file after a successful login (refuses a symlink)',
  },
  {
    key: 'jwt',
    env: ['VAULTRUN_JWT'],
    kind: 'string',
    secret: true,
    help: 'JWT / OIDC identity token for jwt login (environment only)',
  },
  {
    key: 'jwtFile',
    flag: 'jwt-file',
    env: ['VAULTRUN_JWT_FILE'],
    kind: 'path',
    secret: true,
    help: 'file holding the JWT for jwt login (read at every login)',
  },
  {
    key: 'jwtRole',
    flag: 'jwt-role',
    env: ['VAULTRUN_JWT_ROLE'],
    kind: 'string',
    help: "role for jwt login (default: the mount's default_role)",
  },
  {
    key: 'jwtMount',
    flag: 'jwt-mount',
    env: ['VAULTRUN_JWT_MOUNT'],
    kind: 'mount',
    default: 'jwt',
    help: 'mount path of the JWT/OIDC auth method (without auth/; leading and trailing / dropped; empty refused)',
  },
  {
    key: 'kubernetesRole',
    flag: 'kubernetes-role',
    env: ['VAULTRUN_KUBERNETES_ROLE'],
    kind: 'string',
    help: 'role for kubernetes login (setting it chooses kubernetes login)',
  },
  {
    key: 'kubernetesMount',
    flag: 'kubernetes-mount',
    env: ['VAULTRUN_KUBERNETES_MOUNT'],
    kind: 'mount',
    default: 'kubernetes',
    help: 'mount path of the Kubernetes auth method (without auth/; leading and trailing / dropped; empty refused)',
  },
  {
    key: 'kubernetesTokenFile',
    flag: 'kubernetes-token-file',
    env: ['VAULTRUN_KUBERNETES_TOKEN_FILE'],
    kind: 'path',
    secret: true,
    default: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    help: 'service-account token file for kubernetes login',
  },
  {
    key: 'certRole',
    flag: 'cert-role',
    env: ['VAULTRUN_CERT_ROLE'],
    kind: 'string',
    help: 'certificate role for cert login (default: any role that trusts the client certificate)',
  },
  {
    key: 'certMount',
    flag: 'cert-mount',
    env: ['VAULTRUN_CERT_MOUNT'],
    kind: 'mount',
    default: 'cert',
    help: 'mount path of the TLS certificate auth method, without auth/ (cert login needs --client-cert, --client-key)',
  },
  {
    key: 'envFile',
    flag: 'env-file',
    env: ['VAULTRUN_ENV_FILE'],
    kind: 'list',
    repeatable: true,
    help: 'dotenv file whose variables may hold references (repeatable; env: comma-separated)',
  },
  {
    key: 'envFileOverride',
    flag: 'env-file-override',
    env: ['VAULTRUN_ENV_FILE_OVERRIDE'],
    kind: 'bool',
    default: 'false',
    help: 'env files win over the process environment (default: the environment wins)',
  },
  {
    key: 'passthrough',
    flag: 'passthrough',
    env: ['VAULTRUN_PASSTHROUGH'],
    kind: 'list',
    repeatable: true,
    help: 'variables passed to the command untouched (comma-separated; PREFIX* matches every name starting with PREFIX)',
  },
  {
    key: 'fromPath',
    flag: 'from-path',
    env: ['VAULTRUN_FROM_PATH', 'VAULT_ENV_FROM_PATH'],
    kind: 'list',
    repeatable: true,
    help: 'import every key of a secret as a variable: PATH[#VERSION][|prefix=PREFIX] (repeatable; env: comma-separated)',
  },
  {
    key: 'ignoreMissing',
    flag: 'ignore-missing',
    env: ['VAULTRUN_IGNORE_MISSING'],
    kind: 'bool',
    default: 'false',
    help: 'a missing path or key leaves the variable unset (warning) instead of failing',
  },
  {
    key: 'fileEnv',
    flag: 'file-env',
    env: ['VAULTRUN_FILE_ENV'],
    kind: 'bool',
    default: 'true',
    help: 'handle NAME_FILE variables in both directions (--no-file-env to turn off)',
  },
  {
    key: 'fileEnvDirs',
    flag: 'file-env-dir',
    env: ['VAULTRUN_FILE_ENV_DIRS'],
    kind: 'list',
    repeatable: true,
    default: '/run/secrets,/var/run/secrets,/vault/secrets',
    help: 'NAME_FILE=PATH becomes NAME only for files under these directories (/ for all)',
  },
  {
    key: 'fileEnvExclude',
    flag: 'file-env-exclude',
    env: ['VAULTRUN_FILE_ENV_EXCLUDE'],
    kind: 'list',
    default: 'AWS_WEB_IDENTITY_TOKEN_FILE',
    help: '*_FILE variables that are never converted',
  },
  {
    key: 'transitKey',
    flag: 'transit-key',
    env: ['VAULTRUN_TRANSIT_KEY', 'VAULT_TRANSIT_KEY_ID'],
    kind: 'string',
    help: 'transit key that decrypts vault:v1:… ciphertexts in the environment (one batch request per start)',
  },
  {
    key: 'transitMount',
    flag: 'transit-mount',
    env: ['VAULTRUN_TRANSIT_MOUNT', 'VAULT_TRANSIT_PATH'],
    kind: 'mount',
    default: 'transit',
    help: 'mount path of the transit engine that decrypts ciphertexts (leading and trailing / dropped; empty refused)',
  },
  {
    key: 'runtimeDir',
    flag: 'runtime-dir',
    env: ['VAULTRUN_RUNTIME_DIR'],
    kind: 'path',
    help: 'private directory for secret files (default /run/vaultrun, with fallbacks)',
  },
  {
    key: 'supervise',
    flag: 'supervise',
    env: ['VAULTRUN_SUPERVISE'],
    kind: 'bool',
    default: 'false',
    help: 'stay resident: run the command as a child and forward signals',
  },
  {
    key: 'mask',
    flag: 'mask',
    env: ['VAULTRUN_MASK'],
    kind: 'bool',
    default: 'false',
    help: "replace every resolved secret in the command's stdout/stderr with <redacted> (needs --supervise)",
  },
  {
    key: 'watch',
    flag: 'watch',
    env: ['VAULTRUN_WATCH'],
    kind: 'bool',
    help: 'stay resident and act when a secret changes (default: on when a secret has a lease or a rotation schedule — a database static role, an issued certificate — else off)',
  },
  {
    key: 'pollInterval',
    flag: 'poll-interval',
    env: ['VAULTRUN_POLL_INTERVAL'],
    kind: 'duration',
    default: '60s',
    help: 'how often to check watched KV paths and files for changes (±10% jitter)',
  },
  {
    key: 'onChange',
    flag: 'on-change',
    env: ['VAULTRUN_ON_CHANGE'],
    kind: 'string',
    default: 'restart',
    help: 'on a change: restart the command, signal:SIGNAL (rewrite files, send the signal), exit (stop the command, exit 75: the orchestrator starts a new one) or none (rewrite files only)',
  },
  {
    key: 'changeHook',
    flag: 'change-hook',
    env: ['VAULTRUN_CHANGE_HOOK'],
    kind: 'string',
    help: "command run on every change before the --on-change action, with the command's new environment and VAULTRUN_CHANGED=NAMES (an executable, or a line for /bin/sh -c)",
  },
  {
    key: 'pin',
    flag: 'pin',
    env: ['VAULTRUN_PIN'],
    kind: 'list',
    repeatable: true,
    help: 'variables that never change under a running command (e.g. SECRET_KEY): a change to one alone is not acted on, and it keeps its start value; warned about, as is a name without a reference (comma-separated)',
  },
  {
    key: 'stopSignal',
    flag: 'stop-signal',
    env: ['VAULTRUN_STOP_SIGNAL'],
    kind: 'string',
    default: 'SIGTERM',
    help: "signal that stops the command's process group for a restart",
  },
  {
    key: 'stopTimeout',
    flag: 'stop-timeout',
    env: ['VAULTRUN_STOP_TIMEOUT'],
    kind: 'duration',
    default: '30s',
    help: 'how long a restart waits after the stop signal before SIGKILL',
  },
  {
    key: 'debounce',
    flag: 'debounce',
    env: ['VAULTRUN_DEBOUNCE'],
    kind: 'duration',
    allowZero: true,
    default: '1s',
    help: 'changes within this window are handled together (one action)',
  },
  {
    key: 'splay',
    flag: 'splay',
    env: ['VAULTRUN_SPLAY'],
    kind: 'duration',
    allowZero: true,
    default: '0s',
    help: 'random delay up to this long before acting on a change (replicas do not restart together)',
  },
  {
    key: 'leaseRefresh',
    flag: 'lease-refresh',
    env: ['VAULTRUN_LEASE_REFRESH'],
    kind: 'fraction',
    default: '0.67',
    help: 'a lease that cannot be extended is replaced when this fraction of its life has passed',
  },
  {
    key: 'onLeaseExpiry',
    flag: 'on-lease-expiry',
    env: ['VAULTRUN_ON_LEASE_EXPIRY'],
    kind: 'string',
    choices: ['keep', 'stop'],
    default: 'keep',
    help: 'Vault unreachable when a lease expires: keep the command running, or stop it (exit 69)',
  },
  {
    key: 'revoke',
    flag: 'revoke',
    env: ['VAULTRUN_REVOKE'],
    kind: 'bool',
    default: 'true',
    help: 'on exit, revoke the leases and the token vaultrun created (--no-revoke keeps them)',
  },
  {
    key: 'childTokenTtl',
    flag: 'child-token-ttl',
    env: ['VAULTRUN_CHILD_TOKEN_TTL'],
    kind: 'duration',
    default: '1h',
    help: 'TTL of the child token NAME=vault:login gives the command (renewed while vaultrun stays resident)',
  },
  {
    key: 'childTokenPolicies',
    flag: 'child-token-policies',
    env: ['VAULTRUN_CHILD_TOKEN_POLICIES'],
    kind: 'list',
    repeatable: true,
    help: "policies of that child token (default: vaultrun's token's policies except root)",
  },
  {
    key: 'user',
    flag: 'user',
    env: ['VAULTRUN_USER'],
    kind: 'string',
    help: 'run the command as USER[:GROUP] (name or number; vaultrun must start as root); an empty value is refused, not taken as unset',
  },
  {
    key: 'consistency',
    flag: 'consistency',
    env: ['VAULTRUN_CONSISTENCY'],
    kind: 'string',
    choices: ['index', 'forward', 'leader', 'eventual'],
    default: 'index',
    help: 'reads across an HA cluster: index (wait for a lagging node), forward, leader or eventual (docs/ha.md)',
  },
  {
    key: 'clusterAddrs',
    flag: 'cluster-addr',
    env: ['VAULTRUN_CLUSTER_ADDRS'],
    kind: 'list',
    repeatable: true,
    help: 'addresses of the cluster nodes --consistency leader may send requests to, each scheme://host:port (comma-separated)',
  },
  {
    key: 'wait',
    flag: 'wait',
    env: ['VAULTRUN_WAIT'],
    kind: 'duration',
    default: '30s',
    help: 'deadline of a start for all it asks Vault (login, reads, retries of an unreachable / sealed / rate-limiting Vault)',
  },
  {
    key: 'concurrency',
    flag: 'concurrency',
    env: ['VAULTRUN_CONCURRENCY'],
    kind: 'int',
    default: '8',
    help: 'parallel requests to Vault at most',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: ['VAULTRUN_LOG_LEVEL'],
    kind: 'string',
    choices: ['debug', 'info', 'warn', 'error', 'silent'],
    default: 'info',
    help: 'log level (logs go to stderr only)',
  },
  {
    key: 'logFormat',
    flag: 'log-format',
    env: ['VAULTRUN_LOG_FORMAT'],
    kind: 'string',
    choices: ['text', 'json'],
    default: 'text',
    help: 'log format',
  },
] as const satisfies readonly Setting[];

export type SettingKey = (typeof SETTINGS)[number]['key'];

const OWN_NAMES = new Set<string>(SETTINGS.flatMap((s) => s.env));
const SECRET_NAMES = new Set<string>(SETTINGS.filter((s) => 'secret' in s && s.secret).flatMap((s) => s.env));

/** Our settings: every VAULT_* and VAULTRUN_* variable, and the BAO_* spellings we read. */
export function isOwnSetting(name: string): boolean {
  return name.startsWith('VAULT_') || name.startsWith('VAULTRUN_') || OWN_NAMES.has(name);
}

/** Credentials: never passed to the child, even if listed in VAULTRUN_PASSTHROUGH. */
export function isCredential(name: string): boolean {
  return SECRET_NAMES.has(name);
}

/**
 * Credentials by name, and the Vault address when it carries a user name or password (vault/address.ts): such
 * an address is concealed from /proc and never passed to the child either.
 */
export function isCredentialVariable(name: string, value: string | undefined): boolean {
  return isCredential(name) || (ADDRESS_VARIABLES.includes(name) && hasUserinfo(value));
}
