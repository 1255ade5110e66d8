import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ReadRequest } from '../../../src/refs/plan.js';
import type { Prepared } from '../../../src/resolve.js';
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
      plan: { vars: [], reads: [], referenceCount: 0 },
      sourceFiles: [file],
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
