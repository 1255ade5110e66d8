import { readFile, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import type { VaultClient } from './client.js';

/**
 * Logging in. Credentials come from the environment or files, never from flags (argv is visible in `ps`).
 * Which method, in this order: VAULTRUN_AUTH_METHOD if set; AppRole if a role_id is given; a token from
 * VAULT_TOKEN / VAULT_TOKEN_FILE; ~/.vault-token. A role_id and a token together, without an explicit method,
 * is an error (ambiguous). The method is logged, the credential never.
 */
export const AUTH_METHODS = ['token', 'approle'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface AuthSettings {
  method?: AuthMethod;
  token?: string;
  tokenFile?: string;
  roleId?: string;
  roleIdFile?: string;
  secretId?: string;
  secretIdFile?: string;
  approleMount: string;
  secretIdWrapped: boolean;
  deleteSecretIdFile: boolean;
}

export interface Session {
  token: string;
  method: AuthMethod;
  /** Where the credential came from, for the log: "VAULT_TOKEN", "approle at auth/approle". */
  source: string;
  /** Seconds; 0 for a token that never expires. */
  ttl: number;
  renewable: boolean;
  /** vaultrun created this token by logging in (so it revokes it on exit); false for a token it was given. */
  created: boolean;
  /**
   * How to log in again when the token reaches its max TTL, held in memory: AppRole keeps the (unwrapped)
   * secret_id — which fails if the secret_id was single-use —, a token file is read again (an agent may have
   * renewed it). Undefined when there is no way (a token from VAULT_TOKEN).
   */
  relogin?: AuthSettings;
}

async function readCredentialFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError('IO', `cannot read ${what} file ${path}: ${code}`, {
      hint: 'check the path and that the file is readable by this user',
    });
  }
  const value = text.trim();
  if (value === '') throw new VaultrunError('LOGIN_FAILED', `${what} file ${path} is empty`);
  return value;
}

/** Which method applies, from what is set. Pure. */
export function chooseMethod(s: AuthSettings, homeTokenExists: boolean): AuthMethod {
  if (s.method) return s.method;
  const hasRole = Boolean(s.roleId || s.roleIdFile);
  const hasToken = Boolean(s.token || s.tokenFile);
  if (hasRole && hasToken) {
    throw new VaultrunError(
      'USAGE',
      'both a token (VAULT_TOKEN/VAULT_TOKEN_FILE) and an AppRole role_id are set',
      {
        hint: 'set VAULTRUN_AUTH_METHOD=token or VAULTRUN_AUTH_METHOD=approle, or remove one of them',
      },
    );
  }
  if (hasRole) return 'approle';
  if (hasToken || homeTokenExists) return 'token';
  throw new VaultrunError('LOGIN_FAILED', 'references need Vault, but no credentials are configured', {
    hint: 'set VAULT_TOKEN or VAULT_TOKEN_FILE, or VAULT_ROLE_ID(_FILE) and VAULT_SECRET_ID(_FILE) for AppRole',
  });
}

interface AuthBody {
  auth?: { client_token?: string; lease_duration?: number; renewable?: boolean };
  data?: { ttl?: number; renewable?: boolean; secret_id?: string };
}

function loginRefused(error: unknown, what: string): never {
  if (
    error instanceof VaultrunError &&
    (error.code === 'PERMISSION_DENIED' || error.code === 'VAULT_ERROR' || error.code === 'NOT_FOUND')
  ) {
    throw new VaultrunError('LOGIN_FAILED', `login refused: ${error.message}`, {
      cause: error,
      hint: `check the ${what}`,
      ...(error.status ? { status: error.status } : {}),
    });
  }
  throw error;
}

async function tokenLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  let token = s.token;
  let source = 'VAULT_TOKEN';
  if (!token && s.tokenFile) {
    token = await readCredentialFile(s.tokenFile, 'VAULT_TOKEN_FILE');
    source = `VAULT_TOKEN_FILE ${s.tokenFile}`;
  }
  if (!token) {
    const home = join(homedir(), '.vault-token');
    token = await readCredentialFile(home, 'token');
    source = home;
  }
  log.masker.add(token);
  // lookup-self validates the token before any read (a bad token is "login refused", not "permission denied").
  const body = await client
    .request<AuthBody>('GET', 'auth/token/lookup-self', {
      token,
      what: 'checking the token (auth/token/lookup-self)',
    })
    .catch((e: unknown) => loginRefused(e, `token from ${source}`));
  return {
    token,
    method: 'token',
    source,
    ttl: body.data?.ttl ?? 0,
    renewable: body.data?.renewable ?? false,
    created: false,
    ...(source === 'VAULT_TOKEN' ? {} : { relogin: { ...s, method: 'token' as const } }),
  };
}

async function approleLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const roleId =
    s.roleId ?? (s.roleIdFile ? await readCredentialFile(s.roleIdFile, 'VAULT_ROLE_ID_FILE') : undefined);
  if (!roleId) {
    throw new VaultrunError('LOGIN_FAILED', 'AppRole login needs a role_id', {
      hint: 'set VAULT_ROLE_ID or VAULT_ROLE_ID_FILE',
    });
  }
  let secretId = s.secretId;
  if (!secretId && s.secretIdFile) {
    secretId = await readCredentialFile(s.secretIdFile, 'VAULT_SECRET_ID_FILE');
    if (s.deleteSecretIdFile) {
      await unlink(s.secretIdFile).catch((e: NodeJS.ErrnoException) => {
        log.warn('could not delete the secret_id file', { file: s.secretIdFile, error: e.code });
      });
      log.debug('deleted the secret_id file after reading it', { file: s.secretIdFile });
    }
  }
  if (!secretId) {
    throw new VaultrunError('LOGIN_FAILED', 'AppRole login needs a secret_id', {
      hint: 'set VAULT_SECRET_ID or VAULT_SECRET_ID_FILE (a role with bind_secret_id=false is not supported)',
    });
  }
  log.masker.add(roleId);
  log.masker.add(secretId);
  if (s.secretIdWrapped) {
    const unwrapped = await client
      .request<AuthBody>('POST', 'sys/wrapping/unwrap', {
        token: secretId,
        what: 'unwrapping the secret_id (sys/wrapping/unwrap)',
      })
      .catch((e: unknown) =>
        loginRefused(
          e,
          'wrapping token: it is single-use and expires (was it already unwrapped, or too old?)',
        ),
      );
    const inner = unwrapped.data?.secret_id;
    if (!inner) {
      throw new VaultrunError('LOGIN_FAILED', 'the wrapped response holds no secret_id', {
        hint: 'wrap the output of auth/<mount>/role/<role>/secret-id (vault write -wrap-ttl=…)',
      });
    }
    secretId = inner;
    log.masker.add(secretId);
  }
  const mount = s.approleMount.replace(/^\/+|\/+$/g, '');
  const body = await client
    .request<AuthBody>('POST', `auth/${mount}/login`, {
      body: { role_id: roleId, secret_id: secretId },
      what: `logging in with AppRole (auth/${mount}/login)`,
    })
    .catch((e: unknown) => loginRefused(e, 'role_id and secret_id (and the AppRole mount path)'));
  const token = body.auth?.client_token;
  if (!token) throw new VaultrunError('VAULT_ERROR', `AppRole login at auth/${mount} returned no token`);
  log.masker.add(token);
  return {
    token,
    method: 'approle',
    source: `auth/${mount}`,
    ttl: body.auth?.lease_duration ?? 0,
    renewable: body.auth?.renewable ?? false,
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
}

export async function login(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const homeTokenExists =
    !s.method && !(s.roleId || s.roleIdFile || s.token || s.tokenFile)
      ? await readFile(join(homedir(), '.vault-token')).then(
          () => true,
          () => false,
        )
      : false;
  const method = chooseMethod(s, homeTokenExists);
  const session =
    method === 'approle' ? await approleLogin(client, s, log) : await tokenLogin(client, s, log);
  log.debug('logged in to Vault', { method: session.method, source: session.source, ttl_s: session.ttl });
  return session;
}
