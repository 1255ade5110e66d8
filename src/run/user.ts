import { readFile } from 'node:fs/promises';
import { VaultrunError } from '../errors.js';

/**
 * `--user USER[:GROUP]`: run the command as another user when vaultrun starts as root. Names are looked up in
 * /etc/passwd and /etc/group (no NSS: containers rarely have more); numbers are taken as they are (0 to
 * 4294967294), also without a passwd entry. Without a GROUP the user's primary group is used. Supplementary
 * groups are dropped (only GROUP remains). Anything else (`1000x`, `1000:`, `1000:1000:5`, `-1`) is exit 64.
 *
 * The command's HOME, USER and LOGNAME follow the user (as login and gosu do): the passwd entry's home and
 * name; a uid without a passwd entry gets HOME=/ (as Docker's USER does) and no USER or LOGNAME.
 */
export interface UserSpec {
  uid: number;
  gid: number;
  name: string;
  /** The login name from /etc/passwd (by name or by uid); undefined for a uid without an entry. */
  login?: string;
  /** The user's home directory from /etc/passwd: the command's HOME (as gosu and Docker's USER do). */
  home?: string;
}

interface IdEntry {
  id: number;
  gid: number;
  /** passwd only. */
  home?: string;
}

/** The largest uid/gid: (uid_t)-1 means "unchanged" to the kernel. */
export const MAX_ID = 4294967294;

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

const ORIGIN = '--user / VAULTRUN_USER';

function usage(problem: string, hint = 'use USER, USER:GROUP, UID or UID:GID'): VaultrunError {
  return new VaultrunError('USAGE', `${ORIGIN}: ${problem}`, { hint });
}

/** A numeric id in range, or undefined for a name; throws for a number out of range or signed. */
function numericId(text: string, what: 'uid' | 'gid'): number | undefined {
  if (/^[+-]?\d+$/.test(text)) {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n > MAX_ID) {
      throw usage(`${what} ${text} is out of range`, `a ${what} is a whole number from 0 to ${MAX_ID}`);
    }
    return n;
  }
  return undefined;
}

/** A user or group name as useradd/groupadd accept them (no colon, space or control character). */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

export function parseUserSpec(
  spec: string,
  passwd: Map<string, IdEntry>,
  groups: Map<string, IdEntry>,
): UserSpec {
  const parts = spec.split(':');
  if (parts.length > 2) throw usage(`"${spec}" has more than one ":"`);
  const [user = '', group] = parts;
  if (user === '') throw usage('empty user');
  if (group === '') throw usage(`"${spec}" has an empty group after ":"`);
  const uidNumber = numericId(user, 'uid');
  const found =
    uidNumber === undefined
      ? [...passwd].find(([name]) => name === user)
      : [...passwd].find(([, p]) => p.id === uidNumber);
  if (!found && uidNumber === undefined) {
    throw usage(
      NAME.test(user) ? `no user "${user}" in /etc/passwd` : `"${user}" is neither a user name nor a uid`,
    );
  }
  const [login, entry] = found ?? [undefined, undefined];
  const uid = entry?.id ?? (uidNumber as number);
  if (uid > MAX_ID) throw usage(`uid ${uid} of "${user}" in /etc/passwd is out of range`);
  let gid = entry?.gid;
  if (group !== undefined) {
    const gidNumber = numericId(group, 'gid');
    if (gidNumber !== undefined) gid = gidNumber;
    else {
      const g = groups.get(group);
      if (!g) {
        throw usage(
          NAME.test(group)
            ? `no group "${group}" in /etc/group`
            : `"${group}" is neither a group name nor a gid`,
        );
      }
      gid = g.id;
    }
  }
  if (gid === undefined || !Number.isInteger(gid) || gid < 0 || gid > MAX_ID) {
    throw usage(`user ${user} has no entry in /etc/passwd: give the group too`, 'use UID:GID');
  }
  return {
    uid,
    gid,
    name: spec,
    ...(login === undefined ? {} : { login }),
    ...(entry?.home ? { home: entry.home } : {}),
  };
}

/**
 * Pure: the environment the command starts from under --user: HOME, USER and LOGNAME follow the user. A uid
 * without a passwd entry gets HOME=/ and no USER or LOGNAME (they would name someone else).
 */
export function userEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  user: UserSpec,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env, HOME: user.home ?? '/' };
  if (user.login === undefined) {
    delete out.USER;
    delete out.LOGNAME;
  } else {
    out.USER = user.login;
    out.LOGNAME = user.login;
  }
  return out;
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
