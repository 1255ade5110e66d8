import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { ReadRequest } from '../../../src/refs/plan.js';
import { type Prepared, prepare } from '../../../src/resolve.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import { pollableReads, pollDelayMs, pollWaitMs, sha256, Watch } from '../../../src/run/rotation/watch.js';
import type { SecretRead } from '../../../src/vault/kv.js';
import { FakeClock, randomSequence, recordingLogger } from '../../support/fake-clock.js';

describe('pollDelayMs: the interval ±10%', () => {
  it.each([
    [30_000, 0, 27_000],
    [30_000, 0.5, 30_000],
    [30_000, 0.75, 31_500],
    [30_000, 0.999_999, 32_999.97],
    [1_000, 0.25, 950],
  ])('interval %i ms, random %d → %i ms', (interval, random, expected) => {
    expect(pollDelayMs(interval, random)).toBeCloseTo(expected, 1);
  });
});

describe('pollWaitMs: --wait, at most half the interval, at least 1 s', () => {
  it.each([
    [10_000, 30_000, 10_000],
    [60_000, 30_000, 15_000],
    [10_000, 1_000, 1_000],
    [500, 30_000, 1_000],
  ])('wait %i, interval %i → %i', (wait, interval, expected) => {
    expect(pollWaitMs(wait, interval)).toBe(expected);
  });
});

describe('pollableReads', () => {
  const read = (id: string, version?: number): ReadRequest => ({
    id,
    path: id,
    ...(version === undefined ? {} : { version }),
    variables: [id],
  });
  const secret = (leaseId = ''): SecretRead => ({ data: {}, leaseId, leaseDuration: 0, renewable: false });
  it('polls what was read, without a lease and without a pinned version', () => {
    const reads = [read('kv/app'), read('kv/pinned', 3), read('database/creds/app'), read('kv/failed')];
    const secrets = new Map([
      ['kv/app', secret()],
      ['kv/pinned', secret()],
      ['database/creds/app', secret('database/creds/app/123')],
    ]);
    expect(pollableReads(reads, secrets).map((r) => r.id)).toEqual(['kv/app']);
  });
});

describe('sha256', () => {
  it('hashes text (what is compared: never the value itself)', () => {
    expect(sha256('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('Watch', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('polls at the interval ±10% and sees a source file that appears where nothing can be watched', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-watch-'));
    // The directory does not exist yet: it cannot be watched, only the polls can see the file appear.
    const file = join(dir, 'later', 'app.env');
    const clock = new FakeClock();
    const { log, lines } = recordingLogger();
    const changes: Array<{ reason: string; readIds: string[]; reprepare: boolean }> = [];
    const prepared: Prepared = {
      env: {},
      plan: { vars: [], reads: [], referenceCount: 0, imports: [], explicit: new Set() },
      sourceFiles: [file],
      sourceHashes: { [file]: 'missing' },
      loginVars: [],
    };
    const watch = new Watch({
      timers: new Timers(() => {}, clock),
      log,
      pollIntervalMs: 10_000,
      waitMs: 5_000,
      random: randomSequence(0, 1),
      vault: () => undefined,
      current: () => ({ prepared, reads: new Map() }),
      changed: (reason, readIds, reprepare) => changes.push({ reason, readIds, reprepare }),
    });
    watch.start();
    await vi.waitFor(() =>
      expect(
        lines().some((l) => l.msg === 'cannot watch a directory; changes are seen at the next poll'),
      ).toBe(true),
    );
    expect(clock.delays()).toEqual([9_000]); // random 0: the interval −10%
    await mkdir(join(dir, 'later'));
    await writeFile(file, 'A=1\n');
    await clock.advance(8_999);
    expect(changes).toEqual([]);
    await clock.advance(1);
    await vi.waitFor(() =>
      expect(changes).toEqual([{ reason: `${file} changed`, readIds: [], reprepare: true }]),
    );
    await vi.waitFor(() => expect(clock.delays()).toEqual([11_000])); // random 1: the interval +10%
    // Same content at the next poll: nothing.
    await clock.advance(11_000);
    await vi.waitFor(() => expect(clock.delays()).toEqual([11_000]));
    expect(changes).toHaveLength(1);
    watch.close();
  });
});

describe('Watch: a change between the resolution and the watch is not missed', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A Watch over `prepared` whose polls never come (the interval is far away): only the watch can see. */
  function watchOf(prepared: Prepared, clock: FakeClock) {
    const changes: Array<{ reason: string; readIds: string[]; reprepare: boolean }> = [];
    const watch = new Watch({
      timers: new Timers(() => {}, clock),
      log: recordingLogger().log,
      pollIntervalMs: 3_600_000,
      waitMs: 5_000,
      vault: () => undefined,
      current: () => ({ prepared, reads: new Map() }),
      changed: (reason, readIds, reprepare) => changes.push({ reason, readIds, reprepare }),
    });
    return { watch, changes };
  }

  it.each(['env file', 'NAME_FILE source'])(
    'a %s changed after it was read and before start() is seen at start, without a poll',
    async (kind) => {
      dir = await mkdtemp(join(tmpdir(), 'vaultrun-watch-'));
      const file = join(dir, 'source');
      await writeFile(file, kind === 'env file' ? 'A=1\n' : 'one\n');
      const config =
        kind === 'env file'
          ? loadConfig({}, { VAULTRUN_ENV_FILE: file })
          : loadConfig({}, { VAULTRUN_FILE_ENV_DIRS: dir });
      const processEnv = kind === 'env file' ? {} : { A_FILE: file };
      const prepared = await prepare(config, processEnv, recordingLogger().log);
      expect(prepared.sourceFiles).toEqual([file]);
      expect(prepared.env.A).toBe(kind === 'env file' ? '1' : 'one');
      // The window: the command starts with A=1 while the file already says something else.
      await writeFile(file, kind === 'env file' ? 'A=2\n' : 'two\n');
      const clock = new FakeClock();
      const { watch, changes } = watchOf(prepared, clock);
      watch.start();
      await vi.waitFor(() =>
        expect(changes).toEqual([{ reason: `${file} changed`, readIds: [], reprepare: true }]),
      );
      expect(clock.delays()).toHaveLength(1); // only the next poll, not fired
      watch.close();
    },
  );

  it('the watch is installed when start() returns: a change right after it is seen without a poll', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-watch-'));
    const file = join(dir, 'app.env');
    await writeFile(file, 'A=1\n');
    const config = loadConfig({}, { VAULTRUN_ENV_FILE: file });
    const prepared = await prepare(config, {}, recordingLogger().log);
    const clock = new FakeClock();
    const { watch, changes } = watchOf(prepared, clock);
    watch.start();
    await writeFile(file, 'A=2\n');
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    expect(changes[0]).toEqual({ reason: `${file} changed`, readIds: [], reprepare: true });
    watch.close();
  });

  it('an unchanged file is not reported at start', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-watch-'));
    const file = join(dir, 'app.env');
    await writeFile(file, 'A=1\n');
    const config = loadConfig({}, { VAULTRUN_ENV_FILE: file });
    const prepared = await prepare(config, {}, recordingLogger().log);
    expect(prepared.sourceHashes).toEqual({ [file]: sha256('A=1\n') });
    const clock = new FakeClock();
    const { watch, changes } = watchOf(prepared, clock);
    await watch.rewatch(); // start()'s file part, awaited: the check at start has run
    expect(changes).toEqual([]);
    watch.close();
  });
});
