// Helpers for unit tests: catch the VaultrunError a call throws, failing loudly when it throws nothing or
// something else.
import { VaultrunError } from '../../src/errors.js';

export function thrown(fn: () => unknown): VaultrunError {
  try {
    fn();
  } catch (error) {
    if (error instanceof VaultrunError) return error;
    throw new Error(`expected a VaultrunError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a VaultrunError, nothing was thrown');
}

export async function rejected(promise: Promise<unknown>): Promise<VaultrunError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VaultrunError) return error;
    throw new Error(`expected a VaultrunError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a VaultrunError, the promise resolved');
}
