// src/run/supervise.ts with Node's real spawn, looked at from the inside: a signal that arrives right after the
// command started must meet vaultrun's handler, not Node's default (which ends vaultrun and leaves the command
// running, orphaned). So every forwarded signal is handled already at the moment the command is spawned — on a
// loaded machine the command can run (and a test or an orchestrator can signal vaultrun) before vaultrun's next
// line does. The end-to-end forwarding itself is tested in test/integration/supervise.test.ts.
import childProcess from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { FORWARDED_SIGNALS } from '../../src/run/signals.js';
import { supervise } from '../../src/run/supervise.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const quiet = () => createLogger({ level: 'error', write: () => {} });
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

describe('supervise: the signal handlers and the start of the command', () => {
  it('every forwarded signal has a handler when the command is spawned, and none is left after the exit', async () => {
    const before = Object.fromEntries(FORWARDED_SIGNALS.map((s) => [s, process.listenerCount(s)]));
    const atSpawn: Record<string, number> = {};
    const real = childProcess.spawn;
    const spy = vi.spyOn(childProcess, 'spawn').mockImplementation(((...args: Parameters<typeof real>) => {
      for (const s of FORWARDED_SIGNALS) atSpawn[s] = process.listenerCount(s);
      return real(...args);
    }) as typeof real);
    const status = await supervise({ file: 'true', argv: ['true'], env, log: quiet(), interactive: false });
    expect(status).toBe(0);
    expect(spy).toHaveBeenCalledTimes(1);
    for (const s of FORWARDED_SIGNALS) {
      expect(atSpawn[s], `${s} handled when the command starts`).toBe((before[s] ?? 0) + 1);
      expect(process.listenerCount(s), `${s} handler removed`).toBe(before[s]);
    }
  });

  it('a spawn that throws leaves no handler behind', async () => {
    const before = Object.fromEntries(FORWARDED_SIGNALS.map((s) => [s, process.listenerCount(s)]));
    vi.spyOn(childProcess, 'spawn').mockImplementation(() => {
      throw new TypeError('spawn refused');
    });
    await expect(
      supervise({ file: 'true', argv: ['true'], env, log: quiet(), interactive: false }),
    ).rejects.toThrow('spawn refused');
    for (const s of FORWARDED_SIGNALS) expect(process.listenerCount(s), s).toBe(before[s]);
  });

  it('a SIGTERM the moment the command starts is forwarded to it (vaultrun outlives it and reports 143)', async () => {
    const real = childProcess.spawn;
    vi.spyOn(childProcess, 'spawn').mockImplementation(((...args: Parameters<typeof real>) => {
      const child = real(...args);
      // As early as a signal can come: the command exists, vaultrun has not returned from spawn yet.
      process.kill(process.pid, 'SIGTERM');
      return child;
    }) as typeof real);
    const status = await supervise({
      file: 'sleep',
      argv: ['sleep', '600'],
      env,
      log: quiet(),
      interactive: false,
    });
    expect(status).toBe(143);
  });
});
