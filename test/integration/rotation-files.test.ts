// Rotation driven by files (--watch): the env files (--env-file) and the NAME_FILE sources under the secret
// directories are watched; a sidecar (Vault Agent, a Kubernetes secret volume) that replaces them — a temporary
// file renamed over the old one, or Kubernetes' ..data symlink swap — makes vaultrun re-resolve and restart.
// The poll interval is an hour: what these tests see comes from the file watch, not from polling.
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { unique } from '../support/resolution.js';
import { type Resident, ROTATION_APP, startResident, starts, waitForStart } from '../support/rotation.js';

/** What a sidecar does: write a temporary file next to the target, then rename it over the target. */
function sidecarWrite(path: string, text: string): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, path);
}

const WATCH = ['--watch', '--poll-interval', '1h', '--debounce', '100ms', '--log-level', 'debug'];

describe('rotation on file changes', () => {
  let bao: OpenBao;
  const kvValue = unique('files-kv');

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.kvPut('rot/files', { password: kvValue });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function stop(run: Resident): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
  }

  const restarts = (run: Resident) =>
    run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');

  it('an --env-file replaced by a sidecar restarts the command with the new values; a change that renders the same does nothing', async () => {
    const dir = workDir('vaultrun-rotf-');
    const appLog = join(dir, 'app.log');
    const envFile = join(dir, 'app.env');
    sidecarWrite(envFile, 'APP_MODE=one\nDB_PASSWORD=vault:secret/rot/files#password\n');
    const run = startResident([...WATCH, '--env-file', envFile, 'node', ROTATION_APP], {
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        APP_LOG: appLog,
        APP_VARS: 'APP_MODE,DB_PASSWORD',
      }),
    });
    const first = await waitForStart(appLog, 1);
    expect(first.vars).toEqual({ APP_MODE: 'one', DB_PASSWORD: kvValue });
    await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');

    // Only a comment added: the file changed, the environment it renders did not.
    sidecarWrite(
      envFile,
      '# rendered by the agent\nAPP_MODE=one\nDB_PASSWORD=vault:secret/rot/files#password\n',
    );
    await run.waitForLog(
      (l) => l.msg === 're-resolved: nothing changed for the command',
      'the no-op re-resolution',
    );
    expect(starts(appLog)).toHaveLength(1);

    sidecarWrite(envFile, 'APP_MODE=two\nDB_PASSWORD=vault:secret/rot/files#password\n');
    const second = await waitForStart(appLog, 2);
    expect(second.vars).toEqual({ APP_MODE: 'two', DB_PASSWORD: kvValue });
    // The app can report its start before the test has read vaultrun's stderr up to that point.
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    const logged = restarts(run);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.variables).toBe('APP_MODE');
    expect(logged[0]?.reason).toContain(envFile);
    expect(run.stderr()).not.toContain(kvValue);
    await stop(run);
  });

  it('a NAME_FILE source under VAULTRUN_FILE_ENV_DIRS replaced by a sidecar restarts the command with the new content', async () => {
    const dir = workDir('vaultrun-rotf-');
    const appLog = join(dir, 'app.log');
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets);
    const source = join(secrets, 'db_password');
    const v1 = unique('file-v1');
    const v2 = unique('file-v2');
    sidecarWrite(source, `${v1}\n`);
    const run = startResident([...WATCH, 'node', ROTATION_APP], {
      env: baseEnv({
        APP_LOG: appLog,
        APP_VARS: 'DB_PASSWORD,DB_PASSWORD_FILE',
        DB_PASSWORD_FILE: source,
        VAULTRUN_FILE_ENV_DIRS: secrets,
      }),
    });
    const first = await waitForStart(appLog, 1);
    expect(first.vars).toEqual({ DB_PASSWORD: v1 });
    await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');
    sidecarWrite(source, `${v2}\n`);
    const second = await waitForStart(appLog, 2);
    expect(second.vars).toEqual({ DB_PASSWORD: v2 });
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    expect(restarts(run)).toHaveLength(1);
    expect(restarts(run)[0]?.variables).toBe('DB_PASSWORD');
    expect(run.stderr()).not.toContain(v1);
    expect(run.stderr()).not.toContain(v2);
    await stop(run);
  });

  it('a Kubernetes-style ..data symlink swap is seen too', async () => {
    // A secret volume: db_password → ..data/db_password, ..data → ..2024_01_01_v1; an update writes a new
    // timestamped directory and renames a new ..data symlink over the old one.
    const dir = workDir('vaultrun-rotf-');
    const appLog = join(dir, 'app.log');
    const volume = join(dir, 'secrets');
    mkdirSync(join(volume, '..v1'), { recursive: true });
    const v1 = unique('k8s-v1');
    const v2 = unique('k8s-v2');
    writeFileSync(join(volume, '..v1', 'db_password'), v1);
    symlinkSync('..v1', join(volume, '..data'));
    symlinkSync('..data/db_password', join(volume, 'db_password'));
    const run = startResident([...WATCH, 'node', ROTATION_APP], {
      env: baseEnv({
        APP_LOG: appLog,
        APP_VARS: 'DB_PASSWORD',
        DB_PASSWORD_FILE: join(volume, 'db_password'),
        VAULTRUN_FILE_ENV_DIRS: volume,
      }),
    });
    expect((await waitForStart(appLog, 1)).vars).toEqual({ DB_PASSWORD: v1 });
    await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');
    mkdirSync(join(volume, '..v2'));
    writeFileSync(join(volume, '..v2', 'db_password'), v2);
    symlinkSync('..v2', join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    expect((await waitForStart(appLog, 2)).vars).toEqual({ DB_PASSWORD: v2 });
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    expect(restarts(run)).toHaveLength(1);
    await stop(run);
  });
});
