// Running things as nobody (util-linux `setpriv`) from tests that run as root: its ids, directories it owns or
// can search, and program files it can use.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tempDir } from './resolution.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export function idsOf(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name} in /etc/passwd`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export const NOBODY = idsOf('nobody');

/** `setpriv … --` running what follows as nobody (its uid and gid, no supplementary groups). */
export function asNobody(): string[] {
  if (!SETPRIV) throw new Error('util-linux setpriv not found: needed to run vaultrun as nobody');
  return [SETPRIV, `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--'];
}

/** Whether nobody passes `test -<how> path` (r, w or x: every directory above it must be searchable too). */
export function nobodyCan(how: 'r' | 'w' | 'x', path: string): boolean {
  const [cmd, ...args] = asNobody();
  return spawnSync(cmd as string, [...args, 'test', `-${how}`, path]).status === 0;
}

/** A directory owned by nobody (0700) in a temp dir nobody can search. */
export function nobodysDir(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY.uid, NOBODY.gid);
  return dir;
}

/** A temp dir that nobody can search (mkdtemp makes them 0700, owned by root). */
export function openDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o755);
  return dir;
}

const copies = new Map<string, string>();
let copyDir: string | undefined;

/**
 * A program file as nobody can use it: the file itself when nobody can read it (and execute it, if `exec`),
 * else a copy in a directory nobody can read.
 */
export function reachable(file: string, exec: boolean): string {
  if (nobodyCan('r', file) && (!exec || nobodyCan('x', file))) return file;
  const key = `${exec}:${file}`;
  let copy = copies.get(key);
  if (copy === undefined) {
    copyDir ??= openDir('vaultrun-programs-');
    copy = join(copyDir, `${copies.size}-${basename(file)}`);
    copyFileSync(file, copy);
    chmodSync(copy, exec ? 0o755 : 0o644);
    copies.set(key, copy);
  }
  return copy;
}
