// Issue 8, properties 5 and 6, through the real CLI against a real OpenBao:
//  - two vaultrun processes sharing a runtime directory never overwrite or remove each other's secret files;
//  - `resolve --output` onto a symlink is refused (exit 64) and leaves link and target alone; onto a FIFO it is
//    written through;
//  - a NAME_FILE source that is a FIFO without a writer, or /dev/zero, fails at once (exit 74) instead of
//    hanging; `--env-file <(cmd)` (a pipe) keeps working.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, spawnVaultrun, VAULTRUN_BIN } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

describe('files and outputs', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const valueA = sensitive.add('service a', unique('service-a'));
  const valueB = sensitive.add('service b', unique('service-b'));
  const valueC = sensitive.add('service c', unique('service-c'));

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('shared/a', { password: valueA });
    await bao.kvPut('shared/b', { password: valueB });
    await bao.kvPut('shared/c', { password: valueC });
  });
  afterAll(async () => {
    await bao?.stop();
  });

  const env = (vars: Record<string, string>) =>
    baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, ...vars });

  async function run(args: string[], vars: Record<string, string>, timeoutMs = 30_000): Promise<RunResult> {
    const res = await spawnVaultrun(args, { env: env(vars), timeoutMs, bin: VAULTRUN_BIN }).result;
    expectNoLeaks(`${res.stdout}${res.stderr}`, sensitive);
    return res;
  }

  async function waitFor(file: string): Promise<string> {
    for (let i = 0; i < 600; i++) {
      if (existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'))
        return readFileSync(file, 'utf8').trim();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${file} was not written`);
  }

  it('two (three) vaultrun processes sharing a runtime directory: none overwrites or removes the files of another', async () => {
    const work = tempDir('vaultrun-shared-');
    const runtime = join(work, 'rt');
    const report = (name: string) => `printf '%s\\n' "$DB_PASSWORD_FILE" > ${join(work, name)}; `;
    // A: resident (--supervise), same variable name as the others, stays up.
    const a = spawnVaultrun(
      ['--supervise', '--runtime-dir', runtime, '--', 'sh', '-c', `${report('a')}exec sleep 60`],
      { env: env({ DB_PASSWORD_FILE: 'vault:secret/shared/a#password' }), bin: VAULTRUN_BIN },
    );
    const fileA = await waitFor(join(work, 'a'));
    expect(readFileSync(fileA, 'utf8')).toBe(valueA);

    // B: exec mode, the same variable.
    const b = await run(['--runtime-dir', runtime, '--', 'sh', '-c', report('b')], {
      DB_PASSWORD_FILE: 'vault:secret/shared/b#password',
    });
    expect(b.exitCode, b.stderr).toBe(0);
    const fileB = await waitFor(join(work, 'b'));
    expect(fileB).not.toBe(fileA);
    expect(readFileSync(fileB, 'utf8')).toBe(valueB);
    expect(readFileSync(fileA, 'utf8')).toBe(valueA); // not overwritten

    // C: resident, ends by itself and cleans up: only its own files.
    const c = await run(['--supervise', '--runtime-dir', runtime, '--', 'sh', '-c', report('c')], {
      DB_PASSWORD_FILE: 'vault:secret/shared/c#password',
    });
    expect(c.exitCode, c.stderr).toBe(0);
    const fileC = await waitFor(join(work, 'c'));
    expect(existsSync(fileC)).toBe(false);
    expect(existsSync(dirname(fileC))).toBe(false);
    expect(readFileSync(fileA, 'utf8')).toBe(valueA);
    expect(readFileSync(fileB, 'utf8')).toBe(valueB);

    // A stops: its files go, B's stay.
    process.kill(a.child.pid as number, 'SIGTERM');
    const resA = await a.result;
    expectNoLeaks(`${resA.stdout}${resA.stderr}`, sensitive);
    expect(existsSync(fileA)).toBe(false);
    expect(readFileSync(fileB, 'utf8')).toBe(valueB);
    expect(readdirSync(runtime)).toEqual([dirname(fileB).split('/').pop()]);
  });

  describe('resolve --output', () => {
    it('onto a symlink: exit 64 naming the flag and the path; the link and its target are left alone', async () => {
      const dir = tempDir('vaultrun-output-');
      const target = join(dir, 'victim');
      writeFileSync(target, 'victim content\n');
      const link = join(dir, 'app.env');
      symlinkSync(target, link);
      const res = await run(['resolve', '--output', link], { DB_PASSWORD: 'vault:secret/shared/a#password' });
      expect(res.exitCode, res.stderr).toBe(64);
      expect(res.stderr).toContain(`--output: ${link} is a symbolic link`);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(target);
      expect(readFileSync(target, 'utf8')).toBe('victim content\n');
      expect(res.stdout).toBe('');
    });

    it('onto a FIFO: written through to its reader, the FIFO stays', async () => {
      const dir = tempDir('vaultrun-output-');
      const fifo = join(dir, 'out.fifo');
      execFileSync('mkfifo', [fifo]);
      const reader: ChildProcess = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      let got = '';
      reader.stdout?.on('data', (d: Buffer) => {
        got += d.toString('utf8');
      });
      const readerDone = new Promise((resolve) => reader.on('exit', resolve));
      const res = await run(['resolve', '--output', fifo], { DB_PASSWORD: 'vault:secret/shared/a#password' });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(await readerDone).toBe(0);
      expect(got === `DB_PASSWORD='${valueA}'\n`, 'the reader got the dotenv line').toBe(true);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
    });
  });

  describe('NAME_FILE sources and env files that are not small regular files', () => {
    it.each([
      ['a FIFO without a writer', 'fifo', 'a FIFO (named pipe)'],
      ['/dev/zero', 'zero', 'a character device'],
    ])('NAME_FILE → %s: exit 74 at once, naming the variable and the path', async (_, name, kind) => {
      const dir = tempDir('vaultrun-sources-');
      const path = join(dir, name);
      if (name === 'fifo') execFileSync('mkfifo', [path]);
      else symlinkSync('/dev/zero', path);
      const res = await run(
        ['--', 'true'],
        { DB_PASSWORD_FILE: path, VAULTRUN_FILE_ENV_DIRS: dir },
        // A hang (the old behaviour for a FIFO) is a failure: spawnVaultrun rejects after this.
        15_000,
      );
      expect(res.exitCode, res.stderr).toBe(74);
      expect(res.stderr).toContain(`DB_PASSWORD_FILE: ${path} is not a regular file (${kind})`);
    });

    // VAULTRUN_ENV_FILE rather than --env-file: with the .cjs, Node itself reads (and so drains) a pipe given as
    // `--env-file` anywhere on the command line (README "Env files"); the single executable does not.
    it('VAULTRUN_ENV_FILE=<(cmd) (a pipe) keeps working', async () => {
      const script = 'VAULTRUN_ENV_FILE=<(printf "FROM_PIPE=piped\\n") "$@" resolve --all --format json';
      const res = await spawnVaultrun([], {
        env: baseEnv(),
        bin: ['/bin/bash', '-c', script, 'bash', ...VAULTRUN_BIN],
        stdin: 'ignore',
      }).result;
      expect(res.exitCode, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ FROM_PIPE: 'piped' });
    });
  });
});
