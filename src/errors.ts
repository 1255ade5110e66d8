/**
 * One error type for everything vaultrun reports. Codes are strings; the table below is the only place that
 * maps them to exit statuses (docs/exit-statuses.md is generated from it). Messages never contain secret values,
 * tokens, secret_ids or wrapping tokens: they name variables, paths, keys and what to do.
 */
export const EXIT_CODES = {
  /** Bad flag, bad setting, bad reference syntax, conflicting inputs. */
  USAGE: 64,
  /** Vault answered but not as expected (unexpected status or body). */
  VAULT_ERROR: 76,
  /** A referenced path, key or version does not exist. */
  NOT_FOUND: 66,
  /** Login refused: bad token, role_id/secret_id, expired wrapping token, no credentials at all. */
  LOGIN_FAILED: 67,
  /** Vault unreachable, sealed, standby or rate-limiting until --wait ran out. */
  UNREACHABLE: 69,
  /** Logged in, but the policy does not allow reading a referenced path. */
  PERMISSION_DENIED: 77,
  /** A local file could not be read or written (credential files, *_FILE sources, secret files). */
  IO: 74,
  /** --on-change=exit: a secret changed; the command was stopped so that the orchestrator starts a new one. */
  SECRETS_CHANGED: 75,
  /** A bug in vaultrun. */
  INTERNAL: 70,
  /** The command was found but could not be executed. */
  COMMAND_NOT_EXECUTABLE: 126,
  /** The command was not found on PATH. */
  COMMAND_NOT_FOUND: 127,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

/** Every exit status with what it means: `--help` prints it, docs/exit-statuses.md is generated from it. */
export const EXIT_TABLE = [
  [0, "success (in exec mode the command's own status, in supervise mode the command's status or 128+n)"],
  [
    EXIT_CODES.USAGE,
    'usage or configuration error (bad flag, setting, reference syntax, conflicting variables)',
  ],
  [EXIT_CODES.NOT_FOUND, 'a referenced path, key or version does not exist'],
  [EXIT_CODES.LOGIN_FAILED, 'login refused or no credentials'],
  [
    EXIT_CODES.UNREACHABLE,
    'Vault unreachable, sealed, standby or rate-limiting until --wait ran out; TLS failure; an answer above 32 MiB',
  ],
  [EXIT_CODES.INTERNAL, 'internal error (a bug: please report it)'],
  [EXIT_CODES.IO, 'a local file could not be read or written'],
  [
    EXIT_CODES.SECRETS_CHANGED,
    'a secret changed and --on-change=exit stopped the command (the orchestrator starts a new one)',
  ],
  [EXIT_CODES.VAULT_ERROR, 'Vault answered with an unexpected error'],
  [EXIT_CODES.PERMISSION_DENIED, 'permission denied by a Vault policy'],
  [EXIT_CODES.COMMAND_NOT_EXECUTABLE, 'the command is not executable'],
  [EXIT_CODES.COMMAND_NOT_FOUND, 'the command was not found'],
] as const;

export interface VaultrunErrorOptions {
  cause?: unknown;
  /** What the user should do about it; printed after the message. */
  hint?: string;
  /** HTTP status of Vault's answer, when the error is one. */
  status?: number;
}

export class VaultrunError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options: VaultrunErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VaultrunError';
    this.code = code;
    this.hint = options.hint;
    this.status = options.status;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function isVaultrunError(error: unknown): error is VaultrunError {
  return error instanceof VaultrunError;
}

/** Exit status for anything thrown: our errors by their code, anything else is a bug. */
export function exitCodeOf(error: unknown): number {
  return isVaultrunError(error) ? error.exitCode : EXIT_CODES.INTERNAL;
}
