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
export function loginRefused(
  error: unknown,
  what: string,
  advice: { problem?: string; hint?: string } = {},
): never {
  if (
    error instanceof VaultrunError &&
    (error.code === 'PERMISSION_DENIED' || error.code === 'VAULT_ERROR' || error.code === 'NOT_FOUND')
  ) {
    const problem = advice.problem ?? error.message;
    throw new VaultrunError('LOGIN_FAILED', `login refused: ${problem}`, {
      cause: error,
      hint: advice.hint ?? `check the ${what}`,
      ...(error.status ? { status: error.status } : {}),
    });
  }
  throw error;
}

/**
 * A 200 answer is only trusted once its shape is checked: something that is not Vault (a proxy's page, a
 * captive portal, a hostile server) must give a clear error, not a crash. Not a JSON object at all: exit 69
 * (what answers at VAULT_ADDR is not Vault). A JSON object without a usable token: exit 67 (no login).
 */
export function jsonObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new VaultrunError(
      'UNREACHABLE',
      `the answer to ${what} is not a JSON object: is VAULT_ADDR a Vault?`,
      {
        hint: 'check VAULT_ADDR (a proxy or another service may be answering in its place)',
      },
    );
  }
  return body as Record<string, unknown>;
}

function optional<T>(
  value: unknown,
  type: 'number' | 'boolean',
  fallback: T,
  field: string,
  what: string,
): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== type || (type === 'number' && !Number.isFinite(value as number))) {
    throw new VaultrunError('LOGIN_FAILED', `the answer to ${what} has a malformed ${field} (not a ${type})`);
  }
  return value as T;
}

/** A token as Vault issues them: printable ASCII, no spaces; never echoed in a message. */
function isToken(value: unknown): value is string {
  return typeof value === 'string' && /^[\x21-\x7e]{1,4096}$/.test(value);
}

/** The token, TTL and renewability of a login answer (`auth` block), checked. */
export function loginAnswer(body: unknown, what: string): { token: string; ttl: number; renewable: boolean } {
  const auth = jsonObject(body, what).auth;
  if (typeof auth !== 'object' || auth === null || !isToken((auth as Record<string, unknown>).client_token)) {
    throw new VaultrunError('LOGIN_FAILED', `the answer to ${what} holds no client token`, {
      hint: 'check VAULT_ADDR and the auth mount: a Vault login answers with auth.client_token',
    });
  }
  const a = auth as Record<string, unknown>;
  return {
    token: a.client_token as string,
    ttl: optional(a.lease_duration, 'number', 0, 'auth.lease_duration', what),
    renewable: optional(a.renewable, 'boolean', false, 'auth.renewable', what),
  };
}

/** The `data` block of an answer (token lookup, unwrap), checked to be an object. */
export function dataOf(body: unknown, what: string): Record<string, unknown> {
  const data = jsonObject(body, what).data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new VaultrunError('LOGIN_FAILED', `the answer to ${what} holds no data`);
  }
  return data as Record<string, unknown>;
}

export function numberField(value: unknown, fallback: number, field: string, what: string): number {
  return optional(value, 'number', fallback, field, what);
}

export function booleanField(value: unknown, fallback: boolean, field: string, what: string): boolean {
  return optional(value, 'boolean', fallback, field, what);
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
  const { token, ttl, renewable } = loginAnswer(body, `the ${login.method} login at auth/${mount}/login`);
  log.masker.add(token);
  return {
    token,
    method: login.method,
    source: login.source,
    ttl,
    renewable,
    created: true,
    relogin: login.relogin,
  };
}
