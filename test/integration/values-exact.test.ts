// Property: a variable gets its source's value exactly, or vaultrun refuses with a usage error (64) naming the
// variable — never a changed value, never a misleading "command not executable" (126) or internal error (70)
// from execve. An environment holds UTF-8 text without NUL: a secret, an imported key, a NAME_FILE source or
// an env file with a NUL byte, or a source file that is not UTF-8, is refused for a variable; a secret file
// (NAME_FILE=vault:…) holds any bytes exactly. Real OpenBao; exec, supervise and check.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { expectFailure, probeEnv, runProbe, Sensitive, tempDir, unique } from '../support/resolution.js';

describe('values exactly, or a usage error', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const before = sensitive.add('before the NUL', unique('nulpre'));
  const withNul = `${before}\0tail`;
  const env = (vars: Record<string, string>) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/nul', { n: withNul, ok: 'fine-value' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  const NUL_MESSAGE = /vaultrun error: A: secret\/app\/nul#n: a variable cannot hold a NUL byte .*exit=64/;

  it.each<[string, string[]]>([
    ['exec', []],
    ['--supervise', ['--supervise']],
  ])(
    'a secret with a NUL byte, %s: 64 naming the variable, the command does not run',
    async (_mode, args) => {
      const run = await runProbe(sensitive, env({ A: 'vault:secret/app/nul#n' }), { args });
      expectFailure(run, 64, NUL_MESSAGE, /hint="binary content can go to a file/);
    },
  );

  it('a secret with a NUL byte inline: the same', async () => {
    const run = await runProbe(sensitive, env({ A: 'x${vault:secret/app/nul#n}y' }));
    expectFailure(run, 64, NUL_MESSAGE);
  });

  it('check reports it (64); the other reference, and the same one as a secret file, ok', async () => {
    const run = await runVaultrun(['check'], {
      env: baseEnv(
        env({ A: 'vault:secret/app/nul#n', B: 'vault:secret/app/nul#ok', C_FILE: 'vault:secret/app/nul#n' }),
      ),
    });
    expect(run.exitCode, run.stderr).toBe(64);
    expect(run.stdout).toMatch(/^A\s+\S+\s+invalid\s*$/m);
    expect(run.stdout).toMatch(/^B\s+\S+\s+ok\s*$/m);
    expect(run.stdout).toMatch(/^C_FILE\s+\S+\s+ok\s*$/m);
    expect(run.stderr).toMatch(/A: secret\/app\/nul#n: a variable cannot hold a NUL byte/);
    expect(run.stderr + run.stdout).not.toContain(before);
  });

  it('an imported key (--from-path) with a NUL byte: 64 naming the variable', async () => {
    const run = await runProbe(sensitive, env({}), { args: ['--from-path', 'secret/app/nul'] });
    expectFailure(
      run,
      64,
      /vaultrun error: n: the value holds a NUL byte, which an environment variable cannot hold/,
    );
  });

  it('a secret file (NAME_FILE=vault:…) holds it exactly', async () => {
    const run = await runVaultrun(['--', '/bin/sh', '-c', 'od -An -v -tx1 "$A_FILE" | tr -d " \\n"'], {
      env: baseEnv(env({ A_FILE: 'vault:secret/app/nul#n' })),
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(Buffer.from(withNul).toString('hex'));
  });

  it('a NAME_FILE source that is not UTF-8, or holds NUL: 64 naming the variable and the file; UTF-8 (with a BOM) exactly', async () => {
    const dir = tempDir('vaultrun-exact-');
    const latin1 = join(dir, 'latin1');
    writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "café" in Latin-1
    const nul = join(dir, 'nul');
    writeFileSync(nul, Buffer.from('a\0b'));
    const utf8 = join(dir, 'utf8');
    writeFileSync(utf8, '\ufeffcafé ✓\n');
    const fileEnv = (vars: Record<string, string>) => env({ VAULTRUN_FILE_ENV_DIRS: dir, ...vars });

    let run = await runProbe(sensitive, fileEnv({ A_FILE: latin1 }));
    expectFailure(
      run,
      64,
      new RegExp(`vaultrun error: A_FILE: ${latin1} is not UTF-8 text, so A cannot hold it exactly`),
    );
    run = await runProbe(sensitive, fileEnv({ A_FILE: nul }));
    expectFailure(
      run,
      64,
      new RegExp(`vaultrun error: A_FILE: ${nul} holds a NUL byte, so A cannot hold it exactly`),
    );
    run = await runProbe(sensitive, fileEnv({ A_FILE: utf8 }));
    expect(probeEnv(run).A).toBe('\ufeffcafé ✓');
  });

  it('an env file that is not UTF-8, or holds NUL: 64 naming the file', async () => {
    const dir = tempDir('vaultrun-exact-');
    const latin1 = join(dir, 'latin1.env');
    writeFileSync(latin1, Buffer.concat([Buffer.from('A=caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const nul = join(dir, 'nul.env');
    writeFileSync(nul, Buffer.from('A=a\0b\n'));
    let run = await runProbe(sensitive, env({}), { args: ['--env-file', latin1] });
    expectFailure(run, 64, new RegExp(`vaultrun error: env file ${latin1} is not UTF-8 text`));
    run = await runProbe(sensitive, env({}), { args: ['--env-file', nul] });
    expectFailure(run, 64, new RegExp(`vaultrun error: env file ${nul} holds a NUL byte`));
  });
});
