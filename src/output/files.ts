import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VaultrunError } from '../errors.js';

/** What lstat says the output path is: decides how --output treats it. */
export type OutputKind = 'missing' | 'file' | 'symlink' | 'directory' | 'fifo' | 'char' | 'block' | 'socket';

export function outputKind(st: Stats | undefined): OutputKind {
  if (!st) return 'missing';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/**
 * Pure: what `--output PATH` does with what is there.
 *  - missing or a regular file → `replace`: a temporary file opened O_CREAT|O_EXCL with mode 0600 in the same
 *    directory, renamed over PATH (no one ever sees it with wider permissions or half written; an existing
 *    file's old mode does not carry over).
 *  - a FIFO or a character device (/dev/null, a terminal) → `through`: opened O_WRONLY|O_NOFOLLOW without
 *    O_CREAT, checked again on the descriptor, written to; never replaced.
 *  - a symbolic link → refused (exit 64), also /dev/stdout: as root, a link planted by another user would send
 *    the secrets wherever it points. Give the target path, or leave --output out to write to stdout.
 *  - a directory, a block device, a socket → refused (exit 64).
 */
export function outputAction(kind: OutputKind): 'replace' | 'through' | { refuse: string } {
  switch (kind) {
    case 'missing':
    case 'file':
      return 'replace';
    case 'fifo':
    case 'char':
      return 'through';
    case 'symlink':
      return {
        refuse:
          'is a symbolic link: not followed (give the path it points to, or leave --output out to write to stdout)',
      };
    case 'directory':
      return { refuse: 'is a directory: give a file name' };
    case 'block':
      return { refuse: 'is a block device: refusing to write secrets to it' };
    case 'socket':
      return { refuse: 'is a socket: give a file name' };
  }
}

async function writeThrough(path: string, text: string, origin: string, expected: Stats): Promise<void> {
  const { O_WRONLY, O_NOFOLLOW, O_NOCTTY } = constants;
  // A FIFO waits here for its reader, as `echo > fifo` does.
  const handle = await open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY);
  try {
    const st = await handle.stat();
    if (st.dev !== expected.dev || st.ino !== expected.ino || !(st.isFIFO() || st.isCharacterDevice())) {
      throw new VaultrunError('IO', `${origin}: ${path} was replaced while being opened`, {
        hint: 'the directory of --output must not be writable by other users',
      });
    }
    await handle.writeFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}

async function replaceFile(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    created = true;
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    created = false;
  } finally {
    if (created) await unlink(tmp).catch(() => {});
  }
}

/** `resolve --output FILE` (see outputAction for what happens with what is at FILE). */
export async function writePrivateFile(path: string, text: string, origin = '--output'): Promise<void> {
  try {
    const st = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const action = outputAction(outputKind(st));
    if (typeof action === 'object') {
      throw new VaultrunError('USAGE', `${origin}: ${path} ${action.refuse}`, {
        hint: 'vaultrun writes --output to a regular file (replaced atomically), a FIFO or a character device',
      });
    }
    if (action === 'through' && st) await writeThrough(path, text, origin, st);
    else await replaceFile(path, text);
  } catch (error) {
    if (error instanceof VaultrunError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError('IO', `${origin}: cannot write ${path}: ${code}`, {
      hint: 'the directory must exist and be writable by this user',
    });
  }
}

/** Appends to a file ($GITHUB_ENV, which the runner creates); created with mode 0600 if missing. */
export async function appendExisting(path: string, text: string, origin: string): Promise<void> {
  try {
    const handle = await open(path, 'a', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError('IO', `${origin}: cannot append to ${path}: ${code}`);
  }
}
