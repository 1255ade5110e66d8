import {
  close,
  closeSync,
  constants,
  fstat,
  open,
  openSync,
  read,
  readFileSync,
  type Stats,
  stat,
  statSync,
} from 'node:fs';

/**
 * Reading a small local file that someone else may have put there (NAME_FILE sources, env files) without ever
 * hanging or reading without end: the path is opened (symlinks followed: Kubernetes secret volumes are
 * `..data` links), the descriptor is checked (type, size) and at most `limit` + 1 bytes are read, so a file that
 * grows meanwhile is caught as well.
 *
 * With `--user` (vaultrun root, the command another user) the path is opened **as that user** (`as`): the
 * effective uid, gid and groups are switched for the one synchronous `open` and switched back before anything
 * else runs. The kernel then checks the whole path — every directory, every symlink and the file — as it would
 * for the command, so a file source that the command swapped for a symlink to a root-only file is EACCES, not
 * the root-only file's content. What is read through the descriptor afterwards needs no identity.
 */
export class NotReadable extends Error {
  /** "is not a regular file (a FIFO…)", "is larger than 65536 bytes": completes "VARIABLE: PATH …". */
  readonly problem: string;
  constructor(problem: string) {
    super(problem);
    this.problem = problem;
  }
}

/** The --user target whose identity a file is opened with (its uid, and its gid as its only group, as the command's). */
export interface ReadAs {
  uid: number;
  gid: number;
  /** What --user said (`nobody`, `1000:1000`): for messages. */
  name: string;
}

/** vaultrun could not take on (or give back) the --user target's identity: `code` is the errno code (EPERM…). */
export class IdentitySwitchFailed extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`cannot switch the effective user: ${code}`);
    this.code = code;
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
  /** --user: open the path as this user (the kernel checks every directory and symlink on the way as for it). */
  as?: ReadAs;
}

/** Pure: the supplementary groups in /proc/self/status (`Groups:\t0 1 2 `); undefined without that line. */
export function groupsFromStatus(status: string): number[] | undefined {
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (line === undefined) return undefined;
  return line
    .slice('Groups:'.length)
    .trim()
    .split(/\s+/)
    .filter((g) => g !== '')
    .map(Number);
}

/** Our supplementary groups exactly (process.getgroups() adds the effective gid when it is not one of them). */
function currentGroups(): number[] {
  try {
    const groups = groupsFromStatus(readFileSync('/proc/self/status', 'latin1'));
    if (groups?.every((g) => Number.isInteger(g))) return groups;
  } catch {
    // no /proc: below
  }
  return process.getgroups?.() ?? [];
}

function switchStep(step: () => void): void {
  try {
    step();
  } catch (error) {
    throw new IdentitySwitchFailed((error as NodeJS.ErrnoException).code ?? 'error');
  }
}

/**
 * Runs `fn` — synchronous, so no other JavaScript runs meanwhile — with the effective uid, gid and groups of
 * `as`, and gives ours back before returning (also when it throws). glibc changes the ids of every thread of the
 * process, so `fn` must be short: libuv's pool threads run as `as` too while it runs (they can only do less).
 */
export function asUser<T>(as: ReadAs, fn: () => T): T {
  const { setegid, seteuid, setgroups, getegid, geteuid } = process;
  if (!setegid || !seteuid || !setgroups || !getegid || !geteuid) throw new IdentitySwitchFailed('ENOSYS');
  const euid = geteuid();
  const egid = getegid();
  const groups = currentGroups();
  // Groups and gid first (they need root), the uid last; given back in the reverse order.
  switchStep(() => setgroups([as.gid]));
  try {
    switchStep(() => setegid(as.gid));
    try {
      switchStep(() => seteuid(as.uid));
      try {
        return fn();
      } finally {
        switchStep(() => seteuid(euid));
      }
    } finally {
      switchStep(() => setegid(egid));
    }
  } finally {
    switchStep(() => setgroups(groups));
  }
}

// fs's callback forms on a plain descriptor (fs/promises works on FileHandles only).
const openAsync = (path: string, flags: number) =>
  new Promise<number>((ok, fail) => open(path, flags, (e, fd) => (e ? fail(e) : ok(fd))));
const fstatAsync = (fd: number) =>
  new Promise<Stats>((ok, fail) => fstat(fd, (e, st) => (e ? fail(e) : ok(st))));
const readAsync = (fd: number, buffer: Buffer, offset: number, length: number) =>
  new Promise<number>((ok, fail) => read(fd, buffer, offset, length, null, (e, n) => (e ? fail(e) : ok(n))));
const closeAsync = (fd: number) => new Promise<void>((ok, fail) => close(fd, (e) => (e ? fail(e) : ok())));
const statAsync = (path: string) =>
  new Promise<Stats>((ok, fail) => stat(path, (e, st) => (e ? fail(e) : ok(st))));

/** The descriptor for `path`, opened as `as` when given; NotReadable for a socket (ENXIO). */
async function openFor(path: string, flags: number, as: ReadAs | undefined): Promise<number> {
  if (as) {
    return asUser(as, () => {
      try {
        return openSync(path, flags);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENXIO') {
          let st: Stats | undefined;
          try {
            st = statSync(path);
          } catch {
            st = undefined;
          }
          if (st) throw new NotReadable(`is not a regular file (${kindOf(st)})`);
        }
        throw error;
      }
    });
  }
  try {
    return await openAsync(path, flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') {
      const st = await statAsync(path).catch(() => undefined);
      if (st) throw new NotReadable(`is not a regular file (${kindOf(st)})`);
    }
    throw error;
  }
}

/** `/dev/fd/N`, `/proc/self/fd/N`: a path that names one of vaultrun's own descriptors, written out. */
const OWN_DESCRIPTOR = /^\/(?:dev|proc\/self)\/fd\/\d+$/;

/** The bytes of the file at `path` (at most `limit`); NotReadable for anything else. */
export async function readLimited(
  path: string,
  limit: number,
  options: LimitedReadOptions = {},
): Promise<Buffer> {
  const { O_RDONLY, O_NOCTTY, O_NONBLOCK } = constants;
  // One of our own descriptors, named as such (`--env-file <(cmd)` arrives as /dev/fd/63): whoever started
  // vaultrun gave it, the --user target can change neither it nor /dev and /proc; read as vaultrun (the pipe
  // belongs to vaultrun's user, the target could not open it).
  const as = OWN_DESCRIPTOR.test(path) ? undefined : options.as;
  // O_NONBLOCK: opening a FIFO without a writer returns at once (it is refused below) instead of waiting. As the
  // --user target always: its identity is never held while waiting for a writer.
  const nonBlocking = as !== undefined || !options.allowFifo;
  let fd = await openFor(path, O_RDONLY | O_NOCTTY | (nonBlocking ? O_NONBLOCK : 0), as);
  try {
    const st = await fstatAsync(fd);
    if (!st.isFile() && !(options.allowFifo && st.isFIFO()))
      throw new NotReadable(`is not a regular file (${kindOf(st)})`);
    if (st.size > limit) throw new NotReadable(`is larger than ${limit} bytes`);
    if (st.isFIFO() && nonBlocking) {
      // A pipe the --user target may read (it opened it): read to its end, waiting for the writer, through a
      // blocking descriptor on the very same pipe (the one held open names it; no path is looked up again).
      const blocking = await openAsync(`/proc/self/fd/${fd}`, O_RDONLY | O_NOCTTY);
      closeSync(fd);
      fd = blocking;
    }
    const buffer = Buffer.alloc(limit + 1);
    let total = 0;
    while (total < buffer.length) {
      const bytesRead = await readAsync(fd, buffer, total, buffer.length - total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > limit) throw new NotReadable(`is larger than ${limit} bytes`);
    return buffer.subarray(0, total);
  } finally {
    await closeAsync(fd);
  }
}

/**
 * Why a read as the --user target failed, when that is the reason (completes "WHAT PATH …"): EACCES (the user
 * may not read the file, or a directory or link on the way) or an identity that could not be switched to.
 * Undefined for every other error (ENOENT…), which reads as it does without --user.
 */
export function readAsProblem(
  error: unknown,
  as: ReadAs | undefined,
): { problem: string; hint: string } | undefined {
  if (!as) return undefined;
  const who = `the --user target ${as.name} (uid ${as.uid}, gid ${as.gid})`;
  if (error instanceof IdentitySwitchFailed) {
    return {
      problem: `cannot be read as ${who}: ${error.code}`,
      hint: 'with --user, vaultrun reads it as that user: it needs CAP_SETUID and CAP_SETGID (as it does to start the command)',
    };
  }
  if ((error as NodeJS.ErrnoException).code === 'EACCES') {
    return {
      problem: `is not readable by ${who}: EACCES`,
      hint: 'with --user, vaultrun reads it as that user, as the command would: the file, and every directory and symbolic link on the way, must be readable by that user',
    };
  }
  return undefined;
}
