import { describe, expect, it } from 'vitest';
import {
  type Change,
  type ChangeDelay,
  changeDelayMs,
  changedVariables,
  holdPinned,
  PendingChange,
  unreferencedPins,
} from '../../../src/run/rotation/change.js';
import { hookArgv, hookEnv } from '../../../src/run/rotation/hook.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import { FakeClock, randomSequence, recordingLogger } from '../../support/fake-clock.js';

describe('changeDelayMs', () => {
  const now = 1_000_000;
  it.each<[string, Omit<ChangeDelay, 'now'>, number]>([
    ['debounce only', { debounceMs: 1_000, splayMs: 0, random: 0.7 }, 1_000],
    ['no splay drawn', { debounceMs: 1_000, splayMs: 4_000, random: 0 }, 1_000],
    ['half the splay', { debounceMs: 1_000, splayMs: 4_000, random: 0.5 }, 3_000],
    ['nearly all the splay', { debounceMs: 0, splayMs: 10_000, random: 0.99 }, 9_900],
    [
      'a far lease end does not cap',
      { debounceMs: 1_000, splayMs: 4_000, random: 0.5, deadline: now + 60_000 },
      3_000,
    ],
    [
      'a near lease end caps at half the time left',
      { debounceMs: 1_000, splayMs: 4_000, random: 0.5, deadline: now + 2_000 },
      1_000,
    ],
    [
      'the cap applies to debounce too',
      { debounceMs: 30_000, splayMs: 0, random: 0, deadline: now + 10_000 },
      5_000,
    ],
    [
      'a lease already ended: at once',
      { debounceMs: 1_000, splayMs: 4_000, random: 0.5, deadline: now - 5_000 },
      0,
    ],
  ])('%s', (_name, delay, expected) => {
    expect(changeDelayMs({ ...delay, now })).toBe(expected);
  });
});

describe('changedVariables', () => {
  it.each<
    [
      string,
      [Record<string, string>, Record<string, string>],
      [Record<string, string>, Record<string, string>],
      string[],
    ]
  >([
    ['nothing', [{ A: '1' }, {}], [{ A: '1' }, {}], []],
    ['a value', [{ A: '1', B: '2' }, {}], [{ A: '1', B: '3' }, {}], ['B']],
    ['added and removed', [{ A: '1' }, {}], [{ C: '1' }, {}], ['A', 'C']],
    ['a secret file content', [{}, { F_FILE: 'x' }], [{}, { F_FILE: 'y' }], ['F_FILE']],
    ['sorted', [{ Z: '1', A: '1' }, {}], [{ Z: '2', A: '2' }, {}], ['A', 'Z']],
  ])('%s', (_name, [envA, filesA], [envB, filesB], expected) => {
    expect(changedVariables({ env: envA, fileValues: filesA }, { env: envB, fileValues: filesB })).toEqual(
      expected,
    );
  });
});

describe('holdPinned (--pin)', () => {
  const r = (env: Record<string, string>, fileValues: Record<string, string> = {}) => ({ env, fileValues });
  it.each<[string, ReturnType<typeof r>, ReturnType<typeof r>, string[], ReturnType<typeof r>, string[]]>([
    ['nothing pinned', r({ K: '1', A: '1' }), r({ K: '2', A: '2' }), [], r({ K: '2', A: '2' }), []],
    [
      'a pinned value is held',
      r({ K: '1', A: '1' }),
      r({ K: '2', A: '2' }),
      ['K'],
      r({ K: '1', A: '2' }),
      ['K'],
    ],
    ['unchanged: not held', r({ K: '1', A: '1' }), r({ K: '1', A: '2' }), ['K'], r({ K: '1', A: '2' }), []],
    ['gone from the new one: kept', r({ K: '1' }), r({}), ['K'], r({ K: '1' }), ['K']],
    ['new to the command: taken', r({}), r({ K: '2' }), ['K'], r({ K: '2' }), []],
    [
      'a secret file',
      r({}, { K_FILE: 'a' }),
      r({}, { K_FILE: 'b' }),
      ['K_FILE'],
      r({}, { K_FILE: 'a' }),
      ['K_FILE'],
    ],
    [
      'several, sorted',
      r({ Z: '1', A: '1' }),
      r({ Z: '2', A: '2' }),
      ['Z', 'A'],
      r({ Z: '1', A: '1' }),
      ['A', 'Z'],
    ],
  ])('%s', (_name, current, next, pin, rendered, held) => {
    expect(holdPinned(current, next, new Set(pin))).toEqual({ rendered, held });
    // Nothing but the pinned variables changes: the action then compares equal.
    if (pin.length > 0 && held.length > 0 && Object.keys(next.env).every((k) => pin.includes(k))) {
      expect(changedVariables(current, holdPinned(current, next, new Set(pin)).rendered)).toEqual([]);
    }
  });
});

describe('change hook', () => {
  it.each([
    ['/usr/local/bin/reload', ['/usr/local/bin/reload']],
    ['reload-app', ['reload-app']],
    ['  /hooks/notify  ', ['/hooks/notify']],
    ['/hooks/notify --all', ['/bin/sh', '-c', '/hooks/notify --all']],
    ['kill -HUP $(cat /run/x.pid)', ['/bin/sh', '-c', 'kill -HUP $(cat /run/x.pid)']],
    ['a;b', ['/bin/sh', '-c', 'a;b']],
  ])('%s runs as %j', (command, argv) => {
    expect(hookArgv(command)).toEqual(argv);
  });

  it('gets the names of the changed variables, never their values, on top of the environment', () => {
    const env = hookEnv({ DB_PASSWORD: 'new', PATH: '/bin' }, ['DB_PASSWORD', 'REDIS_URL']);
    expect(env).toEqual({ DB_PASSWORD: 'new', PATH: '/bin', VAULTRUN_CHANGED: 'DB_PASSWORD,REDIS_URL' });
  });
});

function pending(options: { debounceMs?: number; splayMs?: number; random?: () => number } = {}) {
  const clock = new FakeClock();
  const timers = new Timers(() => {}, clock);
  const applied: Array<Change & { at: number }> = [];
  const logger = recordingLogger();
  let apply = async (change: Change) => {
    applied.push({ ...change, at: clock.now() });
  };
  const change = new PendingChange({
    timers,
    log: logger.log,
    debounceMs: options.debounceMs ?? 1_000,
    splayMs: options.splayMs ?? 0,
    random: options.random ?? (() => 0),
    apply: (c) => apply(c),
  });
  const start = clock.now();
  return {
    clock,
    timers,
    change,
    applied,
    start,
    noticed: () =>
      logger
        .lines()
        .filter((l) => l.msg === 'change noticed')
        .map((l) => l.reason),
    setApply: (fn: typeof apply) => {
      apply = fn;
    },
  };
}

describe('PendingChange', () => {
  it('acts once after the debounce plus the drawn splay, with every change noticed meanwhile', async () => {
    const { clock, change, applied, start } = pending({
      debounceMs: 1_000,
      splayMs: 4_000,
      random: () => 0.5,
    });
    change.notice('a changed', ['a'], false);
    await clock.advance(500);
    change.notice('b changed', ['b', 'a'], true);
    await clock.advance(2_499);
    expect(applied).toEqual([]);
    await clock.advance(1);
    expect(applied).toEqual([
      {
        reasons: ['a changed', 'b changed'],
        readIds: new Set(['a', 'b']),
        reprepare: true,
        at: start + 3_000,
      },
    ]);
    await clock.advance(60_000);
    expect(applied).toHaveLength(1);
  });

  it('the same reason noticed twice before the action (a poll and a retry) is given once', async () => {
    const { clock, change, applied } = pending({ debounceMs: 1_000 });
    change.notice('a changed', ['a'], false);
    change.notice('a changed', ['a'], false);
    change.notice('b changed', ['b'], false);
    await clock.advance(1_000);
    expect(applied.map((c) => c.reasons)).toEqual([['a changed', 'b changed']]);
  });

  it('logs "change noticed" once per distinct reason while it waits (not at every poll), again after the action', async () => {
    const { clock, change, noticed } = pending({ debounceMs: 1_000 });
    for (const reason of ['a changed', 'a changed', 'b changed', 'a changed'])
      change.notice(reason, [], false);
    expect(noticed()).toEqual(['a changed', 'b changed']);
    await clock.advance(1_000);
    change.notice('a changed', [], false);
    expect(noticed()).toEqual(['a changed', 'b changed', 'a changed']);
  });

  it('take(): hands over what is pending at once and cancels its timer; nothing is applied for it later', async () => {
    const { clock, change, applied } = pending({ debounceMs: 1_000 });
    expect(change.take()).toBeUndefined();
    change.notice('a changed', ['a'], false);
    change.notice('b changed', ['b'], true);
    expect(change.take()).toEqual({
      reasons: ['a changed', 'b changed'],
      readIds: new Set(['a', 'b']),
      reprepare: true,
    });
    expect(clock.delays()).toEqual([]);
    expect(change.take()).toBeUndefined();
    await clock.advance(10_000);
    expect(applied).toEqual([]);
    // What is noticed after it waits for its own debounce, as usual.
    change.notice('c changed', ['c'], false);
    await clock.advance(1_000);
    expect(applied.map((c) => c.reasons)).toEqual([['c changed']]);
  });

  it('take() during an action (a restart waiting for the old command): the action queued behind it finds nothing', async () => {
    const { clock, change, applied, setApply } = pending({ debounceMs: 100 });
    let finish: () => void = () => {};
    let taken: Change | undefined;
    setApply(async (c) => {
      applied.push({ ...c, at: clock.now() });
      if (c.reasons[0] !== 'first') return;
      await new Promise<void>((resolve) => (finish = resolve));
      taken = change.take();
    });
    change.notice('first', ['x'], false);
    await clock.advance(100);
    change.notice('during the stop', ['x'], false);
    await clock.advance(1_000); // its timer fired: its action waits behind the first
    finish();
    await clock.advance(0);
    expect(taken?.reasons).toEqual(['during the stop']);
    expect(applied.map((c) => c.reasons)).toEqual([['first']]);
    expect(change.applying).toBeUndefined();
  });

  it('a later change does not postpone the pending action', async () => {
    const { clock, change, applied, start } = pending({ debounceMs: 1_000 });
    change.notice('a', [], false);
    await clock.advance(900);
    change.notice('b', [], false);
    await clock.advance(100);
    expect(applied.map((c) => c.at)).toEqual([start + 1_000]);
  });

  it('a lease ending sooner brings the pending action forward, to halfway to its end', async () => {
    const { clock, change, applied, start } = pending({ debounceMs: 30_000 });
    change.notice('a path changed', ['kv'], false);
    await clock.advance(1_000);
    change.notice('the lease ends', ['db'], false, start + 1_000 + 8_000);
    await clock.advance(4_000);
    expect(applied).toEqual([
      {
        reasons: ['a path changed', 'the lease ends'],
        readIds: new Set(['kv', 'db']),
        reprepare: false,
        at: start + 5_000,
      },
    ]);
  });

  it('acts one change at a time: a change noticed during an action waits for it', async () => {
    const { clock, change, applied, setApply } = pending({ debounceMs: 100 });
    let finish: () => void = () => {};
    const events: string[] = [];
    setApply(async (c) => {
      events.push(`start ${c.reasons.join(',')}`);
      if (c.reasons[0] === 'first') await new Promise<void>((resolve) => (finish = resolve));
      events.push(`end ${c.reasons.join(',')}`);
      applied.push({ ...c, at: clock.now() });
    });
    change.notice('first', [], false);
    await clock.advance(100);
    expect(change.applying).toBeDefined();
    change.notice('second', [], false);
    await clock.advance(1_000);
    expect(events).toEqual(['start first']);
    finish();
    await clock.advance(0);
    expect(events).toEqual(['start first', 'end first', 'start second', 'end second']);
    expect(change.applying).toBeUndefined();
  });

  it('notices nothing once the timers are stopped (vaultrun exits)', async () => {
    const { clock, change, applied, timers } = pending({ debounceMs: 100 });
    change.notice('before', [], false);
    timers.stop();
    change.notice('after', [], false);
    await clock.advance(10_000);
    expect(applied).toEqual([]);
    expect(clock.delays()).toEqual([]);
  });

  it('draws a new splay for each action', async () => {
    const { clock, change, applied, start } = pending({
      debounceMs: 0,
      splayMs: 10_000,
      random: randomSequence(0.1, 0.9),
    });
    change.notice('a', [], false);
    await clock.advance(1_000);
    change.notice('b', [], false);
    await clock.advance(9_000);
    expect(applied.map((c) => c.at - start)).toEqual([1_000, 10_000]);
  });
});

describe('unreferencedPins (--pin of a variable without a reference: warned about)', () => {
  it.each<[string[], string[], string[]]>([
    [[], ['A'], []],
    [['SECRET_KEY'], ['SECRET_KEY', 'DB_PASSWORD'], []],
    [['SECRT_KEY'], ['SECRET_KEY'], ['SECRT_KEY']],
    [['Z', 'A', 'B'], ['B'], ['A', 'Z']],
    [['X'], [], ['X']],
  ])('pin %j, referenced %j → %j', (pin, referenced, stray) => {
    expect(unreferencedPins(new Set(pin), referenced)).toEqual(stray);
  });
});
