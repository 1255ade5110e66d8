// The command's process group: parsing /proc/PID/stat, and asking /proc whether a group still runs.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { groupAlive, parseStat, waitGroupGone } from '../../src/run/group.js';

describe('parseStat', () => {
  it('reads the state and the process group after the last parenthesis', () => {
    expect(parseStat('123 (node) S 1 120 120 0 -1 4194560 …')).toEqual({ state: 'S', pgrp: 120 });
    // A command name may hold spaces and parentheses.
    expect(parseStat('77 (a) b (c)) Z 5 66 66 0')).toEqual({ state: 'Z', pgrp: 66 });
  });

  it('rejects what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 (x)')).toBeUndefined();
  });
});

describe('groupAlive / waitGroupGone', () => {
  it('sees a live group (a grandchild after its parent has exited) until it is killed', async () => {
    // sh leads a new group, starts a sleeping grandchild in the background and exits at once.
    const child = spawn('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const pgid = child.pid as number;
    const out: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (d: string) => out.push(d));
    await new Promise((resolve) => child.once('close', resolve));
    const grandchild = Number(out.join('').trim());
    expect(grandchild).toBeGreaterThan(0);
    expect(groupAlive(pgid)).toBe(true);
    expect(await waitGroupGone(pgid, Date.now() + 200)).toBe(false);
    process.kill(-pgid, 'SIGKILL');
    expect(await waitGroupGone(pgid, Date.now() + 10_000)).toBe(true);
    expect(groupAlive(pgid)).toBe(false);
  });
});
