// Logging in: token (env, file, ~/.vault-token, BAO_* spellings), AppRole (env, files, wrapped secret_id,
// its origin checked, --delete-secret-id-file and a symlinked secret_id file), refusals, and no Vault contact at all without references.
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  expectScrubbed,
  type ProbeRun,
  probeEnv,
  runProbe,
  Sensitive,
  tempDir,
  unique,
} from '../support/resolution.js';

describe('login', () => {
  let bao: OpenBao;
  let token: string;
  let roleId: string;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));
  const REFS = {
    DB_PASSWORD: 'vault:secret/dify/db#password',
    URL: 'pg://u:${vault:secret/dify/db#password}@db',
  };

  /** A fresh secret_id for the AppRole role "app" (registered as sensitive). */
  async function newSecretId(): Promise<string> {
    const res = await bao.api<{ data: { secret_id: string } }>('POST', 'auth/approle/role/app/secret-id', {});
    return sensitive.add('secret_id', res.data.secret_id);
  }

  function expectResolved(run: ProbeRun, method: 'token' | 'approle'): Record<string, string> {
    const e = probeEnv(run);
    expect(e.DB_PASSWORD).toBe(password);
    expect(e.URL).toBe(`pg://u:${password}@db`);
    expectScrubbed(e);
    expect(run.stderr).toMatch(new RegExp(`resolved 2 references from 1 path in \\d+ ms via ${method}\\b`));
    return e;
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/db', { password });
    await bao.writePolicy('read-dify', 'path "secret/data/dify/*" { capabilities = ["read"] }');
    token = sensitive.add('token', await bao.createToken({ policies: ['read-dify'], ttl: '1h' }));
    const app = await bao.setupAppRole({ role: 'app', policies: ['read-dify'], tokenTtl: '10m' });
    roleId = sensitive.add('role_id', app.roleId);
    sensitive.add('secret_id', app.secretId);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  describe('token', () => {
    it('from VAULT_TOKEN', async () => {
      const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_TOKEN: token, ...REFS });
      expectResolved(run, 'token');
    });

    it('from VAULT_TOKEN_FILE (trailing newline ignored); the file stays', async () => {
      const file = join(tempDir(), 'token');
      writeFileSync(file, `${token}\n`);
      const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_TOKEN_FILE: file, ...REFS });
      expectResolved(run, 'token');
      expect(existsSync(file)).toBe(true);
    });

    it('from --token-file', async () => {
      const file = join(tempDir(), 'token');
      writeFileSync(file, token);
      const run = await runProbe(
        sensitive,
        { VAULT_ADDR: bao.addr, ...REFS },
        { args: ['--token-file', file] },
      );
      expectResolved(run, 'token');
    });

    it('from $HOME/.vault-token', async () => {
      const home = tempDir('vaultrun-home-');
      writeFileSync(join(home, '.vault-token'), `${token}\n`, { mode: 0o600 });
      const run = await runProbe(sensitive, { HOME: home, VAULT_ADDR: bao.addr, ...REFS });
      expectResolved(run, 'token');
    });

    it('with the BAO_ADDR / BAO_TOKEN spellings', async () => {
      const run = await runProbe(sensitive, { BAO_ADDR: bao.addr, BAO_TOKEN: token, ...REFS });
      const e = expectResolved(run, 'token');
      expect(e.BAO_ADDR).toBeUndefined();
      expect(e.BAO_TOKEN).toBeUndefined();
    });

    it('with BAO_TOKEN_FILE', async () => {
      const file = join(tempDir(), 'token');
      writeFileSync(file, token);
      const run = await runProbe(sensitive, { BAO_ADDR: bao.addr, BAO_TOKEN_FILE: file, ...REFS });
      expectResolved(run, 'token');
    });

    it('a bad token is refused: 67, before any read', async () => {
      const bad = sensitive.add('bad token', unique('s.badtoken'));
      const before = await auditRequests(bao, 'secret/data/dify/db');
      const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_TOKEN: bad, ...REFS });
      expectFailure(run, 67, /login refused/, /VAULT_TOKEN/);
      expect(await auditRequests(bao, 'secret/data/dify/db')).toHaveLength(before.length);
    });

    it('an unreadable VAULT_TOKEN_FILE is a local I/O error (74)', async () => {
      const missing = join(tempDir(), 'no-such-token');
      const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_TOKEN_FILE: missing, ...REFS });
      expectFailure(run, 74, /no-such-token/, /ENOENT/);
    });
  });

  describe('AppRole', () => {
    it('from VAULT_ROLE_ID / VAULT_SECRET_ID', async () => {
      const secretId = await newSecretId();
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: secretId,
        ...REFS,
      });
      expectResolved(run, 'approle');
    });

    it('from VAULT_ROLE_ID_FILE / VAULT_SECRET_ID_FILE; without --delete-secret-id-file the file stays', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'role_id'), `${roleId}\n`);
      writeFileSync(join(dir, 'secret_id'), `${await newSecretId()}\n`);
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID_FILE: join(dir, 'role_id'),
        VAULT_SECRET_ID_FILE: join(dir, 'secret_id'),
        ...REFS,
      });
      expectResolved(run, 'approle');
      expect(existsSync(join(dir, 'secret_id'))).toBe(true);
      expect(existsSync(join(dir, 'role_id'))).toBe(true);
    });

    it('--delete-secret-id-file deletes the secret_id file (and only it)', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'role_id'), roleId);
      writeFileSync(join(dir, 'secret_id'), await newSecretId());
      const run = await runProbe(
        sensitive,
        {
          VAULT_ADDR: bao.addr,
          VAULT_ROLE_ID_FILE: join(dir, 'role_id'),
          VAULT_SECRET_ID_FILE: join(dir, 'secret_id'),
          ...REFS,
        },
        { args: ['--delete-secret-id-file'] },
      );
      expectResolved(run, 'approle');
      expect(existsSync(join(dir, 'secret_id'))).toBe(false);
      expect(existsSync(join(dir, 'role_id'))).toBe(true);
    });

    it('a wrapped secret_id is unwrapped; a second use of the wrapping token is refused (67)', async () => {
      const wrapping = sensitive.add('wrapping token', await bao.wrappedSecretId('app'));
      const env = {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: wrapping,
        VAULTRUN_SECRET_ID_WRAPPED: 'true',
        ...REFS,
      };
      const first = await runProbe(sensitive, env);
      expectResolved(first, 'approle');
      const second = await runProbe(sensitive, env);
      expectFailure(second, 67, /login refused/, /wrapping token/, /someone else may have/);
    });

    it('a secret_id intercepted and re-wrapped with sys/wrapping/wrap is refused (67): not unwrapped, no login', async () => {
      // The attacker unwraps the genuine wrapping token (keeping the secret_id) and passes a new one on.
      const genuine = sensitive.add('wrapping token', await bao.wrappedSecretId('app'));
      const stolen = await bao.api<{ data: { secret_id: string } }>(
        'POST',
        'sys/wrapping/unwrap',
        undefined,
        genuine,
      );
      sensitive.add('stolen secret_id', stolen.data.secret_id);
      const rewrapped = await bao.api<{ wrap_info: { token: string } }>(
        'POST',
        'sys/wrapping/wrap',
        { secret_id: stolen.data.secret_id },
        bao.rootToken,
        { 'X-Vault-Wrap-TTL': '5m' },
      );
      const wrapping = sensitive.add('re-wrapped token', rewrapped.wrap_info.token);
      const logins = await auditRequests(bao, 'auth/approle/login');
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: wrapping,
        VAULTRUN_SECRET_ID_WRAPPED: 'true',
        ...REFS,
      });
      expectFailure(
        run,
        67,
        /the wrapping token in VAULT_SECRET_ID\(_FILE\) \(VAULTRUN_SECRET_ID_WRAPPED=true\) was created by "sys\/wrapping\/wrap", not by auth\/approle\/role\/ROLE\/secret-id/,
        /it was not wrapped by the AppRole secret-id endpoint: someone may have intercepted and re-wrapped it/,
        /revoke the role's secret_ids/,
      );
      expect(await auditRequests(bao, 'auth/approle/login')).toHaveLength(logins.length);
      // vaultrun did not unwrap it: the token is still there for whoever investigates.
      const lookup = await bao.api<{ data: { creation_path: string } }>('POST', 'sys/wrapping/lookup', {
        token: wrapping,
      });
      expect(lookup.data.creation_path).toBe('sys/wrapping/wrap');
    });

    it('a wrapped secret_id of another AppRole mount is refused unless --approle-mount names it', async () => {
      await bao.setupAppRole({ role: 'app', policies: ['read-dify'], mount: 'approle-b' });
      const roleIdB = sensitive.add(
        'role_id b',
        (await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle-b/role/app/role-id')).data.role_id,
      );
      const env = (wrapping: string) => ({
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleIdB,
        VAULT_SECRET_ID: wrapping,
        VAULTRUN_SECRET_ID_WRAPPED: 'true',
        ...REFS,
      });
      const refused = await runProbe(
        sensitive,
        env(sensitive.add('wrapping token b1', await bao.wrappedSecretId('app', 'approle-b'))),
      );
      expectFailure(
        refused,
        67,
        /was created by "auth\/approle-b\/role\/app\/secret-id", not by auth\/approle\//,
      );
      const ok = await runProbe(
        sensitive,
        env(sensitive.add('wrapping token b2', await bao.wrappedSecretId('app', 'approle-b'))),
        { args: ['--approle-mount', 'approle-b'] },
      );
      expectResolved(ok, 'approle');
    });

    it('--delete-secret-id-file with a symlinked secret_id file: refused (74) before the login, the target untouched', async () => {
      const dir = tempDir();
      const secretId = await newSecretId();
      writeFileSync(join(dir, 'real'), `${secretId}\n`);
      symlinkSync(join(dir, 'real'), join(dir, 'secret_id'));
      const logins = await auditRequests(bao, 'auth/approle/login');
      const run = await runProbe(
        sensitive,
        {
          VAULT_ADDR: bao.addr,
          VAULT_ROLE_ID: roleId,
          VAULT_SECRET_ID_FILE: join(dir, 'secret_id'),
          ...REFS,
        },
        { args: ['--delete-secret-id-file'] },
      );
      expectFailure(
        run,
        74,
        /VAULT_SECRET_ID_FILE .*secret_id is a symbolic link: --delete-secret-id-file would delete only the link/,
        /point VAULT_SECRET_ID_FILE at the file itself/,
      );
      expect(readFileSync(join(dir, 'real'), 'utf8')).toBe(`${secretId}\n`);
      expect(existsSync(join(dir, 'secret_id'))).toBe(true);
      expect(await auditRequests(bao, 'auth/approle/login')).toHaveLength(logins.length);
      // Pointed at the file itself, the same secret_id logs in and the file is gone.
      const ok = await runProbe(
        sensitive,
        { VAULT_ADDR: bao.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID_FILE: join(dir, 'real'), ...REFS },
        { args: ['--delete-secret-id-file'] },
      );
      expectResolved(ok, 'approle');
      expect(existsSync(join(dir, 'real'))).toBe(false);
    });

    it('a wrapped secret_id from a file, with --secret-id-wrapped', async () => {
      const dir = tempDir();
      writeFileSync(
        join(dir, 'wrapped'),
        `${sensitive.add('wrapping token', await bao.wrappedSecretId('app'))}\n`,
      );
      const run = await runProbe(
        sensitive,
        { VAULT_ADDR: bao.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID_FILE: join(dir, 'wrapped'), ...REFS },
        { args: ['--secret-id-wrapped'] },
      );
      expectResolved(run, 'approle');
    });

    it('a bad secret_id is refused (67)', async () => {
      const bad = sensitive.add('bad secret_id', unique('bad-secret-id'));
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: bad,
        ...REFS,
      });
      expectFailure(run, 67, /login refused/, /approle/i);
    });

    it('a bad role_id is refused (67)', async () => {
      const bad = sensitive.add('bad role_id', unique('bad-role-id'));
      const run = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: bad,
        VAULT_SECRET_ID: await newSecretId(),
        ...REFS,
      });
      expectFailure(run, 67, /login refused/);
    });

    it('a role_id without a secret_id is refused with what to set (67)', async () => {
      const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_ROLE_ID: roleId, ...REFS });
      expectFailure(run, 67, /secret_id/, /VAULT_SECRET_ID/);
    });
  });

  it('both a token and a role_id without VAULTRUN_AUTH_METHOD is ambiguous (64)', async () => {
    const run = await runProbe(sensitive, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULT_ROLE_ID: roleId,
      VAULT_SECRET_ID: await newSecretId(),
      ...REFS,
    });
    expectFailure(run, 64, /VAULTRUN_AUTH_METHOD/);
  });

  it('VAULTRUN_AUTH_METHOD=token picks the token when a role_id is set too', async () => {
    const run = await runProbe(sensitive, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULT_ROLE_ID: roleId,
      VAULTRUN_AUTH_METHOD: 'token',
      ...REFS,
    });
    expectResolved(run, 'token');
  });

  it('references but no credentials at all: 67, telling what to set, without contacting Vault', async () => {
    const before = await auditRequests(bao);
    const run = await runProbe(sensitive, { VAULT_ADDR: bao.addr, ...REFS });
    expectFailure(run, 67, /no credentials/, /VAULT_TOKEN/, /VAULT_ROLE_ID/, /VAULT_SECRET_ID/);
    expect(await auditRequests(bao)).toHaveLength(before.length);
  });

  describe('no references', () => {
    it('exit 0 and not a single request to Vault, credentials or not', async () => {
      const before = await auditRequests(bao);
      const withToken = await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: token,
        APP: 'plain',
        // looks like a reference but is passed through untouched
        VAULTRUN_PASSTHROUGH: 'LITERAL',
        LITERAL: 'vault:secret/dify/db#password',
      });
      const e = probeEnv(withToken);
      expect(e.APP).toBe('plain');
      expect(e.LITERAL).toBe('vault:secret/dify/db#password');
      expect(withToken.stderr).toMatch(/without contacting Vault/);
      expect(withToken.stderr).not.toMatch(/resolved/);
      const noCreds = await runProbe(sensitive, { VAULT_ADDR: bao.addr, APP: 'plain' });
      expect(probeEnv(noCreds).APP).toBe('plain');
      expect(await auditRequests(bao)).toHaveLength(before.length);
    });

    it('exit 0 with VAULT_ADDR pointing to a closed port', async () => {
      const port = await freePort();
      const run = await runProbe(
        sensitive,
        { VAULT_ADDR: `http://127.0.0.1:${port}`, VAULT_TOKEN: token, APP: 'plain' },
        { args: ['--wait', '2s'] },
      );
      expect(probeEnv(run).APP).toBe('plain');
      expect(run.stderr).not.toMatch(/retrying|unavailable|ECONNREFUSED/);
    });
  });
});
