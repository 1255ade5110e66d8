// `resolve --output PATH` onto what is already there: a regular file is replaced atomically (0600); a FIFO or a
// character device is written through, never replaced; a symlink, a directory, a socket or a block device is
// refused (exit 64) and left exactly as it was.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OutputKind, outputAction, writePrivateFile } from '../../src/output/files.js';
import { rejected } from '../support/errors.js';

describe('outputAction', () => {
  it.each<[OutputKind, string]>([
    ['missing', 'replace'],
    ['file', 'replace'],
    ['fifo', 'through'],
    ['char', 'through'],
    ['symlink', 'refuse'],
    ['directory', 'refuse'],
    ['block', 'refuse'],
    ['socket', 'refuse'],
  ])('%s → %s', (kind, expected) => {
    const action = outputAction(kind);
    expect(typeof action === 'object' ? 'refuse' : action).toBe(expected);
  });
});

describe('writePrivateFile (--output)', () => {
  let dir: string;
  let server: Server;
  const TEXT = 'A=1\nB=2\n';
  const FAST = 5_000;
  /** Everything about a path that a replacement would change. */
  const identity = (p: string) => {
    const st = lstatSync(p);
    return { ino: st.ino, mode: st.mode, uid: st.uid, rdev: st.rdev };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vaultrun-output-'));
    server = createServer();
    await new Promise<void>((resolve) => server.listen(join(dir, 'socket'), resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new file: created 0600 with the text', async () => {
    const file = join(dir, 'new.env');
    await writePrivateFile(file, TEXT);
    expect(readFileSync(file, 'utf8')).toBe(TEXT);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
  });

  it('an existing regular file: replaced (0600, whatever its mode was), no temporary file left', async () => {
    const sub = join(dir, 'regular');
    mkdirSync(sub);
    const file = join(sub, 'app.env');
    writeFileSync(file, 'old');
    chmodSync(file, 0o644);
    await writePrivateFile(file, TEXT);
    expect(readFileSync(file, 'utf8')).toBe(TEXT);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(sub)).toEqual(['app.env']);
  });

  it(
    'a FIFO: written through to its reader, still the same FIFO afterwards',
    async () => {
      const fifo = join(dir, 'out.fifo');
      execFileSync('mkfifo', [fifo]);
      const before = identity(fifo);
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
      let got = '';
      reader.stdout.on('data', (chunk: Buffer) => {
        got += chunk.toString('utf8');
      });
      const exited = new Promise((resolve) => reader.on('exit', resolve));
      await writePrivateFile(fifo, TEXT);
      expect(await exited).toBe(0);
      expect(got).toBe(TEXT);
      expect(identity(fifo)).toEqual(before);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
    },
    FAST,
  );

  // Never the real /dev/null or /dev/stdout: a writer that replaces what it finds (the old code did) would
  // break the whole machine. A private null device and a private stdout-like link stand in for them.
  it('a character device (a private /dev/null): written through, not replaced', async () => {
    const device = join(dir, 'null');
    execFileSync('mknod', ['-m', '666', device, 'c', '1', '3']);
    const before = identity(device);
    await writePrivateFile(device, TEXT);
    expect(identity(device)).toEqual(before);
    expect(lstatSync(device).isCharacterDevice()).toBe(true);
  });

  describe('refused with exit 64 naming the flag and the path, left as it was', () => {
    it('a symlink (to a file another user could have chosen): not followed, not replaced', async () => {
      const target = join(dir, 'victim');
      writeFileSync(target, 'victim content');
      chmodSync(target, 0o644);
      const link = join(dir, 'link.env');
      symlinkSync(target, link);
      const before = { link: identity(link), target: identity(target) };
      const error = await rejected(writePrivateFile(link, TEXT));
      expect(error.code).toBe('USAGE');
      expect(error.exitCode).toBe(64);
      expect(error.message).toBe(
        `--output: ${link} is a symbolic link: not followed (give the path it points to, or leave --output out to write to stdout)`,
      );
      expect({ link: identity(link), target: identity(target) }).toEqual(before);
      expect(readlinkSync(link)).toBe(target);
      expect(readFileSync(target, 'utf8')).toBe('victim content');
    });

    it('a dangling symlink: nothing is created where it points', async () => {
      const link = join(dir, 'dangling.env');
      symlinkSync(join(dir, 'nowhere', 'x'), link);
      const error = await rejected(writePrivateFile(link, TEXT));
      expect(error.message).toContain('is a symbolic link');
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
    });

    it('a link like /dev/stdout (to /proc/self/fd/1): refused, the hint says to leave --output out', async () => {
      const stdout = join(dir, 'stdout');
      symlinkSync('/proc/self/fd/1', stdout);
      const error = await rejected(writePrivateFile(stdout, TEXT));
      expect(error.exitCode).toBe(64);
      expect(error.message).toContain('leave --output out to write to stdout');
      expect(readlinkSync(stdout)).toBe('/proc/self/fd/1');
    });

    it.each<[string, () => string, string]>([
      ['a directory', () => join(dir, 'a-dir'), 'is a directory: give a file name'],
      ['a socket', () => join(dir, 'socket'), 'is a socket: give a file name'],
    ])('%s', async (_, path, problem) => {
      mkdirSync(join(dir, 'a-dir'), { recursive: true });
      const before = identity(path());
      const error = await rejected(writePrivateFile(path(), TEXT));
      expect(error.exitCode).toBe(64);
      expect(error.message).toBe(`--output: ${path()} ${problem}`);
      expect(identity(path())).toEqual(before);
    });
  });
});
