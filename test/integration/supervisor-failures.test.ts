// The supervisor's failure paths, each driven for real against OpenBao: the server sealed while a renewal is
// due, the token revoked from outside, the AppRole secret_id expired before a re-login, a VAULT_TOKEN at its
// max TTL, a re-login while sealed (and its retry loop), --stop-signal. Each test checks what the operator sees
// (vaultrun's log lines and exit status) and what the app sees (it keeps running, restarts only on a change).
// Nothing is timed: every wait is for a log line or an app event, with a generous timeout against a hang.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { Sensitive, unique } from '../support/resolution.js';
import {
  eventsOf,
  type Resident,
  ROTATION_APP,
  running,
  startResident,
  starts,
  WATCH_FAST,
  waitForEvents,
  waitForStart,
} from '../support/rotation.js';

const POLICY = `
path "secret/data/fail/*" { capabilities = ["read"] }
path "secret/metadata/fail/*" { capabilities = ["read"] }
`;

describe('supervisor failure paths (real OpenBao)', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    sensitive.add('unseal key', await bao.unsealKey());
    await bao.writePolicy('fail-read', POLICY);
    await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** An AppRole role; returns its role_id and a fresh secret_id (both sensitive). */
  async function approle(role: string, settings: Record<string, unknown>) {
    await bao.api('POST', `auth/approle/role/${role}`, { token_policies: ['fail-read'], ...settings });
    const rid = await bao.api<{ data: { role_id: string } }>('GET', `auth/approle/role/${role}/role-id`);
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      `auth/approle/role/${role}/secret-id`,
      {},
    );
    sensitive.add(`${role} role_id`, rid.data.role_id);
    sensitive.add(`${role} secret_id`, sid.data.secret_id);
    return { VAULT_ROLE_ID: rid.data.role_id, VAULT_SECRET_ID: sid.data.secret_id };
  }

  async function accessors(): Promise<Set<string>> {
    const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
    return new Set(res.data.keys);
  }

  function setup(path: string, extra: Record<string, string>) {
    const appLog = join(workDir('vaultrun-fail-'), 'app.log');
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      APP_LOG: appLog,
      APP_VARS: 'DB_PASSWORD',
      DB_PASSWORD: `vault:secret/${path}#password`,
      ...extra,
    });
    return { appLog, env };
  }

  /** A value in KV, known as sensitive. */
  async function put(path: string, label: string): Promise<string> {
    const value = sensitive.add(label, unique(label));
    await bao.kvPut(path, { password: value });
    return value;
  }

  /** SIGTERM; vaultrun exits 0 (the app's status); nothing sensitive was printed. */
  async function stop(run: Resident): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(sensitive.leaks(`${res.stdout}${res.stderr}`)).toEqual([]);
  }

  /** A KV change after the failure: exactly one restart, with the new value (polling works again). */
  async function expectOneRestartOnChange(run: Resident, appLog: string, path: string): Promise<void> {
    const before = starts(appLog).length;
    const value = await put(path, `${path.replaceAll('/', '-')}-after`);
    const next = await waitForStart(appLog, before + 1);
    expect(next.vars?.DB_PASSWORD).toBe(value);
    expect(run.count('secrets changed: restarting the command')).toBe(before);
  }

  it('token renewal while Vault is sealed: warned, retried, the app untouched; after the unseal polling and renewal go on', async () => {
    const path = 'fail/sealed-renewal';
    await put(path, 'sealed-v1');
    const creds = await approle('sealed', { token_ttl: '9s', token_max_ttl: '1h' });
    const { appLog, env } = setup(path, creds);
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');
    await bao.seal();
    try {
      const warning = await run.waitForLog(
        (l) => l.msg === 'Vault unreachable: could not renew the token; retrying',
        'the renewal warning',
      );
      expect(warning.level).toBe('warn');
      expect(typeof warning.expires_in_s).toBe('number');
      expect(running(first.pid)).toBe(true);
    } finally {
      await bao.unseal();
    }
    // Either the retry renews the token in time, or (a slow unseal) it expired and vaultrun logs in again.
    const back = await run.waitForLog(
      (l) =>
        l.msg === 'Vault reachable again: token renewed' ||
        (l.msg === 'logged in again' && l.reason === 'the token expired while Vault was unreachable'),
      'renewal or re-login after the unseal',
    );
    expect(back.level).toBe('info');
    expect(eventsOf(appLog, first.pid)).toEqual(['start']);
    await expectOneRestartOnChange(run, appLog, path);
    expect(run.logs().filter((l) => l.level === 'error')).toEqual([]);
    await stop(run);
  });

  it('the token revoked from outside: renewal refused → a new login; the app keeps running; polling resumes under the new token', async () => {
    const path = 'fail/revoked';
    await put(path, 'revoked-v1');
    const creds = await approle('revoked', { token_ttl: '6s', token_max_ttl: '1h' });
    const { appLog, env } = setup(path, creds);
    const before = await accessors();
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    const [accessor, ...more] = [...(await accessors())].filter((a) => !before.has(a));
    expect(more).toEqual([]);
    expect(accessor).toBeDefined();
    await bao.api('POST', 'auth/token/revoke-accessor', { accessor });
    const relogin = await run.waitForLog((l) => l.msg === 'logged in again', 'the re-login');
    expect(relogin.reason).toBe('the token renewal was refused');
    expect(relogin.method).toBe('approle');
    expect(eventsOf(appLog, first.pid)).toEqual(['start']); // a re-login alone changes nothing for the app
    await expectOneRestartOnChange(run, appLog, path);
    await stop(run);
  });

  it('the secret_id expired before the re-login at max TTL: warned with the error code and a hint, retried; the app keeps running; exit is clean', async () => {
    const path = 'fail/expired-secret-id';
    await put(path, 'expired-v1');
    // The first login uses the secret_id; it is gone (TTL) by the time the token's max TTL asks for another.
    const creds = await approle('expiring', { token_ttl: '3s', token_max_ttl: '6s', secret_id_ttl: '2s' });
    const { appLog, env } = setup(path, creds);
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    const failed = await run.waitForLog(
      (l) => l.msg === 'the token reaches its max TTL, and logging in again failed: retrying',
      'the failed re-login',
    );
    expect(failed.level).toBe('warn');
    expect(failed.error).toBe('LOGIN_FAILED');
    expect(failed.hint).toMatch(/secret_id/);
    expect(running(first.pid)).toBe(true);
    expect(starts(appLog)).toHaveLength(1);
    expect(run.count('logged in again')).toBe(0);
    await stop(run);
  });

  it('a re-login while Vault is sealed fails, and the retry loop logs in once it is unsealed', async () => {
    const path = 'fail/relogin-sealed';
    await put(path, 'relogin-v1');
    const creds = await approle('relogin', { token_ttl: '3s', token_max_ttl: '1h' });
    const { appLog, env } = setup(path, creds);
    // --wait 2s: each login attempt gives up after 2 s of "sealed" answers (the loop, not one attempt, waits).
    const run = startResident([...WATCH_FAST, '--wait', '2s', 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    await run.waitForLog((l) => l.msg === 'renewed the token', 'a first renewal');
    await bao.seal();
    let failed: Awaited<ReturnType<Resident['waitForLog']>>;
    try {
      // Sealed until the token has expired: renewals fail, then the re-login fails too.
      failed = await run.waitForLog(
        (l) =>
          l.msg === 'the token expired while Vault was unreachable, and logging in again failed: retrying',
        'the failed re-login',
      );
    } finally {
      await bao.unseal();
    }
    expect(failed.error).toBe('UNREACHABLE');
    // The retry loop (every 30 s) logs in once Vault is back.
    // Vault is back while the re-login waits for its retry: polls wait for it instead of asking with the dead
    // token, so nothing reports a permission error (ours, not the policies').
    const unsealed = run.logs().length;
    const relogin = await run.waitForLog((l) => l.msg === 'logged in again', 'the re-login', 90_000);
    expect(relogin.reason).toBe('the token expired while Vault was unreachable');
    const skipped = run
      .logs()
      .slice(unsealed)
      .filter((l) => l.msg === 'a new login is due: watched paths are checked after it');
    expect(skipped.length).toBeGreaterThan(0); // polls came while the login was due (1 s interval, 30 s retry)
    expect(eventsOf(appLog, first.pid)).toEqual(['start']);
    await expectOneRestartOnChange(run, appLog, path);
    // (Revoking the expired old token is refused: a debug line, not a warning.)
    const denied = run
      .logs()
      .filter(
        (l) => l.level !== 'debug' && (l.code === 'PERMISSION_DENIED' || l.error === 'PERMISSION_DENIED'),
      );
    expect(denied).toEqual([]);
    expect(run.logs().filter((l) => l.msg.startsWith('a watched path could not be checked'))).toEqual([]);
    await stop(run);
  }, 150_000);

  it('a VAULT_TOKEN at its max TTL: renewed while it can be, then warned (vaultrun cannot log in again); the app keeps running', async () => {
    const path = 'fail/given-max-ttl';
    await put(path, 'given-v1');
    const created = await bao.api<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
      policies: ['fail-read'],
      // Long enough that a loaded machine still renews before the TTL ends (at 3 s a slow start let the token
      // expire first, which is the other warning), short enough that the max TTL comes within the test.
      ttl: '8s',
      explicit_max_ttl: '16s',
    });
    const token = created.auth.client_token;
    sensitive.add('given token', token);
    const { appLog, env } = setup(path, { VAULT_TOKEN: token });
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    const warning = await run.waitForLog(
      (l) => l.msg.includes('and vaultrun cannot log in again (token given in VAULT_TOKEN)'),
      'the max-TTL warning',
    );
    expect(warning.level).toBe('warn');
    expect(warning.msg).toMatch(/^the token reaches its max TTL/);
    expect(warning.hint).toMatch(/renewable token|AppRole/);
    expect(run.count('renewed the token')).toBeGreaterThanOrEqual(1);
    expect(running(first.pid)).toBe(true);
    expect(starts(appLog)).toHaveLength(1);
    await stop(run);
  });

  // An error in a background task, for real: the runtime directory is replaced by a file while the command
  // runs, then a secret changes. Writing the new secret files fails; the command keeps its old values, the
  // operator sees an error saying so, and the change is tried again until the directory is back.
  it('the secret files of a change cannot be written: an error, the app keeps its old values; tried again until it works', async () => {
    const path = 'fail/files';
    const v1 = await put(path, 'files-v1');
    const dir = workDir('vaultrun-fail-');
    const runtime = join(dir, 'rt');
    mkdirSync(runtime, { mode: 0o700 });
    const appLog = join(dir, 'app.log');
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      APP_LOG: appLog,
      APP_FILE_VARS: 'DB_PASSWORD_FILE',
      DB_PASSWORD_FILE: `vault:secret/${path}#password`,
    });
    const run = startResident([...WATCH_FAST, '--runtime-dir', runtime, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    expect(first.files?.DB_PASSWORD_FILE?.content).toBe(v1);
    await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');
    rmSync(runtime, { recursive: true, force: true });
    writeFileSync(runtime, 'not a directory');
    const v2 = await put(path, 'files-v2');
    const failed = await run.waitForLog(
      (l) =>
        l.msg === 'could not write the changed secret files: the command keeps running with the old values',
      'the write failure',
    );
    expect(failed.level).toBe('error');
    expect(failed.code).toBe('IO');
    expect(String(failed.error)).toMatch(
      /^cannot write secret file .*\/DB_PASSWORD: its directory was removed$/,
    );
    expect(failed.retry_in_s).toBe(1);
    // Tried again (at least once more) while the directory is still a file; the app is untouched.
    await run.waitForLog(
      (l) =>
        run.count('could not write the changed secret files') >= 2 && l.msg.startsWith('could not write'),
      'a second attempt',
    );
    expect(eventsOf(appLog, first.pid)).toEqual(['start']);
    expect(run.count('internal error')).toBe(0);
    rmSync(runtime, { force: true });
    mkdirSync(runtime, { mode: 0o700 });
    const second = await waitForStart(appLog, 2);
    expect(second.files?.DB_PASSWORD_FILE?.content).toBe(v2);
    expect(run.count('secrets changed: restarting the command')).toBe(1);
    await stop(run);
  });

  it('--stop-signal SIGINT: a restart and the exit stop the app with SIGINT', async () => {
    const path = 'fail/stop-signal';
    await put(path, 'stopsig-v1');
    const token = await bao.createToken({ policies: ['fail-read'], ttl: '1h' });
    sensitive.add('stop-signal token', token);
    const { appLog, env } = setup(path, { VAULT_TOKEN: token });
    const run = startResident([...WATCH_FAST, '--stop-signal', 'SIGINT', 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    await put(path, 'stopsig-v2');
    const second = await waitForStart(appLog, 2);
    expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGINT']);
    const stopping = run.logs().find((l) => l.msg === 'stopping the command');
    expect(stopping?.signal).toBe('SIGINT');
    // A SIGTERM to vaultrun is forwarded as it is; the app (which exits on SIGTERM) ends, vaultrun with it.
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    await waitForEvents(
      appLog,
      (es) => es.some((e) => e.pid === second.pid && e.event === 'SIGTERM'),
      'SIGTERM',
    );
  });
});
