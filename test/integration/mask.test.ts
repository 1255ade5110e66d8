// --mask in supervise mode, against a real OpenBao: every resolved secret the command writes to stdout or
// stderr becomes <redacted>, also when the command writes it in pieces (split across writes, even inside a
// UTF-8 character); off by default; a usage error without --supervise.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { auditRequests, expectNoLeaks, Sensitive, unique } from '../support/resolution.js';

const WRITER = join(REPO_ROOT, 'test/fixtures/writer.mjs');

describe('--mask', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', `pässwörd-${unique('pw')}-€`);
  const keyLines = [unique('MIIEvQIBADANBgkq'), unique('hkiG9w0BAQEFAASC')];
  const pem = `-----BEGIN PRIVATE KEY-----\n${keyLines.join('\n')}\n-----END PRIVATE KEY-----`;
  const redis = sensitive.add('redis password', unique('redis'));
  for (const line of keyLines) sensitive.add('private key line', line);

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('app/db', { password, short: 'abc' });
    await bao.kvPut('app/tls', { key: pem });
    await bao.kvPut('app/redis', { password: redis });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  function run(args: string[], steps: string[]): Promise<RunResult> {
    return runVaultrun([...args, '--', process.execPath, WRITER, ...steps], {
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        DB_PASSWORD: 'vault:secret/app/db#password',
        SHORT: 'vault:secret/app/db#short',
        TLS_KEY: 'vault:secret/app/tls#key',
        BROKER_URL: 'redis://:${vault:secret/app/redis#password}@redis:6379/1',
      }),
    });
  }

  it('replaces a value split across writes on stdout and on stderr; the exit status is the command’s', async () => {
    const result = await run(
      ['--supervise', '--mask'],
      // 'pä' ends inside the two bytes of 'ä': the first cut splits a character.
      [
        'out=password: ',
        'out$DB_PASSWORD@2,5,11',
        'out= (end)\\n',
        'err=on stderr: ',
        'err$DB_PASSWORD@1',
        'err=\\n',
        'exit=3',
      ],
    );
    expectNoLeaks(`${result.stdout}${result.stderr}`, sensitive);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe('password: <redacted> (end)\n');
    expect(result.stderr).toContain('on stderr: <redacted>\n');
  });

  it('masks a multi-line value whole, each of its lines alone, and a secret inside a larger value', async () => {
    const result = await run(
      ['--supervise', '--mask'],
      [
        'out$TLS_KEY@40',
        'out=\\n',
        'out=line 2: ',
        'out$TLS_KEY:2@5',
        'out=\\n',
        'out$BROKER_URL@12',
        'out=\\n',
      ],
    );
    expectNoLeaks(result.stdout, sensitive);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('<redacted>\nline 2: <redacted>\nredis://:<redacted>@redis:6379/1\n');
  });

  it('values shorter than 4 characters are not masked (the logger’s rule)', async () => {
    const result = await run(['--supervise', '--mask'], ['out$SHORT', 'out=\\n']);
    expect(result.stdout).toBe('abc\n');
  });

  it('is off by default: the output passes untouched', async () => {
    const result = await run(['--supervise'], ['out$DB_PASSWORD@2,5', 'out=\\n']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`${password}\n`);
  });

  it('a background process that keeps the output pipes open does not keep vaultrun waiting', async () => {
    // Without the fix vaultrun waited for the pipes to close, i.e. for `sleep 300`: the test would time out.
    const result = await runVaultrun(
      ['--supervise', '--mask', '--', 'sh', '-c', 'sleep 300 & echo "up: $DB_PASSWORD"; exit 4'],
      {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: bao.rootToken,
          DB_PASSWORD: 'vault:secret/app/db#password',
        }),
      },
    );
    expect(result.exitCode).toBe(4);
    expect(result.stdout).toBe('up: <redacted>\n');
    expect(result.stderr).toMatch(/processes of its group still run/);
    expectNoLeaks(`${result.stdout}${result.stderr}`, sensitive);
  });

  it('without --supervise: 64 before contacting Vault, the command not run', async () => {
    const before = await auditRequests(bao);
    const result = await run(['--mask'], ['out=ran\\n']);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toMatch(/--mask: needs --supervise/);
    expect(result.stdout).toBe('');
    expect(await auditRequests(bao)).toHaveLength(before.length);
  });
});
