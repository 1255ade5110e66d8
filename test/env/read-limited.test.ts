import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  asUser,
  groupsFromStatus,
  IdentitySwitchFailed,
  readAsProblem,
  readLimited,
} from '../../src/env/read-limited.js';

type Failure = Error & { code?: string };

async function failure(promise: Promise<unknown>): Promise<Failure> {
  try {
    await promise;
  } catch (error) {
    return error as Failure;
  }
  throw new Error('expected a failure, the promise resolved');
}

function failureOf(fn: () => unknown): Failure {
  try {
    fn();
  } catch (error) {
    return error as Failure;
  }
  throw new Error('expected a failure, nothing was thrown');
}

const NOBODY = { uid: 65534, gid: 65534, name: 'nobody' };

describe('groupsFromStatus', () => {
  it.each<[string, number[] | undefined]>([
    ['Name:\tnode\nGroups:\t0 1 2 \nNgid:\t0\n', [0, 1, 2]],
    ['Groups:\t\n', []],
    ['Groups:\n', []],
    ['Name:\tnode\n', undefined],
  ])('%j → %j', (status, groups) => {
    expect(groupsFromStatus(status)).toEqual(groups);
  });
});

describe('readAsProblem', () => {
  const eacces = Object.assign(new Error('x'), { code: 'EACCES' });
  it('is nothing without --user, nor for other errors', () => {
    expect(readAsProblem(eacces, undefined)).toBeUndefined();
    expect(readAsProblem(Object.assign(new Error('x'), { code: 'ENOENT' }), NOBODY)).toBeUndefined();
  });
  it('names the user and says the file must be readable by it (EACCES)', () => {
    const p = readAsProblem(eacces, NOBODY);
    expect(p?.problem).toBe('is not readable by the --user target nobody (uid 65534, gid 65534): EACCES');
    expect(p?.hint).toContain('must be readable by that user');
  });
  it('says the identity could not be switched to', () => {
    expect(readAsProblem(new IdentitySwitchFailed('EPERM'), NOBODY)?.problem).toBe(
      'cannot be read as the --user target nobody (uid 65534, gid 65534): EPERM',
    );
  });
});

describe('reading as the --user target', () => {
  let dir: string;
  let rootOnly: string;
  let readable: string;
  const ids = () => ({ euid: process.geteuid?.(), egid: process.getegid?.(), groups: process.getgroups?.() });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-readas-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'private'), { mode: 0o700 });
    rootOnly = join(dir, 'private', 'secret');
    writeFileSync(rootOnly, 'root only', { mode: 0o600 });
    readable = join(dir, 'readable');
    writeFileSync(readable, 'for everyone', { mode: 0o644 });
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // The suite runs as root in CI (the kernel's check as nobody); as another user vaultrun cannot switch (EPERM).
  const root = process.geteuid?.() === 0;

  it('a file the user may read is read; one it may not is EACCES; our ids are the same afterwards', async () => {
    const before = ids();
    if (root) {
      expect((await readLimited(readable, 100, { as: NOBODY })).toString()).toBe('for everyone');
      expect((await failure(readLimited(rootOnly, 100, { as: NOBODY }))).code).toBe('EACCES');
      expect((await readLimited(rootOnly, 100)).toString()).toBe('root only'); // without --user: as before
    } else {
      const error = await failure(readLimited(readable, 100, { as: NOBODY }));
      expect(error).toBeInstanceOf(IdentitySwitchFailed);
      expect(error.code).toBe('EPERM');
    }
    expect(ids()).toEqual(before);
  });

  it('asUser gives our ids back when the function throws, and runs it as the user', () => {
    const before = ids();
    const error = failureOf(() =>
      asUser(NOBODY, () => {
        throw Object.assign(new Error('inside'), { code: 'EINSIDE', euid: process.geteuid?.() });
      }),
    );
    if (root) {
      expect({ code: error.code, euid: (error as { euid?: number }).euid }).toEqual({
        code: 'EINSIDE',
        euid: NOBODY.uid,
      });
    } else {
      expect(error).toBeInstanceOf(IdentitySwitchFailed);
    }
    expect(ids()).toEqual(before);
  });
});
