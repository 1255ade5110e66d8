import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { isCredential } from '../settings.js';

/**
 * Our credentials must not be recoverable from what the kernel shows about vaultrun under /proc/<pid>/ to a
 * process of the same uid — the command, in resident mode. Two holes, two measures:
 *
 * - /proc/<pid>/environ is the initial environment block on our stack (env_start..env_end in
 *   /proc/self/stat), not what getenv() sees now. `delete process.env.X` alone leaves the bytes there. A
 *   process may always write its own memory through /proc/self/mem, so every credential entry (`NAME=value`)
 *   is overwritten with NUL bytes in place, after `delete process.env.X` took it out of environ[].
 * - /proc/<pid>/mem (our heap holds the credentials and the token) is readable by the same uid while we are
 *   "dumpable". As root, any change of the effective gid makes the kernel mark the process non-dumpable for
 *   the rest of its life (commit_creds), so it is changed and changed back. A non-root process cannot do that;
 *   an executable installed execute-only (mode 0711) starts non-dumpable (see the threat model in the docs).
 *
 * Called once, at start, before any child exists and before anything else reads the credentials from
 * process.env (callers work on a copy). Cheap: one read of /proc/self/stat and of the block (a few KiB).
 */
export interface Concealed {
  /** Credential variables taken out of process.env (names only). */
  removed: string[];
  /** The environment block was rewritten in place. */
  blockScrubbed: boolean;
  /** Why the block could not be rewritten (errno code), when it could not. */
  blockError?: string;
  /** /proc/self is owned by root while we run as another uid: the kernel hides it from our uid. */
  nonDumpable: boolean;
}

/** Fields 50 and 51 of /proc/self/stat (env_start, env_end), counted after the parenthesised comm. */
export function environBounds(stat: string): { start: number; end: number } | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state).
  const start = Number(rest[50 - 3]);
  const end = Number(rest[51 - 3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start) {
    return undefined;
  }
  return { start, end };
}

/**
 * Pure: the byte ranges (offsets into the block) of the entries whose name matches, `NAME=value` whole. An
 * entry already blanked (NUL bytes) is not an entry any more.
 */
export function entriesToBlank(block: Buffer, matches: (name: string) => boolean): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let offset = 0;
  while (offset < block.length) {
    let end = block.indexOf(0, offset);
    if (end < 0) end = block.length;
    if (end > offset) {
      const eq = block.indexOf(0x3d, offset); // '='
      if (eq > offset && eq < end && matches(block.toString('latin1', offset, eq))) out.push([offset, end]);
    }
    offset = end + 1;
  }
  return out;
}

function scrubBlock(matches: (name: string) => boolean): void {
  const bounds = environBounds(readFileSync('/proc/self/stat', 'latin1'));
  if (!bounds)
    throw Object.assign(new Error('no environment bounds in /proc/self/stat'), { code: 'ENODATA' });
  const fd = openSync('/proc/self/mem', 'r+');
  try {
    const block = Buffer.alloc(bounds.end - bounds.start);
    readSync(fd, block, 0, block.length, bounds.start);
    for (const [from, to] of entriesToBlank(block, matches)) {
      writeSync(fd, Buffer.alloc(to - from), 0, to - from, bounds.start + from);
    }
  } finally {
    closeSync(fd);
  }
}

/** As root: change the effective gid and back; the kernel then keeps us non-dumpable until exec. */
function dropDumpable(): void {
  if (process.geteuid?.() !== 0 || !process.setegid || !process.getegid) return;
  const gid = process.getegid();
  // In a user namespace only mapped ids work: try a few.
  for (const other of [65534, 1, 2, 65533]) {
    if (other === gid) continue;
    try {
      process.setegid(other);
    } catch {
      continue;
    }
    process.setegid(gid);
    return;
  }
}

function isNonDumpable(): boolean {
  try {
    const fd = openSync('/proc/self/stat', 'r');
    try {
      // /proc/<pid>/ of a non-dumpable process belongs to root (task_dump_owner).
      return fstatSync(fd).uid === 0 && process.geteuid?.() !== 0;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export function concealCredentials(
  env: NodeJS.ProcessEnv = process.env,
  matches: (name: string) => boolean = isCredential,
): Concealed {
  const removed = Object.keys(env).filter(matches).sort();
  for (const name of removed) delete env[name];
  const result: Concealed = { removed, blockScrubbed: false, nonDumpable: false };
  if (process.platform === 'linux') {
    try {
      scrubBlock(matches);
      result.blockScrubbed = true;
    } catch (error) {
      result.blockError = (error as NodeJS.ErrnoException).code ?? 'error';
    }
    dropDumpable();
    result.nonDumpable = isNonDumpable();
  }
  return result;
}
