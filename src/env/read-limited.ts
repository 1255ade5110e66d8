import { constants, type Stats } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';

/**
 * Reading a small local file that someone else may have put there (NAME_FILE sources, env files) without ever
 * hanging or reading without end: the path is opened (symlinks followed: Kubernetes secret volumes are
 * `..data` links), the descriptor is checked (type, size) and at most `limit` + 1 bytes are read, so a file that
 * grows meanwhile is caught as well.
 */
export class NotReadable extends Error {
  /** "is not a regular file (a FIFO…)", "is larger than 65536 bytes": completes "VARIABLE: PATH …". */
  readonly problem: string;
  constructor(problem: string) {
    super(problem);
    this.problem = problem;
  }
}

function kindOf(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'of an unknown type';
}

export interface LimitedReadOptions {
  /** Accept a pipe (read until its writer closes it); else a FIFO is refused before any read. */
  allowFifo?: boolean;
}

/** The bytes of the file at `path` (at most `limit`); NotReadable for anything else. */
export async function readLimited(
  path: string,
  limit: number,
  options: LimitedReadOptions = {},
): Promise<Buffer> {
  const { O_RDONLY, O_NOCTTY, O_NONBLOCK } = constants;
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO without a writer returns at once (it is refused below) instead of waiting.
    handle = await open(path, O_RDONLY | O_NOCTTY | (options.allowFifo ? 0 : O_NONBLOCK));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') {
      const st = await stat(path).catch(() => undefined);
      if (st) throw new NotReadable(`is not a regular file (${kindOf(st)})`);
    }
    throw error;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() && !(options.allowFifo && st.isFIFO()))
      throw new NotReadable(`is not a regular file (${kindOf(st)})`);
    if (st.size > limit) throw new NotReadable(`is larger than ${limit} bytes`);
    const buffer = Buffer.alloc(limit + 1);
    let total = 0;
    while (total < buffer.length) {
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > limit) throw new NotReadable(`is larger than ${limit} bytes`);
    return buffer.subarray(0, total);
  } finally {
    await handle.close();
  }
}
