import { constants } from 'node:fs';
import { type FileHandle, lstat, open, stat, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The secret_id file under `--delete-secret-id-file`: read so that the deletion after the login removes the
 * very file that was read, and with it the last copy of the secret_id in the container.
 *
 *  - Its directory is opened once (O_DIRECTORY; symlinks on the way to it are followed, as for any path) and
 *    every later step goes through that descriptor (/proc/self/fd/N/NAME, Linux's openat), so renaming a
 *    parent directory between the read and the deletion redirects nothing.
 *  - The file itself is opened with O_NOFOLLOW: a symlink is refused before the login (exit 74) — unlinking it
 *    would remove the link and leave the file it points to, secret_id and all. O_NONBLOCK, so a FIFO planted
 *    there cannot hang the start; the descriptor must be a regular file with one name (a second hard link
 *    would keep the secret_id readable after the deletion).
 *  - Its device and inode are kept. After the login the name is looked at again (lstat through the directory's
 *    descriptor): only if it is still that file is it unlinked; otherwise nothing is deleted and vaultrun warns.
 *
 * What remains: between that last lstat and the unlink, someone who can write the directory could rename
 * another file into the name (a sticky directory such as /tmp prevents that for a file we own). Keep the file
 * in a directory only vaultrun's user can write.
 */
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

const SETTING = 'VAULT_SECRET_ID_FILE';

export interface SecretIdFile {
  /** The secret_id (or its wrapping token), trimmed. */
  readonly value: string;
  /** After a successful login: unlinks the file if its name still refers to the file read. Closes. */
  remove(log: Logger): Promise<void>;
  /** Releases the directory's descriptor without deleting anything (a failed login). */
  close(): Promise<void>;
}

function ioError(message: string, hint: string): VaultrunError {
  return new VaultrunError('IO', message, { hint });
}

function errno(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'error';
}

export async function openSecretIdFile(path: string): Promise<SecretIdFile> {
  const readable = 'check the path and that the file is readable by this user';
  let dir: FileHandle;
  try {
    dir = await open(dirname(path), O_RDONLY | O_DIRECTORY);
  } catch (error) {
    throw ioError(`cannot open the directory of ${SETTING} ${path}: ${errno(error)}`, readable);
  }
  try {
    const dirStat = await dir.stat();
    const proc = await stat(`/proc/self/fd/${dir.fd}`).catch(() => undefined);
    const viaProc = proc !== undefined && proc.dev === dirStat.dev && proc.ino === dirStat.ino;
    const entry = viaProc ? `/proc/self/fd/${dir.fd}/${basename(path)}` : path;

    let file: FileHandle;
    try {
      file = await open(entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    } catch (error) {
      const code = errno(error);
      // Linux says ELOOP for O_NOFOLLOW on a symlink (the BSDs EMLINK).
      if (code === 'ELOOP' || code === 'EMLINK') {
        throw ioError(
          `${SETTING} ${path} is a symbolic link: --delete-secret-id-file would delete only the link and leave ` +
            'the file it points to, with a usable secret_id',
          `point ${SETTING} at the file itself (not a link to it), or drop --delete-secret-id-file`,
        );
      }
      throw ioError(`cannot read ${SETTING} file ${path}: ${code}`, readable);
    }
    let text: string;
    let dev: number;
    let ino: number;
    try {
      const st = await file.stat();
      if (!st.isFile()) {
        throw ioError(
          `${SETTING} ${path} is not a regular file: --delete-secret-id-file deletes a regular file only`,
          `point ${SETTING} at a regular file, or drop --delete-secret-id-file`,
        );
      }
      if (st.nlink !== 1) {
        throw ioError(
          `${SETTING} ${path} has ${st.nlink} names (hard links): --delete-secret-id-file would delete one and ` +
            'leave the secret_id readable under the others',
          `give ${SETTING} a file with a single name, or drop --delete-secret-id-file`,
        );
      }
      ({ dev, ino } = st);
      text = await file.readFile('utf8').catch((error: unknown) => {
        throw ioError(`cannot read ${SETTING} file ${path}: ${errno(error)}`, readable);
      });
    } finally {
      await file.close();
    }
    const value = text.trim();
    if (value === '') throw new VaultrunError('LOGIN_FAILED', `${SETTING} file ${path} is empty`);

    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await dir.close();
    };
    return {
      value,
      close,
      async remove(log: Logger): Promise<void> {
        try {
          const now = await lstat(entry).catch((error: unknown) => error as NodeJS.ErrnoException);
          if (now instanceof Error) {
            log.warn('could not delete the secret_id file: it is no longer there', {
              file: path,
              error: errno(now),
            });
          } else if (now.dev !== dev || now.ino !== ino) {
            log.warn(
              'did not delete the secret_id file: its name no longer refers to the file vaultrun read (it was replaced)',
              {
                file: path,
                hint: 'the file read may still exist elsewhere: check who can write its directory',
              },
            );
          } else {
            await unlink(entry).then(
              () => log.debug('deleted the secret_id file after logging in with it', { file: path }),
              (error: unknown) =>
                log.warn('could not delete the secret_id file', { file: path, error: errno(error) }),
            );
          }
        } finally {
          await close();
        }
      },
    };
  } catch (error) {
    await dir.close();
    throw error;
  }
}
