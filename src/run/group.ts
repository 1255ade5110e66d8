import { readdirSync, readFileSync } from 'node:fs';

/**
 * The command's process group (supervise mode outside a terminal: the child leads its own group). A restart or
 * a shutdown is over only when the whole group is gone: with `sh -c 'app; …'` the shell may die at the stop
 * signal while the real app, a grandchild, ignores it or is still cleaning up.
 *
 * Zombies do not count: a grandchild whose shell died is reparented to PID 1, and when that is vaultrun (no
 * init in front) nobody reaps it — a zombie runs no code and holds nothing but its pid.
 */

/** Pure: the state and process group of a /proc/PID/stat line (the command name may hold spaces and ')'). */
export function parseStat(stat: string): { state: string; pgrp: number } | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  const pgrp = Number(rest[2]);
  if (!rest[0] || !Number.isInteger(pgrp)) return undefined;
  return { state: rest[0], pgrp };
}

/** Whether a process that is not a zombie is still in process group `pgid`. */
export function groupAlive(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    // No /proc: ask the kernel (zombies count there).
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue; // not a pid
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const parsed = parseStat(stat);
    if (parsed && parsed.pgrp === pgid && parsed.state !== 'Z' && parsed.state !== 'X') return true;
  }
  return false;
}

/** Sends a signal to a process group; false when it has no member left. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits (polling /proc) until the group has no live member or the deadline passes; true when it is gone. */
export async function waitGroupGone(pgid: number, deadline: number): Promise<boolean> {
  for (let delay = 10; ; delay = Math.min(delay * 2, 100)) {
    if (!groupAlive(pgid)) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
  }
}
