// Exec mode (the default): vaultrun resolves the environment, then REPLACES itself with the command
// (process.execve: same pid, same parent). Real OpenBao, real processes, real signals.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun, spawnVaultrun, VAULTRUN_BIN } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  maskHas,
  PROBE,
  readLines,
  reportFromFile,
  reportFromStdout,
  waitForLine,
  workDir,
  writeFile,
} from '../support/processes.js';

const SECRET = 'exec-mode-secret-7f3a91';
const REF = 'vault:secret/app/run#password';
const SIGPIPE = 13;
const SIGXFSZ = 25;
const O_NONBLOCK = 0o4000;

/** Arguments a shell would mangle; they must reach the app byte for byte (and never be resolved). */
const TRICKY_ARGS = [
  'two words',
  '  leading and trailing  ',
  'double "quotes"',
  "single 'quotes'",
  '',
  'back\\slash',
  '--flag',
  '--supervise',
  '-h',
  '--help',
  '--',
  '--log-level=debug',
  'ünïcødé ✓ 日本語 🚀',
  '$HOME',
  '${HOME}',
  '`id`',
  '*',
  '; echo injected',
  'line1\nline2',
  'tab\there',
  REF,
];

describe('exec mode', () => {
  let bao: OpenBao;
  let tools: string;
  let basePath: string;

  beforeAll(async () => {
    bao = await startOpenBao();
    tools = workDir('vaultrun-tools-');
    writeFile(
      join(tools, 'vr-only-here'),
      '#!/bin/sh\necho "vr-only-here pid=$$ args=$* PATH=$PATH"\n',
      0o755,
    );
    basePath = baseEnv().PATH ?? '';
    await bao.kvPut('app/run', { password: SECRET, dir: tools });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** baseEnv plus Vault credentials and one reference (DB_PASSWORD). */
  function refEnv(extra: Record<string, string> = {}): Record<string, string> {
    return baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, DB_PASSWORD: REF, ...extra });
  }

  describe('the command replaces vaultrun', () => {
    it('has vaultrun’s pid and parent (no references: Vault is not contacted)', async () => {
      const { child, result } = spawnVaultrun(['node', PROBE]);
      const res = await result;
      expect(res.stderr).toBe('');
      expect(res.exitCode).toBe(0);
      const report = reportFromStdout(res.stdout);
      expect(report.pid).toBe(child.pid);
      expect(report.ppid).toBe(process.pid);
    });

    it('has vaultrun’s pid and parent after resolving a reference', async () => {
      const { child, result } = spawnVaultrun(['node', PROBE], { env: refEnv() });
      const res = await result;
      expect(res.exitCode, res.stderr).toBe(0);
      const report = reportFromStdout(res.stdout);
      expect(report.pid).toBe(child.pid);
      expect(report.ppid).toBe(process.pid);
      expect(report.env.DB_PASSWORD).toBe(SECRET);
      expect(report.env.VAULT_TOKEN).toBeUndefined();
      expect(res.stderr).toContain('resolved 1 reference');
    });

    it('signals sent to the pid reach the app directly, and its exit code is vaultrun’s', async () => {
      const dir = workDir();
      const signals = join(dir, 'signals');
      const { child, result } = spawnVaultrun(['node', PROBE, '--wait', '--term-exit', '5'], {
        env: refEnv({ PROBE_SIGNALS: signals, PROBE_OUT: join(dir, 'report.json') }),
      });
      await waitForLine(signals, 'ready');
      expect(reportFromFile(join(dir, 'report.json')).pid).toBe(child.pid);
      process.kill(child.pid as number, 'SIGUSR2');
      await waitForLine(signals, 'SIGUSR2');
      process.kill(child.pid as number, 'SIGTERM');
      const res = await result;
      expect(res.exitCode, res.stderr).toBe(5);
      expect(readLines(signals)).toEqual(['ready', 'SIGUSR2', 'SIGTERM', 'cleanup-done']);
    });
  });

  describe('argv', () => {
    it.each([
      ['after the command', ['node', PROBE, ...TRICKY_ARGS]],
      ['after --', ['--', 'node', PROBE, ...TRICKY_ARGS]],
      [
        'after vaultrun options',
        ['--log-level', 'warn', '--log-format', 'json', 'node', PROBE, ...TRICKY_ARGS],
      ],
    ])('is passed exactly (%s)', async (_name, args) => {
      const res = await runVaultrun(args, { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      const report = reportFromStdout(res.stdout);
      expect(report.argv).toEqual(TRICKY_ARGS);
      expect(report.env.DB_PASSWORD).toBe(SECRET);
    });

    it('argv[0] is the command as given, not the path found on PATH', async () => {
      const res = await runVaultrun(['sh', '-c', 'tr "\\0" "\\n" < /proc/$$/cmdline', 'zero', 'one'], {
        env: refEnv(),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe('sh\n-c\ntr "\\0" "\\n" < /proc/$$/cmdline\nzero\none\n');
    });

    it('reaches a shell script unchanged too (argument count and each argument)', async () => {
      const dir = workDir();
      const script = writeFile(
        join(dir, 'args.sh'),
        '#!/bin/sh\necho "$#"\nfor a in "$@"; do printf "<%s>\\n" "$a"; done\n',
        0o755,
      );
      const args = ['a b', '', '--x', '$HOME', 'ü'];
      const res = await runVaultrun([script, ...args], { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe(`${args.length}\n${args.map((a) => `<${a}>\n`).join('')}`);
    });
  });

  describe('finding the command', () => {
    it('looks it up on the PATH of the command’s (resolved) environment', async () => {
      // PATH itself holds a reference: `tools` is only on the resolved PATH, not on vaultrun's own.
      const res = await runVaultrun(['vr-only-here', 'x', 'y'], {
        env: refEnv({ PATH: `\${vault:secret/app/run#dir}:${basePath}` }),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe(`vr-only-here pid=${res.pid} args=x y PATH=${tools}:${basePath}\n`);
    });

    it('does not find it on a PATH without its directory (127)', async () => {
      const res = await runVaultrun(['vr-only-here'], { env: refEnv() });
      expect(res.exitCode).toBe(127);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('command not found on PATH: vr-only-here');
    });

    it('takes the first executable match on PATH, skipping non-executable ones', async () => {
      const dir = workDir();
      writeFile(join(dir, 'a/vr-dup'), '#!/bin/sh\necho from-a\n', 0o644); // not executable: skipped
      writeFile(join(dir, 'b/vr-dup'), '#!/bin/sh\necho from-b\n', 0o755);
      writeFile(join(dir, 'c/vr-dup'), '#!/bin/sh\necho from-c\n', 0o755);
      const path = [join(dir, 'a'), join(dir, 'b'), join(dir, 'c'), basePath].join(':');
      const res = await runVaultrun(['vr-dup'], { env: refEnv({ PATH: path }) });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe('from-b\n');
    });

    it('runs a relative path (./x, sub/x) from the working directory, with the same pid', async () => {
      const dir = workDir();
      writeFile(join(dir, 'x'), '#!/bin/sh\necho "x pid=$$ cwd=$(pwd)"\n', 0o755);
      writeFile(join(dir, 'sub/x'), '#!/bin/sh\necho "sub/x pid=$$"\n', 0o755);
      const a = await runVaultrun(['./x'], { env: refEnv(), cwd: dir });
      expect(a.exitCode, a.stderr).toBe(0);
      expect(a.stdout).toBe(`x pid=${a.pid} cwd=${dir}\n`);
      const b = await runVaultrun(['sub/x'], { env: refEnv(), cwd: dir });
      expect(b.exitCode, b.stderr).toBe(0);
      expect(b.stdout).toBe(`sub/x pid=${b.pid}\n`);
    });

    it('a command not found exits 127 with a clear message', async () => {
      const dir = workDir();
      const a = await runVaultrun(['vr-no-such-command'], { env: refEnv() });
      expect(a.exitCode).toBe(127);
      expect(a.stdout).toBe('');
      expect(a.stderr).toContain('command not found on PATH: vr-no-such-command');
      const b = await runVaultrun(['./missing'], { env: refEnv(), cwd: dir });
      expect(b.exitCode).toBe(127);
      expect(b.stderr).toContain('command not found: ./missing');
    });

    it('a file without the x bit exits 126 with a clear message (on PATH or as a path)', async () => {
      const dir = workDir();
      writeFile(join(dir, 'bin/vr-plain'), '#!/bin/sh\necho should-not-run\n', 0o644);
      const onPath = await runVaultrun(['vr-plain'], {
        env: refEnv({ PATH: `${join(dir, 'bin')}:${basePath}` }),
      });
      expect(onPath.exitCode).toBe(126);
      expect(onPath.stdout).toBe('');
      expect(onPath.stderr).toContain('command found on PATH but not executable: vr-plain');
      const asPath = await runVaultrun(['./bin/vr-plain'], { env: refEnv(), cwd: dir });
      expect(asPath.exitCode).toBe(126);
      expect(asPath.stdout).toBe('');
      expect(asPath.stderr).toContain('command is not an executable file: ./bin/vr-plain');
    });

    it('a directory exits 126', async () => {
      const dir = workDir();
      writeFile(join(dir, 'adir/file'), '', 0o644);
      const res = await runVaultrun(['./adir'], { env: refEnv(), cwd: dir });
      expect(res.exitCode).toBe(126);
      expect(res.stderr).toContain('command is not an executable file: ./adir');
    });

    it('an executable file the kernel cannot run (no #! line) exits 126 with a clear message', async () => {
      const dir = workDir();
      writeFile(join(dir, 'noshebang'), 'echo should-not-run\n', 0o755);
      const res = await runVaultrun(['./noshebang'], { env: refEnv(), cwd: dir });
      expect(res.exitCode).toBe(126);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('cannot execute');
      expect(res.stderr).toContain('ENOEXEC');
    });
  });

  describe('what the app inherits', () => {
    it('stdout holds only the app’s output; vaultrun logs to stderr', async () => {
      const dir = workDir();
      const out = join(dir, 'report.json');
      const res = await runVaultrun(['node', PROBE, '--print', 'hello from the app', '--stderr', 'app-err'], {
        env: refEnv({ PROBE_OUT: out }),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe('hello from the app\n');
      expect(res.stderr).toContain('resolved 1 reference');
      expect(res.stderr).toContain('app-err\n');
      expect(reportFromFile(out).env.DB_PASSWORD).toBe(SECRET);
    });

    it('stdin is the app’s stdin', async () => {
      const res = await runVaultrun(['cat'], { env: refEnv(), input: 'line one\nline two\n' });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe('line one\nline two\n');
    });

    it('gets stdin, stdout and stderr in blocking mode (Node makes pipes non-blocking)', async () => {
      // File status flags belong to the open file description, which the command shares with vaultrun.
      const res = await runVaultrun(
        ['sh', '-c', 'for fd in 0 1 2; do grep flags /proc/$$/fdinfo/$fd; done'],
        {
          env: refEnv(),
        },
      );
      expect(res.exitCode, res.stderr).toBe(0);
      const flags = [...res.stdout.matchAll(/^flags:\s*([0-7]+)$/gm)].map((m) =>
        Number.parseInt(m[1] ?? '', 8),
      );
      expect(flags, res.stdout).toHaveLength(3);
      expect(flags.map((f) => (f & O_NONBLOCK) !== 0)).toEqual([false, false, false]);
    });

    it('a command reading stdin waits for input that comes later (no EAGAIN)', async () => {
      const [cmd, ...pre] = VAULTRUN_BIN;
      const child = spawn(
        cmd as string,
        [...pre, 'sh', '-c', 'echo waiting >&2; read -r line; echo "status=$? line=$line"'],
        { env: refEnv(), stdio: ['pipe', 'pipe', 'pipe'], detached: true },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      const waiting = new Promise<void>((res) => {
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
          if (stderr.includes('waiting\n')) res();
        });
      });
      const closed = new Promise<number | null>((res) => child.once('close', (code) => res(code)));
      await Promise.race([waiting, closed]);
      child.stdin.end('typed later\n');
      expect(await closed, stderr).toBe(0);
      expect(stdout).toBe('status=0 line=typed later\n');
    });

    it('starts with SIGPIPE and SIGXFSZ not ignored (Node ignores both)', async () => {
      // The helper reads the mask the way /proc writes it (Node's own mask has exactly these two bits set).
      expect(maskHas('0000000001001000', SIGPIPE)).toBe(true);
      expect(maskHas('0000000001001000', SIGXFSZ)).toBe(true);
      for (const env of [baseEnv(), refEnv()]) {
        const res = await runVaultrun(['sh', '-c', 'grep SigIgn /proc/self/status'], { env });
        expect(res.exitCode, res.stderr).toBe(0);
        const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(res.stdout)?.[1];
        expect(mask, res.stdout).toBeDefined();
        expect(maskHas(mask as string, SIGPIPE)).toBe(false);
        expect(maskHas(mask as string, SIGXFSZ)).toBe(false);
      }
    });

    it('a writer into a closed pipe dies of SIGPIPE, as outside vaultrun', async () => {
      // `yes | head -n1`: yes must be killed by SIGPIPE (status 141), not loop on EPIPE or exit 1.
      const bash = await runVaultrun(
        ['bash', '-c', 'yes | head -n 1 >/dev/null; echo "status=${PIPESTATUS[0]}"'],
        {
          env: refEnv(),
        },
      );
      expect(bash.exitCode, bash.stderr).toBe(0);
      expect(bash.stdout).toBe('status=141\n');
    });

    it('inherits no file descriptors that vaultrun opened (no Vault connection leaks)', async () => {
      // sh lists its own fds without starting a process. The same script run directly (spawned like vaultrun
      // is) is the baseline: fds inherited from the test runner, and the one the glob itself opens.
      const list = ['sh', '-c', 'cd /proc/$$/fd && for f in *; do echo "$f"; done'];
      const fds = (stdout: string) => stdout.split('\n').filter(Boolean).sort();
      const direct = spawnSync(list[0] as string, list.slice(1), { env: refEnv(), encoding: 'utf8' });
      expect(direct.status, direct.stderr).toBe(0);
      expect(fds(direct.stdout)).toEqual(expect.arrayContaining(['0', '1', '2']));
      const res = await runVaultrun(list, { env: refEnv() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stderr).toContain('resolved 1 reference');
      expect(fds(res.stdout)).toEqual(fds(direct.stdout));
    });

    it('the app’s exit code is vaultrun’s', async () => {
      for (const code of [0, 3, 42]) {
        const res = await runVaultrun(['node', PROBE, '--exit', String(code)], { env: refEnv() });
        expect(res.exitCode, res.stderr).toBe(code);
        expect(res.signal).toBeNull();
      }
    });

    it('an app killed by a signal kills vaultrun’s pid by that signal (nothing in between)', async () => {
      const res = await runVaultrun(['node', PROBE, '--die-by', 'SIGTERM'], { env: refEnv() });
      expect(res.exitCode).toBeNull();
      expect(res.signal).toBe('SIGTERM');
    });
  });
});
