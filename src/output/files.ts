import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { VaultrunError } from '../errors.js';

/**
 * `resolve --output FILE`: the file is created with mode 0600 from the start (a temporary file opened with
 * O_CREAT|O_EXCL and mode 0600 in the same directory, then renamed over FILE), so no one ever sees it with
 * wider permissions or half written. An existing FILE is replaced (its old mode does not carry over); a symlink
 * at FILE is replaced, not followed.
 */
export async function writePrivateFile(path: string, text: string, origin = '--output'): Promise<void> {
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
  } catch (error) {
    if (created) await unlink(tmp).catch(() => {});
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
