// Rotation of KV v2 secrets (--watch): vaultrun stays resident, polls the metadata of each watched path for
// its current version, and on a change restarts the command (default) or rewrites its secret files and sends
// it a signal (--on-change=signal:SIG). Real OpenBao (its audit log counts the requests), real processes.
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { unique } from '../support/resolution.js';
import {
  appEvents,
  type Resident,
  ROTATION_APP,
  running,
  startResident,
  starts,
  WATCH_FAST,
  waitForEvents,
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

describe('rotation of KV v2 secrets', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** Requests (as the audit log has them) for `secret/<kind>/<path>` with operation read. */
  async function reads(kind: 'data' | 'metadata', path: string): Promise<number> {
    return (await bao.auditEntries()).filter(
      (e) => e.type === 'request' && e.operation === 'read' && e.path === `secret/${kind}/${path}`,
    ).length;
  }

  /** Waits until `n` more polls of the path have been answered than now. */
  async function morePolls(path: string, n: number): Promise<void> {
    const before = await reads('metadata', path);
    await waitUntil(async () => (await reads('metadata', path)) >= before + n, `${n} more polls of ${path}`);
  }

  function setup(vars: Record<string, string>): { appLog: string; env: Record<string, string> } {
    const dir = workDir('vaultrun-rot-');
    const appLog = join(dir, 'app.log');
    return {
      appLog,
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        APP_LOG: appLog,
        APP_VARS: Object.keys(vars).join(','),
        ...vars,
      }),
    };
  }

  async function stop(run: Resident): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
  }

  const restarts = (run: Resident) =>
    run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');

  it('an update restarts the command exactly once, after the next poll; no change, no restart', async () => {
    const path = 'rot/one';
    const v1 = unique('kv-one-v1');
    const v2 = unique('kv-one-v2');
    await bao.kvPut(path, { password: v1 });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    expect(first.vars?.DB_PASSWORD).toBe(v1);
    expect(first.ppid).toBe(run.pid); // resident: the app is vaultrun's child

    // No change: polls come and go, the command is left alone.
    await morePolls(path, 3);
    expect(starts(appLog)).toHaveLength(1);
    expect(restarts(run)).toHaveLength(0);

    await bao.kvPut(path, { password: v2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v2);
    expect(second.pid).not.toBe(first.pid);
    // The old one was asked to stop (SIGTERM, the default stop signal) and is gone.
    expect(appEvents(appLog).filter((e) => e.pid === first.pid && e.event === 'SIGTERM')).toHaveLength(1);
    expect(running(first.pid)).toBe(false);

    // Later polls see nothing new: still one restart.
    await morePolls(path, 3);
    expect(starts(appLog)).toHaveLength(2);
    const logged = restarts(run);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.variables).toBe('DB_PASSWORD');
    expect(logged[0]?.reason).toContain(`secret/${path} changed (version 1 → 2)`);
    // Polls asked the metadata; the secret itself was read twice: at the start and after the change.
    expect(await reads('data', path)).toBe(2);
    expect(run.stderr()).not.toContain(v1);
    expect(run.stderr()).not.toContain(v2);
    await stop(run);
  });

  it('a new version with the same values re-resolves but does not restart (debug log); VAULTRUN_WATCH works', async () => {
    const path = 'rot/same';
    const value = unique('kv-same');
    await bao.kvPut(path, { password: value });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident(
      ['--poll-interval', '1s', '--debounce', '100ms', '--log-level', 'debug', 'node', ROTATION_APP],
      {
        env: { ...env, VAULTRUN_WATCH: 'true' },
      },
    );
    await waitForStart(appLog, 1);
    await bao.kvPut(path, { password: value }); // version 2, same data
    await run.waitForLog(
      (l) => l.msg === 're-resolved: nothing changed for the command',
      'the no-op re-resolution',
    );
    await morePolls(path, 2);
    expect(starts(appLog)).toHaveLength(1);
    expect(restarts(run)).toHaveLength(0);
    expect(await reads('data', path)).toBe(2); // the re-resolution read version 2 once
    await stop(run);
  });

  it('a burst of 5 updates gives one restart, with the last value', async () => {
    const path = 'rot/burst';
    await bao.kvPut(path, { password: unique('kv-burst-0') });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    // The debounce window is longer than the poll interval: polls that see the burst at different points all
    // fall into one window.
    const run = startResident(
      ['--watch', '--poll-interval', '1s', '--debounce', '1500ms', 'node', ROTATION_APP],
      {
        env,
      },
    );
    await waitForStart(appLog, 1);
    let last = '';
    for (let i = 1; i <= 5; i++) {
      last = unique(`kv-burst-${i}`);
      await bao.kvPut(path, { password: last });
    }
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(last);
    await morePolls(path, 3);
    // Polls made while the restart was under way may re-resolve once more (the same values): never a restart.
    await waitUntil(() => run.logs().some((l) => l.msg === 'restarted the command'), 'the restart to finish');
    await morePolls(path, 2);
    expect(starts(appLog)).toHaveLength(2);
    expect(restarts(run)).toHaveLength(1);
    await stop(run);
  });

  it('a change noticed while the old command stops is taken into the start that follows: one restart, newest values', async () => {
    const path = 'rot/late';
    const [v1, v2, v3] = ['v1', 'v2', 'v3'].map((v) => unique(`kv-late-${v}`));
    await bao.kvPut(path, { password: v1 });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    // The app stops slowly: after SIGTERM it exits only once stopFile exists, i.e. when the test says so.
    const stopFile = join(dirname(appLog), 'stop-now');
    const run = startResident(
      [
        '--watch',
        '--poll-interval',
        '200ms',
        '--debounce',
        '100ms',
        '--log-level',
        'debug',
        'node',
        ROTATION_APP,
        '--stop-when',
        stopFile,
      ],
      { env },
    );
    const first = await waitForStart(appLog, 1);
    expect(first.vars?.DB_PASSWORD).toBe(v1);

    await bao.kvPut(path, { password: v2 });
    await waitForEvents(
      appLog,
      (es) => es.some((e) => e.pid === first.pid && e.event === 'SIGTERM'),
      'the stop signal to the first app',
    );
    // While it stops, v3 comes; polls compare with what the restart is about to start with (version 2).
    await bao.kvPut(path, { password: v3 });
    const lateReason = `secret/${path} changed (version 2 → 3)`;
    const noticed = () => run.logs().filter((l) => l.msg === 'change noticed' && l.reason === lateReason);
    await run.waitForLog((l) => l.msg === 'change noticed' && l.reason === lateReason, 'the late change');
    await morePolls(path, 3);
    expect(noticed()).toHaveLength(1); // once per distinct reason, not at every poll
    expect(starts(appLog)).toHaveLength(1); // nothing starts before the old app has stopped

    writeFileSync(stopFile, '');
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v3);
    await morePolls(path, 3);
    expect(starts(appLog)).toHaveLength(2);
    expect(restarts(run)).toHaveLength(1);
    expect(run.logs().filter((l) => l.msg === 'restarted the command')).toHaveLength(1);
    const again = run
      .logs()
      .filter(
        (l) =>
          l.msg === 'secrets changed again while the command was stopping: it starts with the newest values',
      );
    expect(again).toHaveLength(1);
    expect(again[0]?.reason).toBe(lateReason);
    expect(again[0]?.variables).toBe('DB_PASSWORD');
    // Read at the start, for v2, and for v3: never again after.
    expect(await reads('data', path)).toBe(3);
    for (const v of [v1, v2, v3]) expect(run.stderr()).not.toContain(v);
    await stop(run);
  });

  it('polls one request per watched path per interval, on the metadata, however many variables use it', async () => {
    const a = 'rot/multi-a';
    const b = 'rot/multi-b';
    await bao.kvPut(a, { user: unique('kv-user'), password: unique('kv-pass') });
    await bao.kvPut(b, { token: unique('kv-token') });
    const { appLog, env } = setup({
      DB_USER: `vault:secret/${a}#user`,
      DB_PASSWORD: `vault:secret/${a}#password`,
      DB_URL: `postgres://\${vault:secret/${a}#user}:\${vault:secret/${a}#password}@db/app`,
      API_TOKEN: `vault:secret/${b}#token`,
    });
    const run = startResident(['--watch', '--poll-interval', '1s', 'node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    await run.waitForLog((l) => l.msg.startsWith('resolved 5 references from 2 paths'), 'the start summary');
    const started = Date.now();
    await morePolls(a, 4);
    const elapsed = Date.now() - started;
    const polledA = await reads('metadata', a);
    const polledB = await reads('metadata', b);
    // Each poll asks each path once: as many requests for the path four variables use as for the other one.
    expect(Math.abs(polledA - polledB)).toBeLessThanOrEqual(1);
    // At most one request per interval (poll interval 1 s with ±10% jitter, so never closer than 0.9 s).
    expect(polledA).toBeLessThanOrEqual(Math.floor((elapsed + 1000) / 900) + 1);
    // The secrets themselves were read once each, at the start.
    expect(await reads('data', a)).toBe(1);
    expect(await reads('data', b)).toBe(1);
    expect(starts(appLog)).toHaveLength(1);
    await stop(run);
  });

  it('a policy without read on the metadata: polling reads the secret instead (warned once), and still sees changes', async () => {
    const path = 'rot/nometa';
    await bao.kvPut(path, { password: unique('nometa-v1') });
    await bao.writePolicy('data-only', `path "secret/data/${path}" { capabilities = ["read"] }`);
    const token = await bao.createToken({ policies: ['data-only'] });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident(
      ['--watch', '--poll-interval', '1s', '--debounce', '100ms', 'node', ROTATION_APP],
      {
        env: { ...env, VAULT_TOKEN: token },
      },
    );
    await waitForStart(appLog, 1);
    const warning = 'no read permission on the metadata of a watched path: polling reads the secret instead';
    await run.waitForLog((l) => l.msg === warning, 'the metadata warning');
    const reads0 = await reads('data', path);
    await waitUntil(async () => (await reads('data', path)) >= reads0 + 2, 'two full reads by polling');
    const v2 = unique('nometa-v2');
    await bao.kvPut(path, { password: v2 });
    expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(v2);
    expect(run.count(warning)).toBe(1);
    expect(await reads('metadata', path)).toBe(1); // asked once, then never again
    await stop(run);
  });

  it('a token revoked while running: polls warn once (permission denied), the command keeps running', async () => {
    const path = 'rot/revoked';
    await bao.kvPut(path, { password: unique('revoked') });
    await bao.writePolicy('rot-all', 'path "secret/*" { capabilities = ["read"] }');
    const token = await bao.createToken({ policies: ['rot-all'] });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident(['--watch', '--poll-interval', '1s', 'node', ROTATION_APP], {
      env: { ...env, VAULT_TOKEN: token },
    });
    const first = await waitForStart(appLog, 1);
    await morePolls(path, 1);
    await bao.api('POST', 'auth/token/revoke', { token });
    const warned = await run.waitForLog(
      (l) => l.msg === 'a watched path could not be checked; the command keeps running',
      'the warning',
    );
    expect(warned.code).toBe('PERMISSION_DENIED');
    expect(warned.path).toBe(`secret/${path}`);
    await morePolls(path, 3); // denied requests are audited too
    // Not mistaken for a policy without metadata access, and not repeated at every interval.
    expect(run.count('no read permission on the metadata')).toBe(0);
    expect(run.count('a watched path could not be checked')).toBe(1);
    expect(running(first.pid)).toBe(true);
    expect(starts(appLog)).toHaveLength(1);
    await stop(run);
  });

  it('signal:SIGHUP rewrites the secret file atomically (same path, new inode, 0400) and signals, without a restart', async () => {
    const path = 'rot/signal';
    const values = [unique('kv-sig-v1'), unique('kv-sig-v2'), unique('kv-sig-v3')];
    await bao.kvPut(path, { password: values[0] });
    const runtime = join(workDir('vaultrun-rot-'), 'rt');
    const { appLog, env } = setup({
      SECRET_FILE: `vault:secret/${path}#password`,
      ENV_PW: `vault:secret/${path}#password`,
    });
    const run = startResident(
      [
        '--watch',
        '--poll-interval',
        '1s',
        '--debounce',
        '100ms',
        '--on-change',
        'signal:SIGHUP',
        '--runtime-dir',
        runtime,
        'node',
        ROTATION_APP,
        '--read-loop',
        'SECRET_FILE',
      ],
      { env: { ...env, APP_FILE_VARS: 'SECRET_FILE' } },
    );
    const first = await waitForStart(appLog, 1);
    const initial = first.files?.SECRET_FILE;
    expect(initial?.content).toBe(values[0]);
    expect(initial?.mode).toBe(0o400);
    const own = dirname(initial?.path as string); // RUNTIME/PID-XXXXXX/SECRET
    expect(dirname(own)).toBe(runtime);
    expect(basename(initial?.path as string)).toBe('SECRET');
    expect(statSync(runtime).mode & 0o777).toBe(0o700);
    expect(statSync(own).mode & 0o777).toBe(0o700);

    let ino = initial?.ino;
    for (const [n, value] of values.slice(1).entries()) {
      await bao.kvPut(path, { password: value });
      const events = await waitForEvents(
        appLog,
        (es) => es.filter((e) => e.event === 'SIGHUP').length >= n + 1,
        `SIGHUP #${n + 1}`,
      );
      const hup = events.filter((e) => e.event === 'SIGHUP')[n];
      const file = hup?.files?.SECRET_FILE;
      expect(file?.content).toBe(value); // rewritten before the signal was sent
      expect(file?.path).toBe(initial?.path);
      expect(file?.mode).toBe(0o400);
      expect(file?.ino).not.toBe(ino); // a rename, not a rewrite in place
      ino = file?.ino;
    }
    const events = appEvents(appLog);
    // No restart: one start, one process, never a SIGTERM.
    expect(starts(appLog)).toHaveLength(1);
    expect(events.filter((e) => e.event === 'SIGTERM')).toHaveLength(0);
    expect(new Set(events.map((e) => e.pid))).toEqual(new Set([first.pid]));
    // The app read the file the whole time: it never saw anything but complete values.
    const seen = events.filter((e) => e.event === 'seen').map((e) => e.content);
    expect(seen).toEqual(values);
    expect(readdirSync(own)).toEqual(['SECRET']); // no temporary file left behind
    const sighup = () => run.logs().filter((l) => l.msg === 'secrets changed: sending SIGHUP to the command');
    await waitUntil(() => sighup().length >= 2, "vaultrun's second SIGHUP line");
    const signalled = sighup();
    expect(signalled).toHaveLength(2);
    expect(signalled[0]?.variables).toBe('ENV_PW,SECRET_FILE');
    // The variable in the environment cannot change without a restart: a warning names it.
    const warned = run
      .logs()
      .filter((l) => l.msg === 'changed environment variables reach the command only by a restart');
    expect(warned).toHaveLength(2);
    expect(warned[0]?.variables).toBe('ENV_PW');
    for (const value of values) expect(run.stderr()).not.toContain(value);
    await stop(run);
    // On exit the secret file is removed, with the process's own directory.
    expect(readdirSync(runtime)).toEqual([]);
  });
});
