import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../../src/errors.js';
import { Timers } from '../../../src/run/rotation/timers.js';
import {
  afterRenewal,
  LOGIN_RETRY_MS,
  OurToken,
  renewalWaitMs,
  type TokenCalls,
  tokenRenewalDelayMs,
} from '../../../src/run/rotation/token.js';
import type { Session } from '../../../src/vault/auth-types.js';
import { FakeClock, recordingLogger } from '../../support/fake-clock.js';

describe('tokenRenewalDelayMs: at 2/3 of the TTL', () => {
  it.each([
    [3600, 2_400_000],
    [60, 40_000],
    [3, 2_000],
    [0, 0],
  ])('TTL %i s → renew after %i ms', (ttl, expected) => {
    expect(tokenRenewalDelayMs(ttl)).toBe(expected);
  });
});

describe('afterRenewal: renew again, or log in again once the max TTL caps the token', () => {
  it.each<[string, { ttl: number; renewable: boolean }, number, { next: 'renew' | 'login'; inMs: number }]>([
    ['the full TTL again', { ttl: 3600, renewable: true }, 3600, { next: 'renew', inMs: 2_400_000 }],
    ['more than asked', { ttl: 7200, renewable: true }, 3600, { next: 'renew', inMs: 4_800_000 }],
    ['capped by the max TTL', { ttl: 1200, renewable: true }, 3600, { next: 'login', inMs: 800_000 }],
    ['no longer renewable', { ttl: 3600, renewable: false }, 3600, { next: 'login', inMs: 2_400_000 }],
  ])('%s', (_name, renewed, base, expected) => {
    expect(afterRenewal(renewed, base)).toEqual(expected);
  });
});

describe('renewalWaitMs', () => {
  it.each([
    [0, 1_000],
    [1_500, 1_000],
    [10_000, 5_000],
    [60_000, 30_000],
    [3_600_000, 30_000],
  ])('%i ms left → wait at most %i ms', (left, expected) => {
    expect(renewalWaitMs(left)).toBe(expected);
  });
});

function session(token: string, over: Partial<Session> = {}): Session {
  return {
    token,
    method: 'approle',
    source: 'approle at auth/approle',
    ttl: 60,
    renewable: true,
    created: true,
    relogin: { approleMount: 'approle', secretIdWrapped: false, deleteSecretIdFile: false },
    ...over,
  };
}

type Step = { ttl: number; renewable: boolean } | VaultrunError;

function ourToken(
  first: Session,
  options: { renewals?: Step[]; logins?: Array<Session | VaultrunError>; leased?: string[] } = {},
) {
  const clock = new FakeClock();
  const { log, lines } = recordingLogger();
  const timers = new Timers(() => {}, clock);
  const start = clock.now();
  let current: Session | undefined = first;
  const events: string[] = [];
  const readAgain: Array<{ reason: string; readIds: string[]; deadline: number | undefined }> = [];
  const renewals = [...(options.renewals ?? [])];
  const logins = [...(options.logins ?? [])];
  const calls: TokenCalls = {
    renew: async (token, waitMs) => {
      events.push(`renew ${token} at ${Math.round(clock.now() - start)} wait ${Math.round(waitMs)}`);
      const next = renewals.shift() ?? { ttl: first.ttl, renewable: true };
      if (next instanceof VaultrunError) throw next;
      return next;
    },
    login: async () => {
      events.push(`login at ${Math.round(clock.now() - start)}`);
      const next = logins.shift() ?? session('fresh');
      if (next instanceof VaultrunError) throw next;
      return next;
    },
    revoke: async (token) => {
      events.push(`revoke ${token} at ${Math.round(clock.now() - start)}`);
    },
  };
  const token = new OurToken({
    timers,
    log,
    revoke: true,
    session: () => current,
    calls,
    replaceSession: (s) => {
      current = s;
    },
    leasedReads: () => options.leased ?? [],
    readAgain: (reason, readIds, deadline) => readAgain.push({ reason, readIds, deadline }),
  });
  return { clock, start, token, events, readAgain, lines, calls, current: () => current };
}

describe('OurToken', () => {
  it('renews at 2/3 of the TTL, each time', async () => {
    const t = ourToken(session('t1', { ttl: 60 }));
    t.token.start();
    await t.clock.advance(39_999);
    expect(t.events).toEqual([]);
    await t.clock.advance(1);
    await t.clock.advance(40_000);
    expect(t.events).toEqual(['renew t1 at 40000 wait 10000', 'renew t1 at 80000 wait 10000']);
  });

  it('logs in again at 2/3 of the last stretch once the max TTL caps a renewal, then revokes the old token', async () => {
    const t = ourToken(session('t1', { ttl: 60 }), { renewals: [{ ttl: 30, renewable: true }] });
    t.token.start();
    await t.clock.advance(40_000); // renewal: capped at 30 s
    await t.clock.advance(19_999);
    expect(t.events).toEqual(['renew t1 at 40000 wait 10000']);
    await t.clock.advance(1);
    expect(t.events).toEqual(['renew t1 at 40000 wait 10000', 'login at 60000', 'revoke t1 at 60000']);
    expect(t.current()?.token).toBe('fresh');
    expect(t.lines().find((l) => l.msg === 'logged in again')).toMatchObject({
      reason: 'the token reaches its max TTL',
    });
    // The new token is renewed on its own clock.
    await t.clock.advance(40_000);
    expect(t.events.at(-1)).toBe('renew fresh at 100000 wait 10000');
  });

  it('after a new login, has the leased secrets read again before the old token ends; the old token is revoked later', async () => {
    const t = ourToken(session('t1', { ttl: 60, renewable: false }), { leased: ['database/creds/app'] });
    t.token.start();
    await t.clock.advance(40_000);
    expect(t.events).toEqual(['login at 40000']);
    expect(t.readAgain).toEqual([
      {
        reason: 'the token was replaced: dynamic secrets are read again under the new one',
        readIds: ['database/creds/app'],
        deadline: t.start + 60_000,
      },
    ]);
    await t.token.revokeRetired();
    expect(t.events).toEqual(['login at 40000', 'revoke t1 at 40000']);
  });

  it('retries while Vault is unreachable, and logs in again once the token expired meanwhile', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const t = ourToken(session('t1', { ttl: 60 }), { renewals: [unreachable, unreachable, unreachable] });
    t.token.start();
    await t.clock.advance(40_000); // 20 s left: retry in 6.67 s
    await t.clock.advance(6_667); // 13.3 s left: retry in 4.44 s
    await t.clock.advance(4_445); // 8.9 s left: retry in 2.96 s
    expect(t.events).toEqual([
      'renew t1 at 40000 wait 10000',
      'renew t1 at 46667 wait 6667',
      'renew t1 at 51111 wait 4444',
    ]);
    expect(
      t.lines().filter((l) => l.msg === 'Vault unreachable: could not renew the token; retrying'),
    ).toHaveLength(3);
    // Back: the next renewal works and says so.
    await t.clock.advance(2_963);
    expect(t.lines().some((l) => l.msg === 'Vault reachable again: token renewed')).toBe(true);

    const late = ourToken(session('t1', { ttl: 3 }), { renewals: [unreachable, unreachable, unreachable] });
    late.token.start();
    await late.clock.advance(2_000); // 1 s left: retry in 0.5 s
    await late.clock.advance(1_000); // 0.5 s left: retry in 0.5 s; then expired: a login, whatever happens
    expect(late.events).toEqual([
      'renew t1 at 2000 wait 1000',
      'renew t1 at 2500 wait 1000',
      'renew t1 at 3000 wait 1000',
      'login at 3000',
      'revoke t1 at 3000',
    ]);
  });

  it('logs in again when the renewal is refused, and retries a failed login every 30 s', async () => {
    const refused = new VaultrunError('PERMISSION_DENIED', 'permission denied');
    const failed = new VaultrunError('LOGIN_FAILED', 'login refused');
    const t = ourToken(session('t1', { ttl: 60 }), { renewals: [refused], logins: [failed] });
    t.token.start();
    await t.clock.advance(40_000);
    expect(t.events).toEqual(['renew t1 at 40000 wait 10000', 'login at 40000']);
    expect(t.lines().find((l) => l.level === 'warn')).toMatchObject({
      msg: 'the token renewal was refused, and logging in again failed: retrying',
      error: 'LOGIN_FAILED',
    });
    await t.clock.advance(LOGIN_RETRY_MS);
    expect(t.events.slice(2)).toEqual(['login at 70000', 'revoke t1 at 70000']);
  });

  it('due while the token expired, a login is under way or waits for its retry; ready() waits for (or starts) that login', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const t = ourToken(session('t1', { ttl: 3 }), {
      renewals: [unreachable, unreachable, unreachable, unreachable],
      logins: [unreachable, session('t2', { ttl: 60 })],
    });
    t.token.start();
    expect(t.token.due).toBe(false);
    expect(await t.token.ready()).toBe(true);
    expect(t.events).toEqual([]); // nothing due: no request
    await t.clock.advance(2_999); // renewals fail; 1 ms left
    expect(t.token.due).toBe(false);
    await t.clock.advance(1); // expired: the login fails (unreachable), its retry waits 30 s
    expect(t.events.slice(-1)).toEqual(['login at 3000']);
    expect(t.token.due).toBe(true);
    // Vault is back before the retry: ready() logs in now instead of letting a request fail with the old token.
    await t.clock.advance(5_000);
    expect(await t.token.ready()).toBe(true);
    expect(t.token.due).toBe(false);
    expect(t.events.slice(-2)).toEqual(['login at 8000', 'revoke t1 at 8000']);
    expect(t.lines().find((l) => l.msg === 'logged in again')?.reason).toBe(
      'the token expired while Vault was unreachable',
    );
    // The retry of the failed login was cancelled: one login, not two.
    await t.clock.advance(LOGIN_RETRY_MS);
    expect(t.events.filter((e) => e.startsWith('login'))).toEqual(['login at 3000', 'login at 8000']);
  });

  it('nudge() (a poll skipped for a due login) tries the login now; a failed login is warned once, its retries at debug level', async () => {
    const unreachable = new VaultrunError('UNREACHABLE', 'Vault unreachable');
    const t = ourToken(session('t1', { ttl: 3 }), {
      renewals: [unreachable, unreachable, unreachable, unreachable],
      logins: [unreachable, unreachable, session('t2', { ttl: 60 })],
    });
    t.token.start();
    t.token.nudge(); // nothing due: nothing asked
    await t.clock.advance(0);
    expect(t.events).toEqual([]);
    await t.clock.advance(3_000); // expired: the login fails, its retry waits 30 s
    expect(t.events.slice(-1)).toEqual(['login at 3000']);
    await t.clock.advance(2_000);
    t.token.nudge(); // a poll: the login is tried now, and fails again
    await t.clock.advance(0);
    expect(t.events.slice(-1)).toEqual(['login at 5000']);
    await t.clock.advance(2_000);
    t.token.nudge(); // Vault is back: logged in at the next poll, not at the retry
    await t.clock.advance(0);
    expect(t.events.slice(-2)).toEqual(['login at 7000', 'revoke t1 at 7000']);
    expect(t.token.due).toBe(false);
    const failures = t.lines().filter((l) => String(l.msg).includes('logging in again failed'));
    expect(failures.map((l) => l.level)).toEqual(['warn', 'debug']);
    await t.clock.advance(LOGIN_RETRY_MS); // the pending retry was cancelled
    expect(t.events.filter((e) => e.startsWith('login'))).toEqual([
      'login at 3000',
      'login at 5000',
      'login at 7000',
    ]);
  });

  it('ready() during a login under way joins it (one login); never due for a token it cannot log in again with', async () => {
    let finish: (s: Session) => void = () => {};
    const t = ourToken(session('t1', { ttl: 60 }), {
      renewals: [new VaultrunError('PERMISSION_DENIED', 'no')],
    });
    t.calls.login = () => {
      t.events.push(`login at ${t.clock.now() - t.start}`);
      return new Promise<Session>((resolve) => (finish = resolve));
    };
    t.token.start();
    await t.clock.advance(40_000); // renewal refused: a login starts, and waits
    expect(t.token.due).toBe(true);
    let ready: boolean | undefined;
    const waiting = t.token.ready().then((r) => (ready = r));
    await t.clock.advance(0);
    expect(ready).toBeUndefined();
    finish(session('t2'));
    await waiting;
    expect(ready).toBe(true);
    expect(t.events.filter((e) => e.startsWith('login'))).toEqual(['login at 40000']);

    const given = ourToken(session('t1', { ttl: 3, relogin: undefined, created: false }), {
      renewals: [new VaultrunError('UNREACHABLE', 'Vault unreachable')],
    });
    given.token.start();
    await given.clock.advance(10_000);
    expect(given.token.due).toBe(false);
    expect(await given.token.ready()).toBe(true);
  });

  it('cannot log in again with a token given in VAULT_TOKEN: says so, does nothing', async () => {
    const t = ourToken(session('given', { ttl: 60, renewable: false, created: false, relogin: undefined }));
    t.token.start();
    await t.clock.advance(3_600_000);
    expect(t.events).toEqual([]);
    expect(t.lines().map((l) => l.msg)).toEqual([
      'the token is not renewable, and vaultrun cannot log in again (token given in VAULT_TOKEN)',
    ]);
  });

  it('schedules nothing for a token without TTL', async () => {
    const t = ourToken(session('root', { ttl: 0 }));
    t.token.start();
    expect(t.clock.delays()).toEqual([]);
  });

  it('revokes at exit the current token only if vaultrun created it', async () => {
    const created = ourToken(session('mine'));
    await created.token.revokeAll();
    expect(created.events).toEqual(['revoke mine at 0']);
    const given = ourToken(session('given', { created: false }));
    await given.token.revokeAll();
    expect(given.events).toEqual([]);
  });
});
