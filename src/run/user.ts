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
}

/** Pure: parses passwd/group text into name → [id, primary gid]. */
export function parseIdFile(text: string): Map<string, { id: number; gid: number }> {
  const out = new Map<string, { id: number; gid: number }>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id)) out.set(f[0], { id, gid: Number(f[3] ?? id) });
  }
  return out;
}

async function readOptional(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

export function parseUserSpec(
  spec: string,
  passwd: Map<string, { id: number; gid: number }>,
  groups: Map<string, { id: number; gid: number }>,
): UserSpec {
  const [user = '', group] = spec.split(':');
  const origin = '--user / VAULTRUN_USER';
  if (user === '')
    throw new VaultrunError('USAGE', `${origin}: empty user`, { hint: 'use USER or USER:GROUP' });
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(user)) {
    uid = Number(user);
    gid = [...passwd.values()].find((p) => p.id === uid)?.gid;
  } else {
    const entry = passwd.get(user);
    if (!entry) throw new VaultrunError('USAGE', `${origin}: no user "${user}" in /etc/passwd`);
    uid = entry.id;
    gid = entry.gid;
  }
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
  return { uid, gid, name: spec };
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
