// Secret files: injective, safe file names (property-tested), this process's own directory in the runtime
// directory, planted or foreign runtime directories, and a clean-up that removes only what this process wrote.
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  prepareRuntimeDir,
  removeSecretFiles,
  secretFileName,
  writeSecretFile,
} from '../../src/env/secret-files.js';
import { createLogger } from '../../src/log.js';
import { rejected } from '../support/errors.js';

const fileVar = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => `${s}_FILE`);

describe('secretFileName', () => {
  it.each([
    ['DB_PASSWORD_FILE', 'DB_PASSWORD'],
    ['TLS_KEY_FILE', 'TLS_KEY'],
    ['A.B_FILE', 'A%2EB'],
    ['A_B_FILE', 'A_B'],
    ['a_FILE', '%61'],
    ['..._FILE', '%2E%2E%2E'],
    ['A/B_FILE', 'A%2FB'],
    ['%41_FILE', '%2541'],
    ['Ä_FILE', '%C3%84'],
    ['X', 'X%'],
  ])('%s → %s', (variable, name) => {
    expect(secretFileName(variable)).toBe(name);
  });

  it('distinct variables never share a file name, not even on a case-insensitive filesystem', () => {
    fc.assert(
      fc.property(
        fc.oneof(fileVar, fc.string({ unit: 'binary' })),
        fc.oneof(fileVar, fc.string()),
        (a, b) => {
          fc.pre(a !== b);
          const [x, y] = [secretFileName(a), secretFileName(b)];
          expect(x).not.toBe(y);
          expect(x.toLowerCase()).not.toBe(y.toLowerCase());
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('names close to each other stay apart (A.B / A_B / a_b / A-B / A B)', () => {
    const names = ['A.B_FILE', 'A_B_FILE', 'a_b_FILE', 'A-B_FILE', 'A B_FILE', 'A%2EB_FILE', 'AB_FILE'];
    const files = names.map(secretFileName);
    expect(new Set(files.map((f) => f.toLowerCase())).size).toBe(names.length);
  });

  it('a name is always safe: not empty, no "/", no NUL, not "." or "..", never starting with "."', () => {
    fc.assert(
      fc.property(fc.oneof(fileVar, fc.string({ unit: 'binary' })), (variable) => {
        const name = secretFileName(variable);
        expect(name.length).toBeGreaterThan(0);
        expect(name).not.toMatch(/[/\0]/);
        expect(name.startsWith('.')).toBe(false);
        expect(name).toMatch(/^[A-Z0-9_%-]+$/);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('the runtime directory', () => {
  const log = createLogger({ level: 'error', write: () => {} });
  let work: string;
  const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const kind = (p: string) => {
    const st = lstatSync(p);
    return { uid: st.uid, mode: st.mode & 0o7777, symlink: st.isSymbolicLink(), dir: st.isDirectory() };
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'vaultrun-secret-files-'));
  });
  afterEach(async () => {
    await removeSecretFiles();
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it("files go into this process's own 0700 directory inside the 0700 runtime directory; the same one on every call", async () => {
    const base = join(work, 'own');
    const dir = await prepareRuntimeDir([base], log, { explicit: true });
    expect(dirname(dir)).toBe(base);
    expect(basename(dir)).toMatch(new RegExp(`^${process.pid}-\\w{6}$`));
    expect(kind(base)).toEqual({ uid: me.uid, mode: 0o700, symlink: false, dir: true });
    expect(kind(dir)).toEqual({ uid: me.uid, mode: 0o700, symlink: false, dir: true });
    expect(await prepareRuntimeDir([base], log, { explicit: true })).toBe(dir);
    const file = await writeSecretFile(dir, 'DB_PASSWORD', 'v1');
    expect(file).toBe(join(dir, 'DB_PASSWORD'));
    expect(await writeSecretFile(dir, 'DB_PASSWORD', 'v2')).toBe(file);
    expect(readFileSync(file, 'utf8')).toBe('v2');
    expect(lstatSync(file).mode & 0o777).toBe(0o400);
    expect(readdirSync(dir)).toEqual(['DB_PASSWORD']);
  });

  it('clean-up removes only what this process wrote: a file of another process stays', async () => {
    const base = join(work, 'shared');
    mkdirSync(base, { mode: 0o700 });
    const other = join(base, '4242-abcdef');
    mkdirSync(other, { mode: 0o700 });
    writeFileSync(join(other, 'DB_PASSWORD'), 'the other one');
    const dir = await prepareRuntimeDir([base], log, { explicit: true });
    await writeSecretFile(dir, 'DB_PASSWORD', 'mine');
    await removeSecretFiles();
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(base)).toEqual(['4242-abcdef']);
    expect(readFileSync(join(other, 'DB_PASSWORD'), 'utf8')).toBe('the other one');
  });

  it('an existing runtime directory with a loose mode is made 0700 through its descriptor; 0711 for --user', async () => {
    const base = join(work, 'loose');
    mkdirSync(base);
    chmodSync(base, 0o777);
    await prepareRuntimeDir([base], log, { explicit: true });
    expect(kind(base).mode).toBe(0o700);
    await removeSecretFiles();
    const nobody = { uid: 65534, gid: 65534 };
    const dir = await prepareRuntimeDir([base], log, { explicit: true, owner: nobody });
    expect(kind(base).mode).toBe(0o711); // the user passes through, lists nothing
    const st = lstatSync(dir);
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }).toEqual({ ...nobody, mode: 0o700 });
    const file = await writeSecretFile(dir, 'X', 'secret', 0o400, nobody);
    const fst = lstatSync(file);
    expect({ uid: fst.uid, gid: fst.gid, mode: fst.mode & 0o777 }).toEqual({ ...nobody, mode: 0o400 });
  });

  describe('an explicit directory that is not ours: exit 74, left untouched', () => {
    it('a symlink to a directory', async () => {
      const target = join(work, 'link-target');
      mkdirSync(target, { mode: 0o755 });
      const link = join(work, 'link');
      symlinkSync(target, link);
      const error = await rejected(prepareRuntimeDir([link], log, { explicit: true }));
      expect(error.code).toBe('IO');
      expect(error.message).toBe(`no usable directory for secret files: ${link} is a symbolic link`);
      expect(readdirSync(target)).toEqual([]);
      expect(kind(target).mode).toBe(0o755);
    });

    it('a directory of another user', async () => {
      const foreign = join(work, 'foreign');
      mkdirSync(foreign, { mode: 0o777 });
      chmodSync(foreign, 0o777);
      chownSync(foreign, 65534, 65534);
      const error = await rejected(prepareRuntimeDir([foreign], log, { explicit: true }));
      expect(error.message).toBe(
        `no usable directory for secret files: ${foreign} belongs to uid 65534, not to uid ${me.uid}`,
      );
      expect(kind(foreign)).toEqual({ uid: 65534, mode: 0o777, symlink: false, dir: true });
      expect(readdirSync(foreign)).toEqual([]);
    });
  });

  describe('a fallback that is planted: a fresh directory next to it, never the planted one', () => {
    it.each([
      ['a dangling symlink (to a disk location)', (p: string) => symlinkSync(join(work, 'disk', 'x'), p)],
      ['a symlink to a directory', (p: string) => symlinkSync(work, p)],
      [
        'a directory of another user',
        (p: string) => {
          mkdirSync(p);
          chownSync(p, 65534, 65534);
        },
      ],
      ['a regular file', (p: string) => writeFileSync(p, '')],
    ])('%s', async (_, plant) => {
      const parent = mkdtempSync(join(work, 'shm-'));
      const planted = join(parent, `vaultrun-${me.uid}`);
      plant(planted);
      const before = lstatSync(planted);
      const lines: string[] = [];
      const warnLog = createLogger({ level: 'warn', write: (l) => lines.push(l) });
      const dir = await prepareRuntimeDir([planted, join(work, 'never')], warnLog);
      expect(dirname(dirname(dir))).toBe(parent);
      expect(basename(dirname(dir))).toMatch(new RegExp(`^vaultrun-${me.uid}-\\w{6}$`));
      expect(kind(dirname(dir))).toEqual({ uid: me.uid, mode: 0o700, symlink: false, dir: true });
      expect(lines.join('')).toContain('runtime directory is not ours');
      expect(lines.join('')).toContain(planted);
      // The planted thing is as it was; nothing went where it points; the next candidate was not needed.
      const after = lstatSync(planted);
      expect([after.ino, after.uid, after.mode]).toEqual([before.ino, before.uid, before.mode]);
      expect(existsSync(join(work, 'disk'))).toBe(false);
      expect(existsSync(join(work, 'never'))).toBe(false);
    });
  });
});
