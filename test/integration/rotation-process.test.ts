// Rotation and the command's processes (--watch): a restart stops the command's whole process group (an
// `sh -c` wrapper must not leave the real app running), SIGKILLs it after --stop-timeout, and starts the new
// one; a command that exits by itself ends vaultrun with its status; signals keep being forwarded; --user runs
// the command as another user with its secret files owned by that user. Real processes, checked in /proc.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
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
  waitForEvents,
  waitForStart,
  waitGone,
} from '../support/rotation.js';

/** The direct children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((p) => p !== '')
      .map(Number);
  } catch {
    return [];
  }
}

function uidOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s*(\d+)/m.exec(status)?.[1]);
}

function idsOf(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name} in /etc/passwd`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

describe('rotation: the command’s processes', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
  });

  afterAll(async () => {
    await bao?.stop();
  });

  function setup(path: string, extra: Record<string, string> = {}) {
    const dir = workDir('vaultrun-rotp-');
    const appLog = join(dir, 'app.log');
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      APP_LOG: appLog,
      APP_VARS: 'DB_PASSWORD',
      DB_PASSWORD: `vault:secret/${path}#password`,
      ...extra,
    });
    return { dir, appLog, env };
  }

  async function stop(run: Resident, status = 0): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(status);
  }

  it('an `sh -c` wrapper: the stop signal reaches the real app (a grandchild) and no old process survives', async () => {
    const path = 'rot/sh';
    await bao.kvPut(path, { password: unique('sh-v1') });
    const { appLog, env } = setup(path);
    const run = startResident([...WATCH_FAST, 'sh', '-c', `node ${ROTATION_APP}; echo "app exited: $?"`], {
      env,
    });
    const first = await waitForStart(appLog, 1);
    const shell = first.ppid as number;
    expect(shell).not.toBe(run.pid); // the app is a grandchild: vaultrun → sh → node
    expect(childrenOf(run.pid)).toEqual([shell]);
    const v2 = unique('sh-v2');
    await bao.kvPut(path, { password: v2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v2);
    // The real app got the stop signal itself (sent to the group), and neither it nor its shell survives.
    expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGTERM']);
    expect(running(first.pid)).toBe(false);
    expect(running(shell)).toBe(false);
    expect(childrenOf(run.pid)).toEqual([second.ppid]);
    // Exit: the forwarded SIGTERM kills the shell (it does not pass it on); the app left in its group gets the
    // stop signal from vaultrun before vaultrun exits, with the shell's status.
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(143);
    expect(eventsOf(appLog, second.pid)).toEqual(['start', 'SIGTERM']);
    expect(running(second.pid)).toBe(false);
  });

  it('an app that ignores the stop signal is SIGKILLed (with its group) after --stop-timeout; the new one starts', async () => {
    const path = 'rot/kill';
    await bao.kvPut(path, { password: unique('kill-v1') });
    const { appLog, env } = setup(path);
    const run = startResident(
      [...WATCH_FAST, '--stop-timeout', '1s', 'node', ROTATION_APP, '--ignore-term'],
      {
        env,
      },
    );
    const first = await waitForStart(appLog, 1);
    const v2 = unique('kill-v2');
    await bao.kvPut(path, { password: v2 });
    const second = await waitForStart(appLog, 2);
    expect(second.vars?.DB_PASSWORD).toBe(v2);
    expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGTERM-ignored']);
    expect(running(first.pid)).toBe(false);
    const killed = run
      .logs()
      .filter((l) => l.msg === 'the command did not stop in time: killing its process group');
    expect(killed).toHaveLength(1);
    expect(killed[0]?.pid).toBe(first.pid);
    // The new one ignores SIGTERM too: stopping vaultrun needs SIGKILL for it (sent by the test).
    process.kill(second.pid, 'SIGKILL');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(137);
  });

  it('an `sh -c` wrapper around an app that ignores the stop signal: the shell dies at once, the app is still SIGKILLed', async () => {
    const path = 'rot/sh-kill';
    await bao.kvPut(path, { password: unique('shk-v1') });
    const { appLog, env } = setup(path);
    const run = startResident(
      [
        ...WATCH_FAST,
        '--stop-timeout',
        '1s',
        'sh',
        '-c',
        `node ${ROTATION_APP} --ignore-term; echo "app exited: $?"`,
      ],
      { env },
    );
    const first = await waitForStart(appLog, 1);
    await bao.kvPut(path, { password: unique('shk-v2') });
    const second = await waitForStart(appLog, 2);
    expect(running(first.pid)).toBe(false);
    expect(running(first.ppid as number)).toBe(false);
    expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGTERM-ignored']);
    process.kill(second.pid, 'SIGKILL');
    // The second sh wrapper outlives its app and exits with its echo's status: that is vaultrun's status.
    const res = await run.result;
    expect(res.stdout).toContain('app exited: 137');
    expect(res.exitCode, res.stderr).toBe(0);
  });

  it('a command that exits by itself ends vaultrun with its status: no restart', async () => {
    const path = 'rot/exit';
    await bao.kvPut(path, { password: unique('exit-v1') });
    const runtime = join(workDir('vaultrun-rotp-'), 'rt');
    const { appLog, env } = setup(path, { SECRET_FILE: `vault:secret/${path}#password` });
    const run = startResident(
      [
        ...WATCH_FAST,
        '--runtime-dir',
        runtime,
        'node',
        ROTATION_APP,
        '--exit-after',
        '1500',
        '--exit-code',
        '7',
      ],
      { env },
    );
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(7);
    expect(starts(appLog)).toHaveLength(1);
    expect(run.count('restart')).toBe(0);
    // Secret files removed on exit, with the process's own directory: the runtime directory is empty again.
    expect(existsSync(runtime)).toBe(true);
    expect(readdirSync(runtime)).toEqual([]);
  });

  it('keeps forwarding signals to the command, also to the one started by a restart', async () => {
    const path = 'rot/forward';
    await bao.kvPut(path, { password: unique('fwd-v1') });
    const { appLog, env } = setup(path);
    const run = startResident([...WATCH_FAST, 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    process.kill(run.pid, 'SIGUSR1');
    await waitForEvents(
      appLog,
      (es) => es.some((e) => e.pid === first.pid && e.event === 'SIGUSR1'),
      'SIGUSR1',
    );
    await bao.kvPut(path, { password: unique('fwd-v2') });
    const second = await waitForStart(appLog, 2);
    process.kill(run.pid, 'SIGUSR2');
    await waitForEvents(
      appLog,
      (es) => es.some((e) => e.pid === second.pid && e.event === 'SIGUSR2'),
      'SIGUSR2',
    );
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(eventsOf(appLog, second.pid)).toEqual(['start', 'SIGUSR2', 'SIGTERM']);
    await waitGone(second.pid);
  });

  describe('--user', () => {
    const nobody = idsOf('nobody');

    /** A work dir that nobody can traverse, with a log dir nobody can write to. */
    function sharedDir(): { dir: string; appLog: string } {
      const dir = workDir('vaultrun-rotu-');
      chmodSync(dir, 0o755);
      const logs = join(dir, 'logs');
      mkdirSync(logs);
      chmodSync(logs, 0o777);
      return { dir, appLog: join(logs, 'app.log') };
    }

    it('resident: the command runs as nobody (no supplementary groups); secret files belong to it, 0400 in 0700; also after a restart', async () => {
      const path = 'rot/user';
      const v1 = unique('user-v1');
      await bao.kvPut(path, { password: v1 });
      const { dir, appLog } = sharedDir();
      const runtime = join(dir, 'rt');
      const { env } = setup(path, {
        APP_LOG: appLog,
        SECRET_FILE: `vault:secret/${path}#password`,
        APP_FILE_VARS: 'SECRET_FILE',
        APP_VARS: 'HOME',
        HOME: '/root',
      });
      const run = startResident(
        [...WATCH_FAST, '--user', 'nobody', '--runtime-dir', runtime, 'node', ROTATION_APP],
        {
          env,
        },
      );
      const first = await waitForStart(appLog, 1);
      expect(first.ppid).toBe(run.pid);
      expect(uidOf(run.pid)).toBe(0); // vaultrun stays root (it writes the files of the next start)
      expect({ uid: first.uid, gid: first.gid }).toEqual(nobody);
      expect(first.groups?.filter((g) => g !== nobody.gid)).toEqual([]);
      const file = first.files?.SECRET_FILE;
      expect(file?.content).toBe(v1); // nobody could read it
      expect({ uid: file?.uid, gid: file?.gid, mode: file?.mode }).toEqual({ ...nobody, mode: 0o400 });
      // The runtime directory stays root's (0711: nobody passes through, lists nothing); the process's own
      // directory in it is nobody's, 0700.
      const st = statSync(runtime);
      expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }).toEqual({ uid: 0, gid: 0, mode: 0o711 });
      const own = statSync(dirname(file?.path as string));
      expect(dirname(dirname(file?.path as string))).toBe(runtime);
      expect({ uid: own.uid, gid: own.gid, mode: own.mode & 0o777 }).toEqual({ ...nobody, mode: 0o700 });

      const v2 = unique('user-v2');
      await bao.kvPut(path, { password: v2 });
      const second = await waitForStart(appLog, 2);
      expect({ uid: second.uid, gid: second.gid }).toEqual(nobody);
      // HOME is nobody's home from /etc/passwd (as gosu does), at the first start and after the restart.
      const home = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('nobody:'))
        ?.split(':')[5];
      expect(home).toBeTruthy();
      expect([first.vars?.HOME, second.vars?.HOME]).toEqual([home, home]);
      const file2 = second.files?.SECRET_FILE;
      expect(file2?.content).toBe(v2);
      expect({ uid: file2?.uid, gid: file2?.gid, mode: file2?.mode }).toEqual({ ...nobody, mode: 0o400 });
      await stop(run);
    });

    it('exec mode: vaultrun becomes nobody (groups, gid, uid) before execve; the secret file belongs to it', async () => {
      const path = 'rot/user-exec';
      const value = unique('user-exec');
      await bao.kvPut(path, { password: value });
      const { dir, appLog } = sharedDir();
      const runtime = join(dir, 'rt');
      const { env } = setup(path, {
        APP_LOG: appLog,
        SECRET_FILE: `vault:secret/${path}#password`,
        APP_FILE_VARS: 'SECRET_FILE',
      });
      const run = startResident(
        ['--user', 'nobody', '--runtime-dir', runtime, 'node', ROTATION_APP, '--exit-after', '10'],
        {
          env,
        },
      );
      const res = await run.result;
      expect(res.exitCode, res.stderr).toBe(0);
      const [start] = starts(appLog);
      expect(start?.pid).toBe(run.pid); // exec: same pid
      expect({ uid: start?.uid, gid: start?.gid }).toEqual(nobody);
      expect(start?.groups).toEqual([nobody.gid]);
      const file = start?.files?.SECRET_FILE;
      expect(file?.content).toBe(value);
      expect({ uid: file?.uid, gid: file?.gid, mode: file?.mode }).toEqual({ ...nobody, mode: 0o400 });
    });
  });
});
