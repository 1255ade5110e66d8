import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, mkdtemp, open, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Secret files for `NAME_FILE=vault:…`. Layout: BASE/RUN/NAME, where
 *  - BASE is the runtime directory (default /run/vaultrun; fallbacks when it cannot be used and it was not set
 *    explicitly: $XDG_RUNTIME_DIR/vaultrun, /dev/shm/vaultrun-UID — both memory-backed —, then
 *    $TMPDIR/vaultrun-UID). It must belong to the user vaultrun runs as; mode 0700, or 0711 when a `--user`
 *    must be able to pass through it (never listable by others).
 *  - RUN is this process's own directory, made fresh (mkdtemp) at its first secret file: two vaultrun processes
 *    sharing BASE (several services in one container, a sidecar) never touch each other's files, and each one
 *    removes only its own. 0700, owned by the `--user` target (else by us).
 *  - NAME is injective in the variable (see secretFileName), 0400, written atomically (temporary file + rename).
 *
 * Race-free against whoever controls a parent directory (the `--user` target, any local user in /dev/shm or
 * /tmp): directories are opened with O_DIRECTORY|O_NOFOLLOW and checked (type, owner) on the descriptor; every
 * later operation goes through that descriptor — mode and owner with fchmod/fchown, entries through
 * /proc/self/fd/N/NAME, Linux's openat — so swapping a path for a symlink after the check redirects nothing.
 * Files are created with O_CREAT|O_EXCL|O_NOFOLLOW. A path of ours is never chmod/chown-ed by name.
 *
 * A fallback directory that exists but is not ours (another user's, a symlink — dangling or not — or not a
 * directory) is left untouched and a fresh unpredictable directory is made next to it (mkdtemp: BASE-XXXXXX),
 * with a warning: a planted name can never redirect secrets elsewhere (say from /dev/shm to a disk). An
 * explicitly set directory has no fallback: it works or vaultrun fails (exit 74).
 */
export const DEFAULT_RUNTIME_DIR = '/run/vaultrun';

const { O_RDONLY, O_WRONLY, O_DIRECTORY, O_NOFOLLOW, O_CREAT, O_EXCL } = constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : 0;
}

/** The user the command runs as (--user): secret files and their directory belong to it. */
export interface Owner {
  uid: number;
  gid: number;
}

/** A directory opened and checked: every operation inside it goes through the descriptor. */
interface OpenedDir {
  /** The path it was opened by (what the command is told). */
  path: string;
  handle: FileHandle;
  dev: number;
  ino: number;
  /** /proc/self/fd/N works: entries are reached through the descriptor, not the path. */
  viaProc: boolean;
}

/** Why a directory was refused; `code` goes into the list of candidates tried. */
class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The place exists but is not ours (planted, stale, a symlink): a fresh directory next to it is made. */
    readonly foreign: boolean,
  ) {
    super(message);
  }
}

/** The entry NAME of an opened directory, as a path that cannot be redirected by a rename of its parents. */
function at(dir: OpenedDir, name: string): string {
  return dir.viaProc ? `/proc/self/fd/${dir.handle.fd}/${name}` : join(dir.path, name);
}

async function kindOf(path: string): Promise<string> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 'was removed while being opened';
  if (st.isSymbolicLink()) return 'is a symbolic link';
  return st.isDirectory() ? 'is not a directory that can be opened' : 'is not a directory';
}

/** Opens a directory (never through a final symlink) and checks on the descriptor that it is ours. */
async function openOwnDir(path: string, openPath = path): Promise<OpenedDir> {
  let handle: FileHandle;
  try {
    handle = await open(openPath, DIR_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENOENT') {
      throw new Refused('ENOTDIR', `${path} ${await kindOf(openPath)}`, true);
    }
    throw new Refused(code, `${path} (${code})`, false);
  }
  try {
    const st = await handle.stat();
    if (!st.isDirectory()) throw new Refused('ENOTDIR', `${path} is not a directory`, true);
    if (st.uid !== uid()) {
      throw new Refused('EPERM', `${path} belongs to uid ${st.uid}, not to uid ${uid()}`, true);
    }
    const proc = await stat(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    const viaProc = proc !== undefined && proc.dev === st.dev && proc.ino === st.ino;
    return { path, handle, dev: st.dev, ino: st.ino, viaProc };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** BASE: created if missing, opened, checked, its mode set on the descriptor. */
async function openBase(path: string, owner: Owner | undefined): Promise<OpenedDir> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await mkdir(path, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'EEXIST') throw new Refused(code, `${path} (${code})`, false);
  }
  const dir = await openOwnDir(path);
  try {
    const mode = (await dir.handle.stat()).mode & 0o7777;
    // 0711 when a --user must pass through; never narrowed back to 0700 (another vaultrun may need it).
    const wanted = owner && owner.uid !== uid() ? 0o711 : mode === 0o711 ? 0o711 : 0o700;
    if (mode !== wanted) await dir.handle.chmod(wanted);
    return dir;
  } catch (error) {
    await dir.handle.close();
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new Refused(code, `${path} (${code})`, false);
  }
}

/** RUN: this process's own directory in BASE, made by mkdtemp through the descriptor, then given to owner. */
async function makeRunDir(base: OpenedDir, owner: Owner | undefined): Promise<OpenedDir> {
  const made = await mkdtemp(at(base, `${process.pid}-`));
  const name = basename(made);
  const run = await openOwnDir(join(base.path, name), at(base, name));
  try {
    if (owner && (owner.uid !== uid() || owner.gid !== (process.getgid?.() ?? 0))) {
      await run.handle.chown(owner.uid, owner.gid);
    }
    await run.handle.chmod(0o700);
  } catch (error) {
    await run.handle.close();
    throw error;
  }
  return run;
}

interface RunDir {
  base: OpenedDir;
  run: OpenedDir;
  /** File names written (removed on clean-up). */
  written: Set<string>;
}

/** This process's secret directories, by the path handed out (one per candidate list and owner). */
const runDirs = new Map<string, RunDir>();
const byCandidates = new Map<string, string>();

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

export interface PrepareOptions {
  owner?: Owner;
  /** Set by --runtime-dir / VAULTRUN_RUNTIME_DIR: no fallback, no fresh directory next to it. */
  explicit?: boolean;
}

/**
 * This process's own private directory (BASE/RUN) in the first usable candidate; the same one for every call
 * of the process (rotation rewrites its files in place).
 */
export async function prepareRuntimeDir(
  candidates: readonly string[],
  log: Logger,
  options: PrepareOptions = {},
): Promise<string> {
  const { owner, explicit = false } = options;
  const key = JSON.stringify([candidates, owner ?? null]);
  const known = byCandidates.get(key);
  if (known !== undefined && runDirs.has(known)) return known;
  const failures: string[] = [];
  for (const dir of candidates) {
    let base: OpenedDir;
    try {
      base = await openBase(dir, owner);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      failures.push(`${dir} (${error.code})`);
      if (explicit) {
        throw new VaultrunError('IO', `no usable directory for secret files: ${error.message}`, {
          hint: error.foreign
            ? 'the runtime directory must belong to the user vaultrun runs as; remove it or choose another --runtime-dir'
            : 'set VAULTRUN_RUNTIME_DIR / --runtime-dir to a writable directory (ideally on tmpfs)',
        });
      }
      if (!error.foreign) continue;
      // Planted or stale: never used, never changed; a fresh unpredictable directory next to it instead.
      try {
        const fresh = await mkdtemp(`${dir}-`);
        base = await openBase(fresh, owner);
        log.warn('runtime directory is not ours: left untouched, using a fresh one next to it', {
          dir,
          reason: error.message,
          using: fresh,
        });
      } catch (freshError) {
        const code = (freshError as NodeJS.ErrnoException).code ?? 'error';
        failures.push(`${dir}-XXXXXX (${code})`);
        continue;
      }
    }
    try {
      const run = await makeRunDir(base, owner);
      runDirs.set(run.path, { base, run, written: new Set() });
      byCandidates.set(key, run.path);
      if (failures.length) log.debug('using fallback runtime directory', { dir, tried: failures.join(', ') });
      return run.path;
    } catch (error) {
      await base.handle.close();
      const code = (error as NodeJS.ErrnoException).code ?? (error instanceof Refused ? error.code : 'error');
      failures.push(`${dir} (${code})`);
      if (explicit) break;
    }
  }
  throw new VaultrunError('IO', `no usable directory for secret files: ${failures.join(', ')}`, {
    hint: 'set VAULTRUN_RUNTIME_DIR / --runtime-dir to a writable directory (ideally on tmpfs)',
  });
}

/**
 * A file name for a variable, injective and safe: DB_PASSWORD_FILE → DB_PASSWORD. The `_FILE` suffix is
 * dropped; letters A–Z, digits and `_` stay; every other byte (UTF-8) becomes `%XX` (upper-case hex), `%`
 * itself included. So distinct variables never share a file — also on a case-insensitive filesystem, since
 * the result has no lower-case letter —, and no name contains `/`, starts with `.` or is `.`/`..`.
 */
export function secretFileName(variable: string): string {
  const isFileVar = variable.endsWith('_FILE');
  const base = isFileVar ? variable.slice(0, -'_FILE'.length) : variable;
  let out = '';
  for (const byte of Buffer.from(base, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Z0-9_]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // A lone trailing `%` (never made by an escape) marks a name without `_FILE`; `%-` is the empty one.
  if (!isFileVar) out += '%';
  return out === '' ? '%-' : out;
}

async function runDirOf(dir: string): Promise<RunDir> {
  const known = runDirs.get(dir);
  if (known) return known;
  // A directory not prepared by this process (library use): opened and checked the same way.
  try {
    const run = await openOwnDir(dir);
    const entry = { base: run, run, written: new Set<string>() };
    runDirs.set(dir, entry);
    return entry;
  } catch (error) {
    if (error instanceof Refused) {
      throw new VaultrunError('IO', `cannot write secret files: ${error.message}`, {
        hint: 'check VAULTRUN_RUNTIME_DIR',
      });
    }
    throw error;
  }
}

/** Atomic write with the given mode (default 0400) in a directory from prepareRuntimeDir; the final path. */
export async function writeSecretFile(
  dir: string,
  name: string,
  content: string | Uint8Array,
  mode = 0o400,
  owner?: Owner,
): Promise<string> {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new VaultrunError('INTERNAL', `unsafe secret file name "${name}"`);
  }
  const { run, written } = await runDirOf(dir);
  const target = join(dir, name);
  const temp = `.${name}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    const handle = await open(at(run, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    created = true;
    let ino: number;
    try {
      // Text as UTF-8; bytes (a base64-decoded keystore) exactly as they are.
      await handle.writeFile(content, typeof content === 'string' ? 'utf8' : undefined);
      if (owner) await handle.chown(owner.uid, owner.gid);
      await handle.chmod(mode);
      await handle.sync();
      ino = (await handle.stat()).ino;
    } finally {
      await handle.close();
    }
    await rename(at(run, temp), at(run, name));
    created = false;
    written.add(name);
    // The path the command is given must lead to this very file (a parent swapped by someone would not).
    const seen = await lstat(target).catch(() => undefined);
    if (!seen || seen.ino !== ino || seen.dev !== run.dev || !seen.isFile()) {
      written.delete(name);
      await unlink(at(run, name)).catch(() => {});
      throw new VaultrunError('IO', `secret file ${target}: the path no longer leads to the file written`, {
        hint: 'a parent of the runtime directory was replaced meanwhile: it must not be writable by other users',
      });
    }
    return target;
  } catch (error) {
    if (created) await unlink(at(run, temp)).catch(() => {});
    if (error instanceof VaultrunError) throw error;
    if (await forgetIfRemoved(dir)) {
      throw new VaultrunError('IO', `cannot write secret file ${target}: its directory was removed`, {
        hint: 'something removed the runtime directory while vaultrun ran: a new one is made at the next attempt',
      });
    }
    throw new VaultrunError(
      'IO',
      `cannot write secret file ${target}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        hint: 'check VAULTRUN_RUNTIME_DIR (its parent directories must not be writable by other users)',
      },
    );
  }
}

/**
 * A run directory that someone removed (its descriptor still open, no name left): forgotten, with its
 * descriptors closed, so that the next prepareRuntimeDir makes a new one (checked like the first). A resident
 * vaultrun whose directory was removed then writes the next change's files there, instead of failing for
 * ever on the removed one.
 */
async function forgetIfRemoved(dir: string): Promise<boolean> {
  const entry = runDirs.get(dir);
  if (!entry) return false;
  const stat = await entry.run.handle.stat().catch(() => undefined);
  if (stat !== undefined && stat.nlink > 0) return false;
  runDirs.delete(dir);
  for (const [key, path] of byCandidates) if (path === dir) byCandidates.delete(key);
  await closeRunDir(entry);
  return true;
}

/** Closes a run directory's descriptors (and its base's, when it has its own). */
async function closeRunDir({ base, run }: RunDir): Promise<void> {
  await run.handle.close().catch(() => {});
  if (base !== run) await base.handle.close().catch(() => {});
}

/**
 * Clean-up on exit: removes the files this process wrote and its own directories (through the descriptors),
 * nothing else — another vaultrun sharing the runtime directory keeps its files.
 */
export async function removeSecretFiles(): Promise<void> {
  const dirs = [...runDirs.values()];
  runDirs.clear();
  byCandidates.clear();
  for (const entry of dirs) {
    const { base, run, written } = entry;
    for (const name of written) await unlink(at(run, name)).catch(() => {});
    if (base !== run) await rmdir(at(base, basename(run.path))).catch(() => {});
    await closeRunDir(entry);
  }
}
