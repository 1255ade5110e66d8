// `vaultrun resolve` against a real OpenBao: every format read back by its consumer (dotenv, bash, JSON.parse,
// a $GITHUB_ENV parser), only the referenced variables unless --all, never our credentials or settings,
// --output created 0600, and the usage errors that come before any contact with Vault.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { auditRequests, expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

describe('vaultrun resolve', () => {
  let bao: OpenBao;
  let token: string;
  const secrets = new Sensitive(); // may appear on stdout (that is the point), never on stderr
  const credentials = new Sensitive(); // never anywhere
  // Hostile to every format, spread over two values so that the dotenv format can write both (it refuses a '
  // together with ", $, ` or a backslash: no quoting keeps that exact for both shells and dotenv readers).
  const password = secrets.add('db password', `${unique('pw')} it's # not a comment\nEVIL=1\n`);
  const pem = secrets.add(
    'private key',
    `-----BEGIN PRIVATE KEY-----\n${unique('MIIEv')}\n${unique('QDIk')}\n-----END PRIVATE KEY-----\n`,
  );
  const redis = secrets.add('redis password', `${unique('redispass')}"$HOME"\`x\`$(touch PWNED)\\n`);
  const REFS = {
    DB_PASSWORD: 'vault:secret/app/db#password',
    TLS_KEY: 'vault:secret/app/tls#key',
    CELERY_BROKER_URL: 'redis://:${vault:secret/app/redis#password}@redis:6379/1',
  };
  const EXPECTED = {
    DB_PASSWORD: password,
    TLS_KEY: pem,
    CELERY_BROKER_URL: `redis://:${redis}@redis:6379/1`,
  };

  beforeAll(async () => {
    bao = await startOpenBao();
    credentials.add('root token', bao.rootToken);
    await bao.kvPut('app/db', { password });
    await bao.kvPut('app/tls', { key: pem });
    await bao.kvPut('app/redis', { password: redis });
    await bao.writePolicy('read-app', 'path "secret/data/app/*" { capabilities = ["read"] }');
    token = credentials.add('token', await bao.createToken({ policies: ['read-app'], ttl: '1h' }));
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function resolve(args: string[], vars: Record<string, string> = {}): Promise<RunResult> {
    const result = await runVaultrun(['resolve', ...args], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: token, PLAIN: 'not a secret', ...REFS, ...vars }),
    });
    expectNoLeaks(result.stderr, secrets);
    expectNoLeaks(`${result.stdout}${result.stderr}`, credentials);
    return result;
  }

  function ok(result: RunResult): string {
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout;
  }

  it('dotenv (the default): the referenced variables only, read back exactly by dotenv, python-dotenv and `set -a; .`', async () => {
    const result = await resolve([]);
    const text = ok(result);
    expect(parseDotenv(text)).toEqual(EXPECTED);
    expect(result.stderr).toMatch(/resolved 3 references from 3 paths in \d+ ms via token/);
    const dir = tempDir();
    const file = join(dir, 'app.env');
    writeFileSync(file, text);
    const python = execFileSync(
      'python3',
      [
        '-c',
        'import json, sys; from dotenv import dotenv_values; print(json.dumps(dotenv_values(sys.argv[1])))',
        file,
      ],
      { env: { PATH: '/usr/bin:/bin', PYTHONPATH: join(process.cwd(), '.tools/python') } },
    );
    expect(JSON.parse(python.toString('utf8'))).toEqual(EXPECTED);
    const names = Object.keys(EXPECTED);
    const bash = execFileSync(
      'bash',
      ['-c', `set -a; . "$1"; printf '%s\\0'${names.map((n) => ` "$${n}"`).join('')}`, 'bash', file],
      { cwd: dir, env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(bash.toString('utf8').split('\0').slice(0, -1)).toEqual(Object.values(EXPECTED));
    expect(readdirSync(dir), 'no code ran').toEqual(['app.env']);
  });

  it('json: read back exactly by JSON.parse', async () => {
    expect(JSON.parse(ok(await resolve(['--format', 'json'])))).toEqual(EXPECTED);
  });

  it('shell: evaluated by bash, every value exact', async () => {
    const script = ok(await resolve(['--format', 'shell']));
    expect(script).toMatch(/^export CELERY_BROKER_URL='/);
    const names = Object.keys(EXPECTED);
    const out = execFileSync(
      'bash',
      ['-c', `${script}\nprintf '%s\\0'${names.map((n) => ` "$${n}"`).join('')}`],
      {
        env: { PATH: '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe'], // a socket on stdin makes bash read ~/.bashrc
      },
    );
    expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(Object.values(EXPECTED));
  });

  it('--all: the whole environment, scrubbed — never our credentials or settings', async () => {
    const jwt = credentials.add('jwt', unique('eyJhbGciOi'));
    const all = JSON.parse(
      ok(
        await resolve(['--all', '--format', 'json'], {
          VAULTRUN_AUTH_METHOD: 'token',
          VAULTRUN_JWT: jwt,
          VAULT_ROLE_ID: unique('role'),
        }),
      ),
    ) as Record<string, string>;
    expect(all).toMatchObject({ ...EXPECTED, PLAIN: 'not a secret' });
    expect(all.HOME).toBeDefined();
    expect(Object.keys(all).filter((n) => /^(VAULT_|VAULTRUN_|BAO_)/.test(n))).toEqual([]);
  });

  it('--output FILE: written with mode 0600 (also over an existing 0644 file), nothing on stdout', async () => {
    const dir = tempDir();
    const file = join(dir, 'app.env');
    writeFileSync(file, 'OLD=1\n', { mode: 0o644 });
    const result = await resolve(['--output', file]);
    expect(ok(result)).toBe('');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(parseDotenv(readFileSync(file))).toEqual(EXPECTED);
    expect(readdirSync(dir)).toEqual(['app.env']); // no temporary file left behind
  });

  it('--output in a directory that does not exist: 74 naming the flag', async () => {
    const result = await resolve(['--output', join(tempDir(), 'missing', 'app.env')]);
    expect(result.exitCode).toBe(74);
    expect(result.stderr).toMatch(/--output: cannot write .*app\.env: ENOENT/);
    expect(result.stdout).toBe('');
  });

  describe('--format github', () => {
    /** GitHub's documented $GITHUB_ENV syntax (NAME=value, or NAME<<DELIMITER … DELIMITER). */
    function parseGithubEnv(text: string): Record<string, string> {
      const out: Record<string, string> = {};
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] as string;
        const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
        if (heredoc) {
          const end = lines.indexOf(heredoc[2] as string, i + 1);
          out[heredoc[1] as string] = lines.slice(i + 1, end).join('\n');
          i = end;
        } else if (line.includes('=')) {
          out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
        }
      }
      return out;
    }

    it('masks every value (each line, and the secret inside the URL), then appends to $GITHUB_ENV', async () => {
      const githubEnv = join(tempDir(), 'github_env');
      writeFileSync(githubEnv, 'EARLIER=step\n');
      const stdout = ok(await resolve(['--format', 'github'], { GITHUB_ENV: githubEnv }));
      const masks = stdout.split('\n').filter((l) => l !== '');
      expect(masks.every((l) => l.startsWith('::add-mask::'))).toBe(true);
      const masked = masks.map((l) => l.slice('::add-mask::'.length));
      for (const line of pem.split('\n').filter((l) => l !== '')) expect(masked).toContain(line);
      for (const line of password.split('\n').filter((l) => l !== '')) expect(masked).toContain(line);
      expect(masked).toContain(redis);
      expect(masked).toContain(EXPECTED.CELERY_BROKER_URL);
      const appended = readFileSync(githubEnv, 'utf8');
      expect(appended.startsWith('EARLIER=step\n')).toBe(true);
      expect(parseGithubEnv(appended)).toEqual({ EARLIER: 'step', ...EXPECTED });
      expect(appended).toMatch(/^DB_PASSWORD<<ghadelimiter_[0-9a-f-]{36}$/m);
    });

    it('without $GITHUB_ENV: 64, before contacting Vault', async () => {
      const before = await auditRequests(bao);
      const result = await resolve(['--format', 'github']);
      expect(result.exitCode).toBe(64);
      expect(result.stderr).toMatch(/--format github: \$GITHUB_ENV is not set/);
      expect(result.stdout).toBe('');
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('with --output: 64', async () => {
      const result = await resolve(['--format', 'github', '--output', join(tempDir(), 'x')], {
        GITHUB_ENV: join(tempDir(), 'github_env'),
      });
      expect(result.exitCode).toBe(64);
      expect(result.stderr).toMatch(/--output cannot be used with --format github/);
    });
  });

  it('a value dotenv cannot write exactly: 64 naming the variable, nothing printed', async () => {
    const odd = secrets.add('odd value', `${unique('odd')}'\`"\n#`);
    await bao.kvPut('app/odd', { value: odd });
    const result = await resolve([], { ODD: 'vault:secret/app/odd#value' });
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toMatch(/ODD: the value cannot be written in dotenv format/);
    expect(result.stdout).toBe('');
    expect(
      JSON.parse(ok(await resolve(['--format', 'json'], { ODD: 'vault:secret/app/odd#value' }))).ODD,
    ).toBe(odd);
  });

  it('names a format cannot express: an error for a referenced variable, left out with a warning under --all', async () => {
    const all = await resolve(['--all', '--format', 'shell'], { 'my.setting': 'x' });
    expect(ok(all)).not.toContain('my.setting');
    expect(all.stderr).toMatch(
      /variable left out: not a shell variable name .* variable=my\.setting format=shell/,
    );
    const referenced = await resolve(['--format', 'shell'], {
      'db.password': 'vault:secret/app/db#password',
    });
    expect(referenced.exitCode).toBe(64);
    expect(referenced.stderr).toMatch(/db\.password: cannot be written in shell format/);
    expect(referenced.stdout).toBe('');
    // dotenv too: `set -a; . file` would run `db.password=…` as a command.
    const dotenv = await resolve([], { 'db.password': 'vault:secret/app/db#password' });
    expect(dotenv.exitCode).toBe(64);
    expect(dotenv.stderr).toMatch(
      /db\.password: cannot be written in dotenv format: not a shell variable name/,
    );
    expect(dotenv.stdout).toBe('');
    expect(
      JSON.parse(ok(await resolve(['--format', 'json'], { 'db.password': 'vault:secret/app/db#password' }))),
    ).toMatchObject({ 'db.password': password });
  });

  it('NAME_FILE=vault:… prints NAME_FILE as the path of its 0400 secret file', async () => {
    const runtime = join(tempDir(), 'run');
    const out = parseDotenv(
      ok(
        await resolve([], {
          TLS_KEY: '',
          TLS_KEY_FILE: 'vault:secret/app/tls#key',
          VAULTRUN_RUNTIME_DIR: runtime,
        }),
      ),
    );
    // In this process's own directory of the runtime directory: RUNTIME/PID-XXXXXX/TLS_KEY.
    const [own] = readdirSync(runtime);
    expect(own).toMatch(/^\d+-\w{6}$/);
    expect(out.TLS_KEY_FILE).toBe(join(runtime, own as string, 'TLS_KEY'));
    expect(readFileSync(out.TLS_KEY_FILE as string, 'utf8')).toBe(pem);
    expect(statSync(out.TLS_KEY_FILE as string).mode & 0o777).toBe(0o400);
  });

  it('a missing key: 66, nothing on stdout', async () => {
    const result = await resolve([], { MISSING: 'vault:secret/app/db#nope' });
    expect(result.exitCode).toBe(66);
    expect(result.stderr).toMatch(/MISSING: key "nope" not found/);
    expect(result.stdout).toBe('');
  });

  it('no references: empty output, exit 0, no request to Vault', async () => {
    const before = await auditRequests(bao);
    const result = await runVaultrun(['resolve', '--format', 'json'], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: token, PLAIN: 'x' }),
    });
    expect(ok(result)).toBe('{}\n');
    expect(await auditRequests(bao)).toHaveLength(before.length);
  });

  it('a bad --format: 64 listing the formats', async () => {
    const result = await resolve(['--format', 'yaml']);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toMatch(/dotenv, json, shell, github/);
  });
});
