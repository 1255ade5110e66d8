import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Secret files for `NAME_FILE=vault:…`: mode 0400 in a private directory (0700, owned by us, not a symlink).
 * Default directory /run/vaultrun; when it cannot be used (read-only root, not root) and it was not set
 * explicitly, the fallbacks are $XDG_RUNTIME_DIR/vaultrun, /dev/shm/vaultrun-UID (both memory-backed), then
 * $TMPDIR/vaultrun-UID. An explicitly set directory has no fallback: it works or vaultrun fails.
 * Files are written atomically (temporary file + rename), so a reader never sees half a secret.
 */
export const DEFAULT_RUNTIME_DIR = '/run/vaultrun';

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

/** The user the command runs as (--user): secret files and their directory belong to it. */
export interface Owner {
  uid: number;
  gid: number;
}

async function ensurePrivateDir(dir: string, owner?: Owner): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory() || st.isSymbolicLink())
    throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  if (st.uid !== uid() && st.uid !== owner?.uid) {
    throw Object.assign(new Error('owned by another user'), { code: 'EPERM' });
  }
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) await chown(dir, owner.uid, owner.gid);
}

export function runtimeDirCandidates(
  configured: string | undefined,
  env: Readonly<Record<string, string>>,
): string[] {
  if (configured) return [configured];
  const candidates = [DEFAULT_RUNTIME_DIR];
  if (env.XDG_RUNTIME_DIR) candidates.push(join(env.XDG_RUNTIME_DIR, 'vaultrun'));
  candidates.push(`/dev/shm/vaultrun-${uid()}`, join(tmpdir(), `vaultrun-${uid()}`));
  return candidates;
}

/** The first usable private directory of the candidates. */
export async function prepareRuntimeDir(
  candidates: readonly string[],
  log: Logger,
  owner?: Owner,
): Promise<string> {
  const failures: string[] = [];
  for (const dir of candidates) {
    try {
      await ensurePrivateDir(dir, owner);
      if (failures.length) log.debug('using fallback runtime directory', { dir, tried: failures.join(', ') });
      return dir;
    } catch (error) {
      failures.push(`${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  throw new VaultrunError('IO', `no usable directory for secret files: ${failures.join(', ')}`, {
    hint: 'set VAULTRUN_RUNTIME_DIR / --runtime-dir to a writable directory (ideally on tmpfs)',
  });
}

/** A file name for a variable: DB_PASSWORD_FILE → DB_PASSWORD. */
export function secretFileName(variable: string): string {
  const base = variable.endsWith('_FILE') ? variable.slice(0, -'_FILE'.length) : variable;
  return base.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_') || '_';
}

/** Atomic write with the given mode (default 0400); returns the final path. */
export async function writeSecretFile(
  dir: string,
  name: string,
  content: string,
  mode = 0o400,
  owner?: Owner,
): Promise<string> {
  const target = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(content, 'utf8');
      if (owner) await handle.chown(owner.uid, owner.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
    return target;
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new VaultrunError(
      'IO',
      `cannot write secret file ${target}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        hint: 'check VAULTRUN_RUNTIME_DIR',
      },
    );
  }
}
