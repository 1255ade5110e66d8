import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import { certLogin } from './auth-cert.js';
import {
  type AuthBody,
  booleanField,
  dataOf,
  loginAnswer,
  loginRefused,
  mountPath,
  numberField,
  readCredentialFile,
} from './auth-common.js';
import { jwtLogin } from './auth-jwt.js';
import { kubernetesLogin } from './auth-kubernetes.js';
import type { AuthMethod, AuthSettings, Session } from './auth-types.js';
import type { VaultClient } from './client.js';
import { openSecretIdFile, type SecretIdFile } from './secret-id-file.js';

/**
 * Logging in. Credentials come from the environment or files, never from flags (argv is visible in `ps`).
 * Which method, in this order: VAULTRUN_AUTH_METHOD if set; AppRole if a role_id is given; a token from
 * VAULT_TOKEN / VAULT_TOKEN_FILE; JWT if VAULTRUN_JWT / VAULTRUN_JWT_FILE is set; Kubernetes if
 * VAULTRUN_KUBERNETES_ROLE is set; ~/.vault-token. TLS certificate login only when chosen explicitly. Two of
 * them configured without an explicit method is an error (ambiguous). The method is logged, the credential
 * never. JWT, Kubernetes and cert logins live in auth-jwt.ts, auth-kubernetes.ts and auth-cert.ts; the types they
 * share (settings, session) in auth-types.ts.
 */
/** Which method applies, from what is set. Pure. */
export function chooseMethod(s: AuthSettings, homeTokenExists: boolean): AuthMethod {
  if (s.method) return s.method;
  // In the order of precedence, but two configured at once is ambiguous: the user must choose.
  const configured = (
    [
      ['token', Boolean(s.token || s.tokenFile), 'a token (VAULT_TOKEN/VAULT_TOKEN_FILE)'],
      ['approle', Boolean(s.roleId || s.roleIdFile), 'an AppRole role_id'],
      ['jwt', Boolean(s.jwt || s.jwtFile), 'a JWT (VAULTRUN_JWT/VAULTRUN_JWT_FILE)'],
      ['kubernetes', Boolean(s.kubernetesRole), 'a Kubernetes role (VAULTRUN_KUBERNETES_ROLE)'],
    ] as const
  ).filter(([, set]) => set);
  if (configured.length > 1) {
    const what = configured.map(([, , text]) => text);
    throw new VaultrunError(
      'USAGE',
      configured.length === 2
        ? `both ${what[0]} and ${what[1]} are set`
        : `${what.slice(0, -1).join(', ')} and ${what.at(-1)} are all set`,
      {
        hint: `set ${configured.map(([m]) => `VAULTRUN_AUTH_METHOD=${m}`).join(' or ')}, or remove ${configured.length === 2 ? 'one of them' : 'all but one of them'}`,
      },
    );
  }
  const [only] = configured;
  if (only) return only[0];
  // A JWT role without a JWT: the jwt login then says what is missing.
  if (s.jwtRole) return 'jwt';
  if (homeTokenExists) return 'token';
  throw new VaultrunError('LOGIN_FAILED', 'references need Vault, but no credentials are configured', {
    hint:
      'set VAULT_TOKEN or VAULT_TOKEN_FILE, or VAULT_ROLE_ID(_FILE) and VAULT_SECRET_ID(_FILE) for AppRole, ' +
      'or VAULTRUN_JWT_FILE and VAULTRUN_JWT_ROLE for JWT, or VAULTRUN_KUBERNETES_ROLE in a Kubernetes pod, ' +
      'or VAULTRUN_AUTH_METHOD=cert with VAULT_CLIENT_CERT and VAULT_CLIENT_KEY',
  });
}

/**
 * What a login may start early. `tokenKnown`: the token method has its token before it checks it, so the
 * caller can send the start's first mount look-up alongside the check (one round trip less per start).
 */
export interface LoginHooks {
  tokenKnown?: (token: string) => void;
}

async function tokenLogin(
  client: VaultClient,
  s: AuthSettings,
  log: Logger,
  hooks: LoginHooks = {},
): Promise<Session> {
  let token = s.token;
  let source = 'VAULT_TOKEN';
  if (!token && s.tokenFile) {
    token = await readCredentialFile(s.tokenFile, 'VAULT_TOKEN_FILE');
    source = `VAULT_TOKEN_FILE ${s.tokenFile}`;
  }
  if (!token) {
    const home = join(homedir(), '.vault-token');
    // ~/.vault-token is where a token may be, not a file the user named: its absence is "no credentials" (67),
    // like any method's missing input; a file that is there and cannot be read stays an IO error.
    token = await readCredentialFile(home, 'token').catch((error: unknown) => {
      if (error instanceof VaultrunError && error.code === 'IO' && error.message.endsWith(': ENOENT')) {
        throw new VaultrunError(
          'LOGIN_FAILED',
          `token login needs a token, but none is set: VAULT_TOKEN and VAULT_TOKEN_FILE are not set and ${home} does not exist`,
          {
            hint: 'set VAULT_TOKEN or VAULT_TOKEN_FILE, or write the token to ~/.vault-token (vault login does); or choose another method with VAULTRUN_AUTH_METHOD',
          },
        );
      }
      throw error;
    });
    source = home;
  }
  log.masker.add(token);
  hooks.tokenKnown?.(token);
  // lookup-self validates the token before any read (a bad token is "login refused", not "permission denied").
  const body = await client
    .request<AuthBody>('GET', 'auth/token/lookup-self', {
      token,
      what: 'checking the token (auth/token/lookup-self)',
    })
    .catch((e: unknown) =>
      loginRefused(e, `token from ${source}`, {
        ...(e instanceof VaultrunError && e.status === 403
          ? {
              problem: `the token from ${source} is not valid (expired, revoked or mistyped): Vault denied auth/token/lookup-self`,
            }
          : {}),
        // Every Vault has auth/token/lookup-self: a 404 is a namespace that does not exist (OpenBao says
        // "namespace not found") or an address whose path leads elsewhere, not a bad token.
        hint:
          e instanceof VaultrunError && e.status === 404
            ? 'every Vault answers auth/token/lookup-self, so this is not about the token: check VAULT_NAMESPACE (it must name a namespace that exists; leave it unset for the root namespace) and that VAULT_ADDR is scheme://host:port without a path (vaultrun adds /v1/… itself; a path only for a proxy that needs one)'
            : `get a new token (vault login, vault token create, or your CI's login) and put it in ${source}`,
      }),
    );
  const what = 'auth/token/lookup-self';
  const data = dataOf(body, what);
  return {
    token,
    method: 'token',
    source,
    ttl: numberField(data.ttl, 0, 'data.ttl', what),
    renewable: booleanField(data.renewable, false, 'data.renewable', what),
    created: false,
    ...(source === 'VAULT_TOKEN' ? {} : { relogin: { ...s, method: 'token' as const } }),
  };
}

/**
 * Pure: whether a wrapping token's creation_path is one of AppRole's secret-id endpoints at this mount —
 * `auth/MOUNT/role/ROLE/secret-id` or `.../custom-secret-id`, any role (OpenBao reports it relative to the
 * namespace; the namespace-prefixed form is accepted too). Anything else, `sys/wrapping/wrap` above all, means
 * the token was not made by the endpoint that issues secret_ids: someone re-wrapped a value they hold.
 */
export function isSecretIdCreationPath(creationPath: string, mount: string, namespace?: string): boolean {
  const ns = namespace ? mountPath(namespace) : '';
  const path = ns && creationPath.startsWith(`${ns}/`) ? creationPath.slice(ns.length + 1) : creationPath;
  const prefix = `auth/${mountPath(mount)}/role/`;
  return path.startsWith(prefix) && /^[^/]+\/(custom-)?secret-id$/.test(path.slice(prefix.length));
}

/** A value from Vault put into a message: quoted, printable, bounded (a hostile server chooses it). */
function quoted(value: string): string {
  const text = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return JSON.stringify(text);
}

/**
 * A wrapped secret_id: the wrapping token is looked up first (sys/wrapping/lookup, no auth token needed) and
 * unwrapped only if AppRole's secret-id endpoint of the configured mount made it. A used or unknown wrapping
 * token fails the lookup (400 "wrapping token is not valid or does not exist"): 67, saying someone else may
 * have used it.
 */
async function unwrapSecretId(
  client: VaultClient,
  wrapping: string,
  s: AuthSettings,
  log: Logger,
): Promise<string> {
  const mount = mountPath(s.approleMount);
  const spent = {
    hint:
      'a wrapping token works once and expires: if nothing of yours unwrapped it before, someone else may have ' +
      `(revoke the role's secret_ids under auth/${mount}/role/ROLE) — or it is too old; deliver a new one`,
  };
  const lookup = 'sys/wrapping/lookup';
  const looked = await client
    .request<AuthBody>('POST', lookup, {
      body: { token: wrapping },
      what: `checking the wrapping token (${lookup})`,
    })
    .catch((e: unknown) => loginRefused(e, 'wrapping token', spent));
  const info = dataOf(looked, lookup);
  const creationPath = typeof info.creation_path === 'string' ? info.creation_path : '';
  if (!isSecretIdCreationPath(creationPath, mount, client.settings.namespace)) {
    throw new VaultrunError(
      'LOGIN_FAILED',
      `the wrapping token in VAULT_SECRET_ID(_FILE) (VAULTRUN_SECRET_ID_WRAPPED=true) was created by ` +
        `${creationPath ? quoted(creationPath) : 'no creation_path'}, not by auth/${mount}/role/ROLE/secret-id: ` +
        'vaultrun does not unwrap it',
      {
        hint:
          'it was not wrapped by the AppRole secret-id endpoint: someone may have intercepted and re-wrapped it; ' +
          `revoke the role's secret_ids (vault list auth/${mount}/role/ROLE/secret-id, then vault write ` +
          `auth/${mount}/role/ROLE/secret-id-accessor/destroy secret_id_accessor=…) and deliver a new wrapped one ` +
          `(or set --approle-mount if the role is on another mount)`,
      },
    );
  }
  log.debug('the wrapping token was made by the AppRole secret-id endpoint', {
    creation_path: creationPath,
    ...(typeof info.creation_time === 'string' ? { creation_time: info.creation_time } : {}),
  });
  const unwrapped = await client
    .request<AuthBody>('POST', 'sys/wrapping/unwrap', {
      token: wrapping,
      what: 'unwrapping the secret_id (sys/wrapping/unwrap)',
    })
    .catch((e: unknown) => loginRefused(e, 'wrapping token', spent));
  const inner = dataOf(unwrapped, 'sys/wrapping/unwrap').secret_id;
  if (typeof inner !== 'string' || inner === '') {
    throw new VaultrunError('LOGIN_FAILED', 'the wrapped response holds no secret_id', {
      hint: 'wrap the output of auth/<mount>/role/<role>/secret-id (vault write -wrap-ttl=…)',
    });
  }
  log.masker.add(inner);
  return inner;
}

async function approleLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const roleId =
    s.roleId ?? (s.roleIdFile ? await readCredentialFile(s.roleIdFile, 'VAULT_ROLE_ID_FILE') : undefined);
  if (!roleId) {
    throw new VaultrunError('LOGIN_FAILED', 'AppRole login needs a role_id', {
      hint: 'set VAULT_ROLE_ID or VAULT_ROLE_ID_FILE',
    });
  }
  // Under --delete-secret-id-file the file is held (see secret-id-file.ts) so that the file deleted is the one read.
  let held: SecretIdFile | undefined;
  let secretId = s.secretId;
  if (!secretId && s.secretIdFile) {
    if (s.deleteSecretIdFile) {
      held = await openSecretIdFile(s.secretIdFile);
      secretId = held.value;
    } else {
      secretId = await readCredentialFile(s.secretIdFile, 'VAULT_SECRET_ID_FILE');
    }
  }
  try {
    if (!secretId) {
      throw new VaultrunError('LOGIN_FAILED', 'AppRole login needs a secret_id', {
        hint: 'set VAULT_SECRET_ID or VAULT_SECRET_ID_FILE (a role with bind_secret_id=false is not supported)',
      });
    }
    log.masker.add(roleId);
    log.masker.add(secretId);
    if (s.secretIdWrapped) secretId = await unwrapSecretId(client, secretId, s, log);
    const mount = mountPath(s.approleMount);
    const body = await client
      .request<AuthBody>('POST', `auth/${mount}/login`, {
        body: { role_id: roleId, secret_id: secretId },
        what: `logging in with AppRole (auth/${mount}/login)`,
      })
      .catch((e: unknown) =>
        loginRefused(e, 'role_id and secret_id', {
          hint:
            `check VAULT_ROLE_ID(_FILE) and VAULT_SECRET_ID(_FILE) and the mount (auth/${mount}); a secret_id expires ` +
            `or runs out of uses: make a new one with vault write -f auth/${mount}/role/ROLE/secret-id`,
        }),
      );
    const { token, ttl, renewable } = loginAnswer(body, `the AppRole login at auth/${mount}/login`);
    log.masker.add(token);
    // Only now: a start that failed before this point (Vault unreachable, sealed) can be retried with the file.
    if (held) await held.remove(log);
    return {
      token,
      method: 'approle',
      source: `auth/${mount}`,
      ttl,
      renewable,
      created: true,
      relogin: {
        method: 'approle',
        roleId,
        secretId,
        approleMount: s.approleMount,
        secretIdWrapped: false,
        deleteSecretIdFile: false,
      },
    };
  } finally {
    await held?.close();
  }
}

const LOGINS: Record<
  AuthMethod,
  (client: VaultClient, s: AuthSettings, log: Logger, hooks?: LoginHooks) => Promise<Session>
> = {
  token: tokenLogin,
  approle: approleLogin,
  jwt: jwtLogin,
  kubernetes: kubernetesLogin,
  cert: certLogin,
};

export async function login(
  client: VaultClient,
  s: AuthSettings,
  log: Logger,
  hooks: LoginHooks = {},
): Promise<Session> {
  const homeTokenExists =
    !s.method &&
    !(
      s.roleId ||
      s.roleIdFile ||
      s.token ||
      s.tokenFile ||
      s.jwt ||
      s.jwtFile ||
      s.jwtRole ||
      s.kubernetesRole
    )
      ? await readFile(join(homedir(), '.vault-token')).then(
          () => true,
          () => false,
        )
      : false;
  const method = chooseMethod(s, homeTokenExists);
  const session = await LOGINS[method](client, s, log, hooks);
  log.debug('logged in to Vault', { method: session.method, source: session.source, ttl_s: session.ttl });
  return session;
}
