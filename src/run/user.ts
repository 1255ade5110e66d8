import { readFile } from 'node:fs/promises';
import { VaultrunError } from '../errors.js';

/**
 * `--user USER[:GROUP]`: run the command as another user when vaultrun starts as root. Names are looked up in
 * /etc/passwd and /etc/group (no NSS: containers rarely have more); numbers are taken as they are. Without a
 * GROUP the user's primary group is used. Supplementary groups are dropped (only GROUP remains).
 */
export interface UserSpec {
  uid: number;
  gid: number;
  name: string;
  /** The user's home directory from /etc/passwd: the command's HOME (as gosu and Docker's USER do). */
  home?: string;
}

interface IdEntry {
  id: number;
  gid: number;
  /** passwd only. */
  home?: string;
}

/** Pure: parses passwd/group text into name → id, primary gid (and home, for passwd). */
export function parseIdFile(text: string): Map<string, IdEntry> {
  const out = new Map<string, IdEntry>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id))
      out.set(f[0], { id, gid: Number(f[3] ?? id), ...(f[5] ? { home: f[5] } : {}) });
  }
  return out;
}

async function readOptional(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

export function parseUserSpec(
  spec: string,
  passwd: Map<string, IdEntry>,
  groups: Map<string, IdEntry>,
): UserSpec {
  const [user = '', group] = spec.split(':');
  const origin = '--user / VAULTRUN_USER';
  if (user === '')
    throw new VaultrunError('USAGE', `${origin}: empty user`, { hint: 'use USER or USER:GROUP' });
  const entry = /^\d+$/.test(user)
    ? [...passwd.values()].find((p) => p.id === Number(user))
    : passwd.get(user);
  if (!entry && !/^\d+$/.test(user)) {
    throw new VaultrunError('USAGE', `${origin}: no user "${user}" in /etc/passwd`);
  }
  const uid = entry?.id ?? Number(user);
  let gid = entry?.gid;
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const g = groups.get(group);
      if (!g) throw new VaultrunError('USAGE', `${origin}: no group "${group}" in /etc/group`);
      gid = g.id;
    }
  }
  if (gid === undefined) {
    throw new VaultrunError(
      'USAGE',
      `${origin}: user ${user} has no entry in /etc/passwd: give the group too`,
      {
        hint: 'use UID:GID',
      },
    );
  }
  return { uid, gid, name: spec, ...(entry?.home ? { home: entry.home } : {}) };
}

export async function resolveUser(spec: string): Promise<UserSpec> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new VaultrunError('USAGE', '--user needs vaultrun to start as root', {
      hint: 'drop --user, or start the container as root and let vaultrun switch',
    });
  }
  const [passwd, group] = await Promise.all([readOptional('/etc/passwd'), readOptional('/etc/group')]);
  return parseUserSpec(spec, parseIdFile(passwd), parseIdFile(group));
}

/** Exec mode: become the user before execve (groups first, then gid, then uid). */
export function becomeUser(user: UserSpec): void {
  process.setgroups?.([user.gid]);
  process.setgid?.(user.gid);
  process.setuid?.(user.uid);
}
