// What vaultrun does on a change besides restart and signal: --on-change=exit (exit 75, the orchestrator
// starts a new container), --change-hook (a command run with the changed variable names), and --pin (variables
// that never change under a running command, e.g. Dify's SECRET_KEY). Real OpenBao, KV v2 changes, --watch.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

describe('on a change: exit, hook, pinned variables', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function metadataReads(path: string): Promise<number> {
    return (await bao.auditEntries()).filter(
      (e) => e.type === 'request' && e.operation === 'read' && e.path === `secret/metadata/${path}`,
    ).length;
  }

  async function morePolls(path: string, n: number): Promise<void> {
    const before = await metadataReads(path);
    await waitUntil(async () => (await metadataReads(path)) >= before + n, `${n} more polls of ${path}`);
  }

  function setup(vars: Record<string, string>): { dir: string; appLog: string; env: Record<string, string> } {
    const dir = workDir('vaultrun-act-');
    const appLog = join(dir, 'app.log');
    return {
      dir,
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

  it('--on-change=exit stops the command and exits 75, without starting it again', async () => {
    const path = 'act/exit';
    const v1 = unique('exit-v1');
    const v2 = unique('exit-v2');
    await bao.kvPut(path, { password: v1 });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident([...WATCH_FAST, '--on-change', 'exit', 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    expect(first.vars?.DB_PASSWORD).toBe(v1);
    await bao.kvPut(path, { password: v2 });
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(75);
    expect(starts(appLog)).toHaveLength(1); // not started again: the orchestrator does that
    expect(appEvents(appLog).filter((e) => e.pid === first.pid && e.event === 'SIGTERM')).toHaveLength(1);
    expect(running(first.pid)).toBe(false);
    const line = run
      .logs()
      .find((l) => l.msg.startsWith('secrets changed: stopping the command and exiting'));
    expect(line?.variables).toBe('DB_PASSWORD');
    expect(res.stderr).not.toContain(v1);
    expect(res.stderr).not.toContain(v2);
  });

  it('--change-hook runs before the restart with VAULTRUN_CHANGED and the new environment; its status is logged', async () => {
    const path = 'act/hook';
    const other = 'act/hook-other';
    const v1 = unique('hook-v1');
    const v2 = unique('hook-v2');
    await bao.kvPut(path, { password: v1 });
    await bao.kvPut(other, { url: 'redis://one' });
    const { dir, appLog, env } = setup({
      DB_PASSWORD: `vault:secret/${path}#password`,
      REDIS_URL: `vault:secret/${other}#url`,
    });
    const hookLog = join(dir, 'hook.log');
    const hook = join(dir, 'hook.sh');
    // The hook records what it got, then fails: the restart happens anyway.
    writeFileSync(
      hook,
      `#!/bin/sh\nprintf '%s|%s|%s|%s\\n' "$VAULTRUN_CHANGED" "$DB_PASSWORD" "$REDIS_URL" "\${VAULT_TOKEN:-unset}" >> ${JSON.stringify(hookLog)}\necho "hook says hello"\nexit 3\n`,
      { mode: 0o755 },
    );
    const run = startResident([...WATCH_FAST, '--change-hook', hook, 'node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    await bao.kvPut(path, { password: v2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v2);
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    // Names only in VAULTRUN_CHANGED; the values are the command's new environment; never our token.
    expect(readFileSync(hookLog, 'utf8')).toBe(`DB_PASSWORD|${v2}|redis://one|unset\n`);
    const ran = run.logs().find((l) => l.msg === 'the change hook failed; going on with --on-change');
    expect(ran?.status).toBe(3);
    expect(ran?.variables).toBe('DB_PASSWORD');
    // It ran before the restart.
    const msgs = run.logs().map((l) => l.msg);
    expect(msgs.indexOf('the change hook failed; going on with --on-change')).toBeLessThan(
      msgs.indexOf('secrets changed: restarting the command'),
    );
    expect(run.stderr()).toContain('hook says hello'); // its output goes to vaultrun's stderr
    expect(run.stderr()).not.toContain(v2);
    await stop(run);
  });

  it.each([
    { what: 'does not exist', status: 127, code: 'ENOENT', make: (_hook: string) => {} },
    {
      what: 'is not executable',
      status: 126,
      code: 'EACCES',
      make: (hook: string) => writeFileSync(hook, '#!/bin/sh\nexit 0\n', { mode: 0o644 }),
    },
  ])(
    'a change hook that $what: logged ($code, status $status), and the restart happens anyway',
    async ({ status, code, make }) => {
      const path = `act/hook-${code}`;
      await bao.kvPut(path, { password: unique('hook-bad-v1') });
      const { dir, appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
      const hook = join(dir, 'hook');
      make(hook);
      const run = startResident([...WATCH_FAST, '--change-hook', hook, 'node', ROTATION_APP], { env });
      await waitForStart(appLog, 1);
      const v2 = unique('hook-bad-v2');
      await bao.kvPut(path, { password: v2 });
      expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(v2);
      await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
      expect(run.logs().find((l) => l.msg === 'the change hook could not be started')?.code).toBe(code);
      const failed = run.logs().find((l) => l.msg === 'the change hook failed; going on with --on-change');
      expect(failed?.status).toBe(status);
      await stop(run);
    },
  );

  it("--mask: what the change hook prints is masked like the command's output", async () => {
    const path = 'act/hook-mask';
    await bao.kvPut(path, { password: unique('hook-mask-v1') });
    const { appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const run = startResident(
      [...WATCH_FAST, '--mask', '--change-hook', 'echo "hook sees $DB_PASSWORD"', 'node', ROTATION_APP],
      { env },
    );
    await waitForStart(appLog, 1);
    const v2 = unique('hook-mask-v2');
    await bao.kvPut(path, { password: v2 });
    await waitForStart(appLog, 2);
    await run.waitForLog((l) => l.msg === 'the change hook ran', 'the hook');
    await stop(run);
    expect(run.stderr()).toContain('hook sees <redacted>');
    expect(run.stderr()).not.toContain(v2);
  });

  it('--on-change=none with a hook: the hook runs, the command is left alone', async () => {
    const path = 'act/none';
    await bao.kvPut(path, { password: unique('none-v1') });
    const { dir, appLog, env } = setup({ DB_PASSWORD: `vault:secret/${path}#password` });
    const hookLog = join(dir, 'hook.log');
    const run = startResident(
      [
        ...WATCH_FAST,
        '--on-change',
        'none',
        '--change-hook',
        `echo "$VAULTRUN_CHANGED" >> ${hookLog}`,
        'node',
        ROTATION_APP,
      ],
      { env },
    );
    await waitForStart(appLog, 1);
    await bao.kvPut(path, { password: unique('none-v2') });
    await run.waitForLog((l) => l.msg === 'the change hook ran', 'the hook');
    await run.waitForLog((l) => l.msg.includes('--on-change=none'), 'the no-action line');
    expect(readFileSync(hookLog, 'utf8')).toBe('DB_PASSWORD\n');
    await morePolls(path, 2);
    expect(starts(appLog)).toHaveLength(1);
    expect(appEvents(appLog).filter((e) => e.event.startsWith('SIG'))).toHaveLength(0);
    await stop(run);
  });

  it('--pin: a change to SECRET_KEY alone is warned about and not acted on; a later restart keeps its old value', async () => {
    const keyPath = 'act/pin-key';
    const dbPath = 'act/pin-db';
    const k1 = unique('pin-k1');
    const k2 = unique('pin-k2');
    const d1 = unique('pin-d1');
    const d2 = unique('pin-d2');
    await bao.kvPut(keyPath, { key: k1 });
    await bao.kvPut(dbPath, { password: d1 });
    const { appLog, env } = setup({
      SECRET_KEY: `vault:secret/${keyPath}#key`,
      DB_PASSWORD: `vault:secret/${dbPath}#password`,
    });
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], {
      env: { ...env, VAULTRUN_PIN: 'SECRET_KEY' },
    });
    const first = await waitForStart(appLog, 1);
    expect(first.vars).toEqual({ SECRET_KEY: k1, DB_PASSWORD: d1 });

    await bao.kvPut(keyPath, { key: k2 });
    const warned = await run.waitForLog(
      (l) => l.msg.startsWith('pinned variables changed in Vault'),
      'the pinned-variable warning',
    );
    expect(warned.variables).toBe('SECRET_KEY');
    expect(warned.level).toBe('warn');
    await morePolls(keyPath, 2);
    expect(starts(appLog)).toHaveLength(1);

    // Another variable changes: the command restarts with it, SECRET_KEY still the start value.
    await bao.kvPut(dbPath, { password: d2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars).toEqual({ SECRET_KEY: k1, DB_PASSWORD: d2 });
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    const restart = run.logs().find((l) => l.msg === 'secrets changed: restarting the command');
    expect(restart?.variables).toBe('DB_PASSWORD');
    expect(run.stderr()).not.toContain(k2);
    await stop(run);
  });
});
