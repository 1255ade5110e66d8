import { describe, expect, it } from 'vitest';
import { type ErrorCode, EXIT_CODES, exitCodeOf, isVaultrunError, VaultrunError } from '../src/errors.js';

describe('VaultrunError', () => {
  it.each(Object.entries(EXIT_CODES) as Array<[ErrorCode, number]>)('%s exits with %i', (code, status) => {
    const error = new VaultrunError(code, 'm');
    expect(error.exitCode).toBe(status);
    expect(exitCodeOf(error)).toBe(status);
  });

  it('has distinct exit statuses, none of them 0, 1 or 2', () => {
    const statuses = Object.values(EXIT_CODES);
    expect(new Set(statuses).size).toBe(statuses.length);
    for (const s of statuses) expect(s).toBeGreaterThan(2);
  });

  it('keeps message, hint, status and cause', () => {
    const cause = new Error('low level');
    const error = new VaultrunError('PERMISSION_DENIED', 'denied', {
      hint: 'grant read',
      status: 403,
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('VaultrunError');
    expect(error.message).toBe('denied');
    expect(error.hint).toBe('grant read');
    expect(error.status).toBe(403);
    expect(error.cause).toBe(cause);
    const bare = new VaultrunError('IO', 'x');
    expect([bare.hint, bare.status, 'cause' in bare]).toEqual([undefined, undefined, false]);
  });

  it('maps anything else to INTERNAL', () => {
    expect(isVaultrunError(new Error('x'))).toBe(false);
    expect(exitCodeOf(new Error('x'))).toBe(EXIT_CODES.INTERNAL);
    expect(exitCodeOf('a string')).toBe(70);
    expect(exitCodeOf(undefined)).toBe(70);
  });
});
