import { readFile } from 'node:fs/promises';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AuthMethod, AuthSettings, Session } from './auth-types.js';
import type { VaultClient } from './client.js';

/**
 * What every login method shares: reading a credential file, turning Vault's "no" into LOGIN_FAILED (exit 67)
 * with the method named, and the session a `auth/MOUNT/login` answer gives.
 */
export interface AuthBody {
  auth?: { client_token?: string; lease_duration?: number; renewable?: boolean };
  data?: { ttl?: number; renewable?: boolean; secret_id?: string };
}

/** Reads a credential file, trimmed. Never logs or returns the content in an error. */
export async function readCredentialFile(path: string, what: string, hint?: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError('IO', `cannot read ${what} file ${path}: ${code}`, {
      hint: hint ?? 'check the path and that the file is readable by this user',
    });
  }
  const value = text.trim();
  if (value === '') throw new VaultrunError('LOGIN_FAILED', `${what} file ${path} is empty`);
  return value;
}

/** Vault said no to a login (403, 400, 404): LOGIN_FAILED, naming what to check. Other errors pass. */
export function loginRefused(error: unknown, what: string): never {
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

/** "ci", "/ci/" → "ci": a mount path as it goes into auth/MOUNT/login. */
export function mountPath(mount: string): string {
  return mount.replace(/^\/+|\/+$/g, '');
}

export interface MountLogin {
  method: AuthMethod;
  mount: string;
  body: Record<string, unknown>;
  /** For messages: "jwt login (auth/jwt, role ci)". */
  what: string;
  /** What to check when Vault refuses: "JWT (its audience, claims, expiry) and the role". */
  check: string;
  source: string;
  /** How to log in again later (re-reads files). */
  relogin: AuthSettings;
}

/** POST auth/MOUNT/login → a session (the token is masked in logs at once). */
export async function loginAtMount(client: VaultClient, login: MountLogin, log: Logger): Promise<Session> {
  const mount = mountPath(login.mount);
  const body = await client
    .request<AuthBody>('POST', `auth/${mount}/login`, {
      body: login.body,
      what: `logging in with ${login.what}`,
    })
    .catch((e: unknown) => loginRefused(e, login.check));
  const token = body?.auth?.client_token;
  if (!token) {
    throw new VaultrunError('VAULT_ERROR', `${login.method} login at auth/${mount} returned no token`);
  }
  log.masker.add(token);
  return {
    token,
    method: login.method,
    source: login.source,
    ttl: body.auth?.lease_duration ?? 0,
    renewable: body.auth?.renewable ?? false,
    created: true,
    relogin: login.relogin,
  };
}
