import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../../src/errors.js';
import { CommandToken } from '../../../src/run/rotation/command-token.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import type { ChildToken } from '../../../src/vault/child-token.js';
import { FakeClock, recordingLogger } from '../../support/fake-clock.js';

type Step = { ttl: number; renewable: boolean } | VaultrunError;

function child(over: Partial<ChildToken> = {}): ChildToken {
  return {
    token: 'c1',
    accessor: 'a1',
    ttlS: 60,
    renewable: true,
    policies: ['default'],
    parent: 'p1',
    ...over,
  };
}

function commandToken(first: ChildToken, renewals: Step[] = []) {
  const clock = new FakeClock();
  const { log } = recordingLogger();
  const timers = new Timers(() => {}, clock);
  const start = clock.now();
  const events: string[] = [];
  const steps = [...renewals];
  const keeper = new CommandToken({
    timers,
    log,
    current: () => first,
    renew: async (token, waitMs) => {
      events.push(`renew ${token} at ${clock.now() - start} wait ${waitMs}`);
      const next = steps.shift() ?? { ttl: first.ttlS, renewable: true };
      if (next instanceof VaultrunError) throw next;
      return next;
    },
    replace: (reason, deadline) =>
      events.push(`replace at ${clock.now() - start}: ${reason} (ends ${deadline - start})`),
  });
  return { clock, keeper, events };
}

describe("CommandToken: the command's token (NAME=vault:login) while resident", () => {
  it('renews at 2/3 of its TTL, each time', async () => {
    const t = commandToken(child({ ttlS: 60 }));
    t.keeper.start();
    await t.clock.advance(39_999);
    expect(t.events).toEqual([]);
    await t.clock.advance(1);
    await t.clock.advance(40_000);
    expect(t.events).toEqual(['renew c1 at 40000 wait 10000', 'renew c1 at 80000 wait 10000']);
  });

  it('asks for a new token at 2/3 of the last stretch once its max TTL caps a renewal', async () => {
    const t = commandToken(child({ ttlS: 60 }), [{ ttl: 30, renewable: true }]);
    t.keeper.start();
    await t.clock.advance(40_000);
    await t.clock.advance(20_000);
    expect(t.events).toEqual([
      'renew c1 at 40000 wait 10000',
      "replace at 60000: the command's token reaches its max TTL (ends 70000)",
    ]);
  });

  it('asks for a new token when the renewal is refused, or the token is not renewable', async () => {
    const refused = commandToken(child(), [new VaultrunError('PERMISSION_DENIED', 'denied')]);
    refused.keeper.start();
    await refused.clock.advance(40_000);
    expect(refused.events[1]).toBe("replace at 40000: renewing the command's token was refused (ends 60000)");

    const fixed = commandToken(child({ renewable: false }));
    fixed.keeper.start();
    await fixed.clock.advance(40_000);
    expect(fixed.events).toEqual(["replace at 40000: the command's token is not renewable (ends 60000)"]);
  });

  it('retries while Vault is unreachable, and asks for a new one once it expired', async () => {
    const down = new VaultrunError('UNREACHABLE', 'down');
    const t = commandToken(
      child({ ttlS: 60 }),
      Array.from({ length: 100 }, () => down),
    );
    t.keeper.start();
    await t.clock.advance(40_000);
    await t.clock.advance(6_667); // (20 s left) / 3
    expect(t.events.filter((e) => e.startsWith('renew'))).toHaveLength(2);
    await t.clock.advance(30_000);
    expect(t.events.at(-1)).toMatch(/^replace at [\d.]+: the command's token expired/);
  });
});
