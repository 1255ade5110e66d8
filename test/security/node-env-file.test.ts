// Property: an env file given to vaultrun (--env-file) never configures vaultrun's own Node. Node reads every
// --env-file on its command line up to the first `--` (even after the script's name) and takes NODE_OPTIONS
// from it, so a file line `NODE_OPTIONS=--require=…` (written by whoever renders the file, or smuggled in by a
// value with a newline) would run code inside vaultrun, next to its token. The `.cjs` started as a program
// (npm's bin) puts `--` first; `node vaultrun.cjs --env-file F` is refused (64); `node -- vaultrun.cjs` works;
// the single executable takes no Node option from the file. Real processes; no Vault needed (no references).
import { chmodSync, copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { BUNDLE, singleExecutable } from '../support/exe.js';
import { tempDir } from '../support/resolution.js';

describe('--env-file and Node', () => {
  let dir: string;
  let marker: string;
  let envFile: string;
  const APP = ['/bin/sh', '-c', 'printf "%s" "$APP_VALUE"'];

  beforeEach(() => {
    dir = tempDir('vaultrun-node-envfile-');
    marker = join(dir, 'required-code-ran');
    const hook = join(dir, 'hook.cjs');
    writeFileSync(hook, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`);
    envFile = join(dir, 'app.env');
    writeFileSync(envFile, `APP_VALUE=from-the-file\nNODE_OPTIONS=--require=${hook}\n`);
  });

  const run = (bin: string[], args: string[]): Promise<RunResult> =>
    runVaultrun(args, {
      bin,
      env: baseEnv({ PATH: `${dirname(process.execPath)}:/usr/bin:/bin` }),
    });

  it("the .cjs started as a program (as npm installs it): the file is vaultrun's, no Node option from it", async () => {
    const program = join(dir, 'vaultrun.cjs');
    copyFileSync(BUNDLE, program);
    chmodSync(program, 0o755);
    const result = await run([program], ['--env-file', envFile, '--', ...APP]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('from-the-file');
    expect(existsSync(marker)).toBe(false);
  });

  it('node -- vaultrun.cjs --env-file F: the same', async () => {
    const result = await run([process.execPath, '--', BUNDLE], ['--env-file', envFile, '--', ...APP]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('from-the-file');
    expect(existsSync(marker)).toBe(false);
  });

  it.each<[string, string[]]>([
    ['before the command', ['--env-file', '@', '--', ...APP]],
    ['with =', ['--env-file=@', '--', ...APP]],
    ['in the command, without --', ['/bin/sh', '-c', 'echo ran', '--env-file', '@']],
  ])(
    'node vaultrun.cjs, --env-file %s: refused (64), naming the file and the safe form; the command does not run',
    async (_where, args) => {
      const result = await run(
        [process.execPath, BUNDLE],
        args.map((a) => a.replace('@', envFile)),
      );
      expect(result.exitCode, result.stderr).toBe(64);
      expect(result.stdout).toBe('');
      const line = result.stderr.split('\n').find((l) => l.startsWith('vaultrun error: ')) ?? '';
      expect(line).toContain(`--env-file ${envFile}: Node itself read this file before vaultrun started`);
      expect(line).toContain('node -- vaultrun.cjs');
    },
  );

  it("the single executable: the file is vaultrun's, no Node option from it", async () => {
    const result = await run([singleExecutable()], ['--env-file', envFile, '--', ...APP]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('from-the-file');
    expect(existsSync(marker)).toBe(false);
  });

  it('the single executable, a missing --env-file before --: Node stops it first (exit 9, "not found"); the command does not run', async () => {
    const missing = join(dir, 'missing.env');
    const result = await run(
      [singleExecutable()],
      ['--env-file', missing, '--', '/bin/sh', '-c', 'echo ran'],
    );
    expect(result.exitCode, result.stderr).toBe(9);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${missing}: not found`);
  });

  it('the single executable, --env-file DIR or --env-file "": Node stops these too (exit 9, "invalid format" / "not found")', async () => {
    for (const [value, said] of [
      [dir, `${dir}: invalid format`],
      ['', ': not found'],
    ] as const) {
      for (const args of [['--env-file', value], [`--env-file=${value}`]]) {
        const result = await run([singleExecutable()], [...args, '--', '/bin/sh', '-c', 'echo ran']);
        expect(result.exitCode, result.stderr).toBe(9);
        expect(result.stdout).toBe('');
        expect(result.stderr).toContain(said);
      }
    }
  });

  // bash's <(…) is a pipe (/dev/fd/N): Node reads --env-file arguments itself, and would drain it.
  const viaBash = (bin: string[], vaultrunArgs: string) =>
    runVaultrun([], {
      bin: [
        '/bin/bash',
        '-c',
        `"$@" ${vaultrunArgs} -- /bin/sh -c 'printf "%s" "$APP_VALUE"'`,
        'bash',
        ...bin,
      ],
      env: baseEnv({ PATH: `${dirname(process.execPath)}:/usr/bin:/bin` }),
    });

  it('a pipe (--env-file <(cmd)): the single executable refuses it (64: Node drained it), VAULTRUN_ENV_FILE=<(cmd) works', async () => {
    const refused = await viaBash([singleExecutable()], `--env-file <(printf 'APP_VALUE=piped\\n')`);
    expect(refused.exitCode, refused.stderr).toBe(64);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /--env-file \/dev\/fd\/\d+: not a regular file .*read it before vaultrun started/,
    );
    expect(refused.stderr).toContain('hint="give it in VAULTRUN_ENV_FILE instead');
    const viaSetting = await runVaultrun([], {
      bin: [
        '/bin/bash',
        '-c',
        `VAULTRUN_ENV_FILE=<(printf 'APP_VALUE=piped\\n') "$@" -- /bin/sh -c 'printf "%s" "$APP_VALUE"'`,
        'bash',
        singleExecutable(),
      ],
      env: baseEnv(),
    });
    expect(viaSetting.exitCode, viaSetting.stderr).toBe(0);
    expect(viaSetting.stdout).toBe('piped');
  });

  it('a pipe: the .cjs started as a program reads it (Node is not given it)', async () => {
    const program = join(dir, 'vaultrun.cjs');
    copyFileSync(BUNDLE, program);
    chmodSync(program, 0o755);
    const result = await viaBash([program], `--env-file <(printf 'APP_VALUE=piped\\n')`);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('piped');
  });
});
