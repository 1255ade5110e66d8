// *_FILE in both directions (secret files from references; NAME_FILE=/path → NAME), and --env-file.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  probeEnv,
  runProbe,
  Sensitive,
  tempDir,
  unique,
} from '../support/resolution.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('files', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));
  const user = sensitive.add('db user', unique('dbuser'));
  const pemBody = sensitive.add('pem body', unique('MIIEpAIBAAKCAQEA'));
  const pem = `-----BEGIN KEY-----\n${pemBody}\n-----END KEY-----\n`;
  const redis = sensitive.add('redis password', unique('redispass'));

  const vault = (vars: Record<string, string>) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    ...vars,
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/db', { password, user, pem });
    await bao.kvPut('dify/redis', { password: redis });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  describe('NAME_FILE=vault:… → a secret file', () => {
    it('writes the secret to a 0400 file in a 0700 directory and sets NAME_FILE to its path', async () => {
      const runtime = join(tempDir(), 'run');
      const run = await runProbe(sensitive, vault({ DB_PASSWORD_FILE: 'vault:secret/dify/db#password' }), {
        args: ['--runtime-dir', runtime],
      });
      const e = probeEnv(run);
      const file = e.DB_PASSWORD_FILE as string;
      // RUNTIME/PID-XXXXXX/DB_PASSWORD: the process's own directory inside the runtime directory.
      const own = dirname(file);
      expect(dirname(own)).toBe(runtime);
      expect(readdirSync(runtime)).toEqual([basename(own)]);
      expect(basename(own)).toMatch(/^\d+-\w{6}$/);
      expect(readFileSync(file, 'utf8')).toBe(password);
      expect(mode(file)).toBe(0o400);
      expect(statSync(file).uid).toBe(process.getuid?.());
      expect(mode(runtime)).toBe(0o700);
      expect(mode(own)).toBe(0o700);
      expect(statSync(own).uid).toBe(process.getuid?.());
      expect(e).not.toHaveProperty('DB_PASSWORD');
      expectScrubbed(e);
      // no temporary files left behind
      expect(readdirSync(own)).toEqual(['DB_PASSWORD']);
    });

    it('writes the exact content (newlines kept), one file per variable; inline references work too', async () => {
      const runtime = join(tempDir(), 'run');
      const run = await runProbe(
        sensitive,
        vault({
          TLS_KEY_FILE: 'vault:secret/dify/db#pem',
          REDIS_URL_FILE: 'redis://:${vault:secret/dify/redis#password}@redis:6379/1',
          DB_USER: 'vault:secret/dify/db#user',
        }),
        { args: ['--runtime-dir', runtime] },
      );
      const e = probeEnv(run);
      expect(readFileSync(e.TLS_KEY_FILE as string, 'utf8')).toBe(pem);
      expect(readFileSync(e.REDIS_URL_FILE as string, 'utf8')).toBe(`redis://:${redis}@redis:6379/1`);
      expect(e.DB_USER).toBe(user);
      const own = dirname(e.TLS_KEY_FILE as string);
      expect(dirname(e.REDIS_URL_FILE as string)).toBe(own);
      expect(readdirSync(own).sort()).toEqual(['REDIS_URL', 'TLS_KEY']);
      for (const f of readdirSync(own)) expect(mode(join(own, f))).toBe(0o400);
    });

    it('an existing runtime directory with a loose mode is made 0700; VAULTRUN_RUNTIME_DIR works', async () => {
      const runtime = join(tempDir(), 'run');
      mkdirSync(runtime, { mode: 0o755 });
      chmodSync(runtime, 0o755);
      const run = await runProbe(
        sensitive,
        vault({ DB_PASSWORD_FILE: 'vault:secret/dify/db#password', VAULTRUN_RUNTIME_DIR: runtime }),
      );
      const e = probeEnv(run);
      expect(dirname(dirname(e.DB_PASSWORD_FILE as string))).toBe(runtime);
      expect(basename(e.DB_PASSWORD_FILE as string)).toBe('DB_PASSWORD');
      expect(mode(runtime)).toBe(0o700);
    });

    it('an explicit runtime directory that cannot be used is an I/O error (74), without fallback', async () => {
      const blocker = join(tempDir(), 'not-a-dir');
      writeFileSync(blocker, 'x');
      const run = await runProbe(sensitive, vault({ DB_PASSWORD_FILE: 'vault:secret/dify/db#password' }), {
        args: ['--runtime-dir', join(blocker, 'run')],
      });
      expectFailure(run, 74, /not-a-dir/);
    });

    it('NAME and NAME_FILE both set is a usage error (64)', async () => {
      const run = await runProbe(
        sensitive,
        vault({ DB_PASSWORD: 'plain', DB_PASSWORD_FILE: 'vault:secret/dify/db#password' }),
        { args: ['--runtime-dir', join(tempDir(), 'run')] },
      );
      expectFailure(run, 64, /both DB_PASSWORD and DB_PASSWORD_FILE are set/);
    });
  });

  describe('NAME_FILE=/path → NAME', () => {
    let secrets: string;
    const fileSecret = sensitive.add('file secret', unique('filesecret'));

    beforeAll(() => {
      secrets = tempDir('vaultrun-secrets-');
      writeFileSync(join(secrets, 'db_password'), `${fileSecret}\n`);
      writeFileSync(join(secrets, 'two_newlines'), 'value\n\n');
      writeFileSync(join(secrets, 'no_newline'), 'bare');
      writeFileSync(join(secrets, 'looks_like_ref'), 'vault:secret/dify/db#password\n');
    });

    it('reads files under VAULTRUN_FILE_ENV_DIRS into NAME (one trailing newline removed) and drops NAME_FILE', async () => {
      const run = await runProbe(sensitive, {
        VAULTRUN_FILE_ENV_DIRS: secrets,
        DB_PASSWORD_FILE: join(secrets, 'db_password'),
        TWO_FILE: join(secrets, 'two_newlines'),
        BARE_FILE: join(secrets, 'no_newline'),
      });
      const e = probeEnv(run);
      expect(e.DB_PASSWORD).toBe(fileSecret);
      expect(e.TWO).toBe('value\n');
      expect(e.BARE).toBe('bare');
      for (const name of ['DB_PASSWORD_FILE', 'TWO_FILE', 'BARE_FILE']) expect(e).not.toHaveProperty(name);
    });

    it('file contents are literal: never resolved as references (and no Vault contact)', async () => {
      const before = await auditRequests(bao);
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        VAULTRUN_FILE_ENV_DIRS: secrets,
        REF_FILE: join(secrets, 'looks_like_ref'),
      });
      expect(probeEnv(run).REF).toBe('vault:secret/dify/db#password');
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('works next to references in the same run', async () => {
      const run = await runProbe(
        sensitive,
        vault({
          VAULTRUN_FILE_ENV_DIRS: secrets,
          DB_PASSWORD_FILE: join(secrets, 'db_password'),
          DB_USER: 'vault:secret/dify/db#user',
        }),
      );
      const e = probeEnv(run);
      expect(e.DB_PASSWORD).toBe(fileSecret);
      expect(e.DB_USER).toBe(user);
    });

    it('leaves *_FILE outside the directories, relative paths and excluded names untouched', async () => {
      const outside = tempDir('vaultrun-outside-');
      writeFileSync(join(outside, 'app.log'), 'log content');
      writeFileSync(join(secrets, 'aws_token'), 'jwt');
      const run = await runProbe(sensitive, {
        VAULTRUN_FILE_ENV_DIRS: secrets,
        LOG_FILE: join(outside, 'app.log'),
        TRICK_FILE: `${secrets}/../${outside.split('/').pop()}/app.log`,
        REL_FILE: 'secrets/db_password',
        AWS_WEB_IDENTITY_TOKEN_FILE: join(secrets, 'aws_token'),
      });
      const e = probeEnv(run);
      expect(e.LOG_FILE).toBe(join(outside, 'app.log'));
      expect(e.REL_FILE).toBe('secrets/db_password');
      expect(e.AWS_WEB_IDENTITY_TOKEN_FILE).toBe(join(secrets, 'aws_token'));
      expect(e.TRICK_FILE).toBeDefined();
      for (const name of ['LOG', 'TRICK', 'REL', 'AWS_WEB_IDENTITY_TOKEN'])
        expect(e).not.toHaveProperty(name);
    });

    it('NAME and NAME_FILE both set is a usage error (64)', async () => {
      const run = await runProbe(sensitive, {
        VAULTRUN_FILE_ENV_DIRS: secrets,
        DB_PASSWORD: 'also-set',
        DB_PASSWORD_FILE: join(secrets, 'db_password'),
      });
      expectFailure(run, 64, /both DB_PASSWORD and DB_PASSWORD_FILE are set/);
    });

    it('a missing file inside the directories is an I/O error (74)', async () => {
      const run = await runProbe(sensitive, {
        VAULTRUN_FILE_ENV_DIRS: secrets,
        GONE_FILE: join(secrets, 'gone'),
      });
      expectFailure(run, 74, /GONE_FILE/, /ENOENT/);
    });

    it('--no-file-env turns both directions off', async () => {
      const runtime = join(tempDir(), 'run');
      const run = await runProbe(
        sensitive,
        vault({
          VAULTRUN_FILE_ENV_DIRS: secrets,
          PLAIN_FILE: join(secrets, 'db_password'),
          DB_PASSWORD: 'both-set-is-fine-now',
          DB_PASSWORD_FILE: join(secrets, 'db_password'),
          CERT_FILE: 'vault:secret/dify/db#password',
        }),
        { args: ['--no-file-env', '--runtime-dir', runtime] },
      );
      const e = probeEnv(run);
      expect(e.PLAIN_FILE).toBe(join(secrets, 'db_password'));
      expect(e).not.toHaveProperty('PLAIN');
      expect(e.DB_PASSWORD).toBe('both-set-is-fine-now');
      expect(e.DB_PASSWORD_FILE).toBe(join(secrets, 'db_password'));
      // an ordinary variable now: it gets the value itself, no file is written
      expect(e.CERT_FILE).toBe(password);
      expect(existsSync(runtime)).toBe(false);
    });

    it('VAULTRUN_FILE_ENV=false does the same', async () => {
      const run = await runProbe(sensitive, {
        VAULTRUN_FILE_ENV: 'false',
        VAULTRUN_FILE_ENV_DIRS: secrets,
        PLAIN_FILE: join(secrets, 'db_password'),
      });
      const e = probeEnv(run);
      expect(e.PLAIN_FILE).toBe(join(secrets, 'db_password'));
      expect(e).not.toHaveProperty('PLAIN');
    });
  });

  describe('--env-file', () => {
    let dir: string;

    beforeAll(() => {
      dir = tempDir('vaultrun-envfiles-');
      writeFileSync(
        join(dir, 'app.env'),
        [
          '# dify',
          'DB_PASSWORD=vault:secret/dify/db#password',
          "REDIS_URL='redis://:${vault:secret/dify/redis#password}@redis:6379/1'",
          'DSN="pg://${vault:secret/dify/db#user}@db"',
          'export DB_USER=vault:secret/dify/db#user   # unquoted: the reference keeps its #KEY',
          "QUOTED_REF='vault:secret/dify/db#password'",
          'COMMENTED=plain # a comment',
          'SHARED=from-app-env',
          'ONLY_APP=app',
          '',
        ].join('\n'),
      );
      writeFileSync(join(dir, 'override.env'), 'SHARED=from-override-env\nONLY_OVERRIDE=override\n');
      writeFileSync(join(dir, 'ref.env'), 'SHARED=vault:secret/dify/db#user\n');
    });

    it('reads variables from the file and resolves their references', async () => {
      const run = await runProbe(sensitive, vault({}), { args: ['--env-file', join(dir, 'app.env')] });
      const e = probeEnv(run);
      expect(e.DB_PASSWORD).toBe(password);
      expect(e.REDIS_URL).toBe(`redis://:${redis}@redis:6379/1`);
      expect(e.DSN).toBe(`pg://${user}@db`);
      expect(e.DB_USER).toBe(user);
      expect(e.QUOTED_REF).toBe(password);
      expect(e.COMMENTED).toBe('plain');
      expect(e.SHARED).toBe('from-app-env');
      expectScrubbed(e);
    });

    it('the process environment beats the file by default; --env-file-override flips that', async () => {
      const envFile = ['--env-file', join(dir, 'app.env')];
      const byDefault = probeEnv(
        await runProbe(sensitive, vault({ SHARED: 'from-process', DB_PASSWORD: 'process-value' }), {
          args: envFile,
        }),
      );
      expect(byDefault.SHARED).toBe('from-process');
      expect(byDefault.DB_PASSWORD).toBe('process-value');
      const overridden = probeEnv(
        await runProbe(sensitive, vault({ SHARED: 'from-process', DB_PASSWORD: 'process-value' }), {
          args: [...envFile, '--env-file-override'],
        }),
      );
      expect(overridden.SHARED).toBe('from-app-env');
      expect(overridden.DB_PASSWORD).toBe(password);
    });

    it('a later --env-file beats an earlier one', async () => {
      const app = join(dir, 'app.env');
      const override = join(dir, 'override.env');
      const later = probeEnv(
        await runProbe(sensitive, vault({}), { args: ['--env-file', app, '--env-file', override] }),
      );
      expect(later.SHARED).toBe('from-override-env');
      expect(later.ONLY_APP).toBe('app');
      expect(later.ONLY_OVERRIDE).toBe('override');
      expect(later.DB_PASSWORD).toBe(password);
      const reversed = probeEnv(
        await runProbe(sensitive, vault({}), { args: ['--env-file', override, '--env-file', app] }),
      );
      expect(reversed.SHARED).toBe('from-app-env');
    });

    it('a reference that wins from a later file is resolved; VAULTRUN_ENV_FILE takes a comma-separated list', async () => {
      const run = await runProbe(
        sensitive,
        vault({ VAULTRUN_ENV_FILE: `${join(dir, 'override.env')},${join(dir, 'ref.env')}` }),
      );
      const e = probeEnv(run);
      expect(e.SHARED).toBe(user);
      expect(e.ONLY_OVERRIDE).toBe('override');
    });

    it('a missing env file is an I/O error (74) naming it', async () => {
      // Given in VAULTRUN_ENV_FILE: with `node dist/vaultrun.cjs --env-file MISSING`, Node itself looks at the
      // --env-file after the script name and exits 9 before vaultrun runs (nodejs/node#54232).
      const run = await runProbe(
        sensitive,
        vault({
          DB_PASSWORD: 'vault:secret/dify/db#password',
          VAULTRUN_ENV_FILE: `${join(dir, 'app.env')},${join(dir, 'missing.env')}`,
        }),
      );
      expectFailure(run, 74, /missing\.env/, /ENOENT/);
    });
  });
});
