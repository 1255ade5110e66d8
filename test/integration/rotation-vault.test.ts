// Rotation and Vault itself (--watch): the token is renewed and, at its max TTL, replaced by a new AppRole
// login (polling goes on with the new token); on exit the token vaultrun created is revoked (--no-revoke keeps
// it; a token given in VAULT_TOKEN is never revoked); an OpenBao that goes away and comes back leaves the app
// untouched, and polling resumes. Real OpenBao (its audit log and token store are checked), real processes.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { unique } from '../support/resolution.js';
import {
  eventsOf,
  type Resident,
  ROTATION_APP,
  running,
  startResident,
  starts,
  WATCH_FAST,
  waitForStart,
} from '../support/rotation.js';

const POLICY = `
path "secret/data/rot/*" { capabilities = ["read"] }
path "secret/metadata/rot/*" { capabilities = ["read"] }
`;

describe('rotation: the token and Vault', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.writePolicy('rot-read', POLICY);
    await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** An AppRole role with the given token TTLs; returns its role_id and a fresh secret_id. */
  async function approle(role: string, tokenTtl: string, tokenMaxTtl: string) {
    await bao.api('POST', `auth/approle/role/${role}`, {
      token_policies: ['rot-read'],
      token_ttl: tokenTtl,
      token_max_ttl: tokenMaxTtl,
    });
    const rid = await bao.api<{ data: { role_id: string } }>('GET', `auth/approle/role/${role}/role-id`);
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      `auth/approle/role/${role}/secret-id`,
      {},
    );
    return { VAULT_ROLE_ID: rid.data.role_id, VAULT_SECRET_ID: sid.data.secret_id };
  }

  async function accessors(): Promise<Set<string>> {
    const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
    return new Set(res.data.keys);
  }

  /** Whether the token of an accessor is still valid (lookup with the root token). */
  async function accessorValid(accessor: string): Promise<boolean> {
    try {
      await bao.api('POST', 'auth/token/lookup-accessor', { accessor });
      return true;
    } catch (error) {
      if (error instanceof OpenBaoApiError && error.status === 400) return false; // "invalid accessor"
      throw error;
    }
  }

  async function count(path: string, operation?: string): Promise<number> {
    return (await bao.auditEntries()).filter(
      (e) =>
        e.type === 'request' && e.path === path && (operation === undefined || e.operation === operation),
    ).length;
  }

  function setup(path: string, extra: Record<string, string>) {
    const appLog = join(workDir('vaultrun-rotv-'), 'app.log');
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      APP_LOG: appLog,
      APP_VARS: 'DB_PASSWORD',
      DB_PASSWORD: `vault:secret/${path}#password`,
      ...extra,
    });
    return { appLog, env };
  }

  async function stop(run: Resident): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
  }

  it('renews the token, logs in again at its max TTL (AppRole), and polling goes on with the new token', async () => {
    const path = 'rot/token';
    const v1 = unique('tok-v1');
    await bao.kvPut(path, { password: v1 });
    const creds = await approle('short', '3s', '6s');
    const { appLog, env } = setup(path, creds);
    const loginsBefore = await count('auth/approle/login');
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], {
      env,
    });
    const first = await waitForStart(appLog, 1);
    expect(first.vars?.DB_PASSWORD).toBe(v1);
    await run.waitForLog((l) => l.msg === 'renewed the token', 'a token renewal');
    // Two re-logins: the app runs through more than two max TTLs of the token (about 11 s).
    await run.waitForLog(
      (l) => l.msg === 'logged in again' && run.count('logged in again') >= 2,
      'two re-logins',
    );
    const relogins = run.logs().filter((l) => l.msg === 'logged in again');
    expect(relogins[0]?.reason).toBe('the token reaches its max TTL');
    expect(relogins[0]?.method).toBe('approle');
    expect((await count('auth/approle/login')) - loginsBefore).toBeGreaterThanOrEqual(3);
    expect(await count('auth/token/renew-self')).toBeGreaterThanOrEqual(1);
    // The replaced tokens were revoked.
    expect(await count('auth/token/revoke-self')).toBeGreaterThanOrEqual(2);
    // A re-login alone changes nothing for the app.
    expect(starts(appLog)).toHaveLength(1);
    // Polling works with the new token: an update restarts the app with the new value.
    const v2 = unique('tok-v2');
    await bao.kvPut(path, { password: v2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v2);
    expect(run.logs().filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    for (const secret of [v1, v2, creds.VAULT_ROLE_ID, creds.VAULT_SECRET_ID]) {
      expect(run.stderr()).not.toContain(secret);
    }
    await stop(run);
  });

  it('on exit revokes the token it created by AppRole login; --no-revoke keeps it', async () => {
    const path = 'rot/revoke';
    await bao.kvPut(path, { password: unique('rev') });
    for (const revoke of [true, false]) {
      const creds = await approle(`exit-${revoke}`, '1h', '2h');
      const { appLog, env } = setup(path, creds);
      const before = await accessors();
      const run = startResident(
        ['--watch', '--poll-interval', '1s', ...(revoke ? [] : ['--no-revoke']), 'node', ROTATION_APP],
        {
          env,
        },
      );
      await waitForStart(appLog, 1);
      const created = [...(await accessors())].filter((a) => !before.has(a));
      expect(created).toHaveLength(1); // vaultrun's login
      const [accessor] = created as [string];
      const info = await bao.api<{ data: { path: string } }>('POST', 'auth/token/lookup-accessor', {
        accessor,
      });
      expect(info.data.path).toBe('auth/approle/login');
      await stop(run);
      expect(await accessorValid(accessor)).toBe(!revoke);
    }
  });

  it('never revokes a token given in VAULT_TOKEN (resident or exec)', async () => {
    const path = 'rot/given';
    await bao.kvPut(path, { password: unique('given') });
    const token = await bao.createToken({ policies: ['rot-read'], ttl: '1h' });
    const { appLog, env } = setup(path, { VAULT_TOKEN: token });
    const run = startResident(['--watch', '--poll-interval', '1s', 'node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    await stop(run);
    const exec = await startResident(['node', ROTATION_APP, '--exit-after', '10'], { env }).result;
    expect(exec.exitCode, exec.stderr).toBe(0);
    expect(starts(appLog)).toHaveLength(2);
    const self = await bao.api<{ data: { policies: string[] } }>(
      'GET',
      'auth/token/lookup-self',
      undefined,
      token,
    );
    expect(self.data.policies).toContain('rot-read');
  });

  it('OpenBao stopped and started again: the app is untouched, vaultrun warns, and polling resumes', async () => {
    // A dev server loses its data when it restarts (the root token id stays the same): the test writes the
    // secret again after the restart, with another value, at version 1 where it was at version 2 before.
    const own = await startOpenBao();
    try {
      const path = 'rot/outage';
      await own.kvPut(path, { password: unique('outage-v0') });
      const v1 = unique('outage-v1');
      await own.kvPut(path, { password: v1 });
      const appLog = join(workDir('vaultrun-rotv-'), 'app.log');
      const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], {
        env: baseEnv({
          VAULT_ADDR: own.addr,
          VAULT_TOKEN: own.rootToken,
          APP_LOG: appLog,
          APP_VARS: 'DB_PASSWORD',
          DB_PASSWORD: `vault:secret/${path}#password`,
        }),
      });
      const first = await waitForStart(appLog, 1);
      expect(first.vars?.DB_PASSWORD).toBe(v1);
      await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');

      await own.stop();
      await run.waitForLog(
        (l) => l.msg.startsWith('Vault unreachable: watched paths are checked again'),
        'the warning',
      );
      expect(running(first.pid)).toBe(true);
      expect(starts(appLog)).toHaveLength(1);

      await own.restart();
      const v2 = unique('outage-v2');
      await own.kvPut(path, { password: v2 });
      await run.waitForLog((l) => l.msg.startsWith('Vault reachable again'), 'the all-clear');
      const second = await waitForStart(appLog, 2);
      expect(second.vars?.DB_PASSWORD).toBe(v2);
      // Until the change, the first app ran undisturbed: its only events are its start and the restart's stop.
      expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGTERM']);
      expect(run.count('Vault unreachable: watched paths are checked again')).toBe(1); // once per outage
      await stop(run);
    } finally {
      await own.stop();
    }
  });
});
