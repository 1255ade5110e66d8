// The supervisor's failure paths around dynamic secrets, driven for real: OpenBao's database engine on a real
// PostgreSQL. A lease renewal refused by a policy change (sys/leases/renew denied), a lease or token revocation
// refused at exit (a policy without sys/leases/revoke or auth/token/revoke-self), vaultrun asked to exit while
// a re-resolution is reading a new credential (a creation statement that takes seconds), and `check` with a
// dynamic secret (it revokes what it obtained). Each test checks what the app sees (starts, variables) and what
// the operator sees (log lines, exit status), and the leases left in OpenBao afterwards.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { workDir } from '../support/processes.js';
import { Sensitive } from '../support/resolution.js';
import {
  type Resident,
  ROTATION_APP,
  running,
  startResident,
  starts,
  waitForStart,
} from '../support/rotation.js';

const READ = 'path "database/creds/*" { capabilities = ["read"] }\n';
const REVOKE = 'path "sys/leases/revoke" { capabilities = ["update"] }\n';
const ALLOW_RENEW = 'path "sys/leases/renew" { capabilities = ["update"] }\n';
const DENY_RENEW = 'path "sys/leases/renew" { capabilities = ["deny"] }\n';

describe('supervisor failure paths with dynamic secrets (real OpenBao + PostgreSQL)', () => {
  let pg: Postgres;
  let bao: OpenBao;
  const sensitive = new Sensitive();

  beforeAll(async () => {
    pg = await startPostgres();
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.api('POST', 'sys/mounts/database', { type: 'database' });
    await bao.api('POST', 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: ['*'],
    });
    const creation = [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    ];
    const role = (name: string, ttl: string, maxTtl: string, statements = creation) =>
      bao.api('POST', `database/roles/${name}`, {
        db_name: 'pg',
        creation_statements: statements,
        default_ttl: ttl,
        max_ttl: maxTtl,
      });
    await role('renewable', '4s', '1h');
    await role('long', '1h', '2h');
    // Each credential takes 3 s to create: a re-resolution that reads one is under way for that long.
    await role('slow', '3s', '3s', ['SELECT pg_sleep(3);', ...creation]);
    await bao.writePolicy('db-read-revoke', READ + REVOKE);
    await bao.writePolicy('db-read', READ);
    await bao.writePolicy('renew-switch', ALLOW_RENEW);
    await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
  });

  afterAll(async () => {
    await bao?.stop();
    await pg?.stop();
  });

  async function approle(role: string, settings: Record<string, unknown>) {
    await bao.api('POST', `auth/approle/role/${role}`, { token_ttl: '1h', ...settings });
    const rid = await bao.api<{ data: { role_id: string } }>('GET', `auth/approle/role/${role}/role-id`);
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      `auth/approle/role/${role}/secret-id`,
      {},
    );
    sensitive.add(`${role} role_id`, rid.data.role_id);
    sensitive.add(`${role} secret_id`, sid.data.secret_id);
    return { VAULT_ROLE_ID: rid.data.role_id, VAULT_SECRET_ID: sid.data.secret_id };
  }

  async function token(policies: string[]): Promise<Record<string, string>> {
    const t = await bao.createToken({ policies, ttl: '1h' });
    sensitive.add('token', t);
    return { VAULT_TOKEN: t };
  }

  /** Lease ids under database/creds/<role> that OpenBao still holds. */
  async function leaseIds(role: string): Promise<string[]> {
    try {
      const res = await bao.api<{ data: { keys: string[] } }>(
        'LIST',
        `sys/leases/lookup/database/creds/${role}`,
      );
      return res.data.keys.map((k) => `database/creds/${role}/${k}`);
    } catch (error) {
      if (error instanceof OpenBaoApiError && error.status === 404) return [];
      throw error;
    }
  }

  /**
   * Waits until OpenBao holds no lease under database/creds/<role>: the leases of a revoked token are revoked
   * by OpenBao in the background, a moment after the revocation answered.
   */
  async function noLeasesLeft(role: string): Promise<void> {
    for (let i = 0; ; i++) {
      const left = await leaseIds(role);
      if (left.length === 0) return;
      if (i >= 200) throw new Error(`leases still held after 10 s: ${left.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function revokePrefix(role: string): Promise<void> {
    await bao.api('PUT', `sys/leases/revoke-prefix/database/creds/${role}`);
  }

  function setup(role: string, auth: Record<string, string>) {
    const appLog = join(workDir('vaultrun-leases-'), 'app.log');
    const env = baseEnv({
      VAULT_ADDR: bao.addr,
      APP_LOG: appLog,
      APP_VARS: 'DB_USERNAME',
      DB_USERNAME: `vault:database/creds/${role}#username`,
      DB_PASSWORD: `vault:database/creds/${role}#password`,
      ...auth,
    });
    return { appLog, env };
  }

  async function stop(run: Resident): Promise<Awaited<Resident['result']>> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(sensitive.leaks(`${res.stdout}${res.stderr}`)).toEqual([]);
    return res;
  }

  it('a lease renewal refused by a policy change: a new credential is read at once, the app restarted once with it, the refused lease revoked', async () => {
    await revokePrefix('renewable');
    const auth = await approle('renew-refused', { token_policies: ['db-read-revoke', 'renew-switch'] });
    const { appLog, env } = setup('renewable', auth);
    const run = startResident(['--debounce', '100ms', '--log-level', 'debug', 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    await run.waitForLog((l) => l.msg === 'renewed a lease', 'a first lease renewal');
    const [lease1, ...more] = await leaseIds('renewable');
    expect(more).toEqual([]);
    // From now on, sys/leases/renew is denied (an explicit deny beats the default policy's grant).
    await bao.writePolicy('renew-switch', DENY_RENEW);
    try {
      const noticed = await run.waitForLog(
        (l) =>
          l.msg === 'change noticed' &&
          l.reason === 'the lease of database/creds/renewable could not be renewed',
        'the refused renewal',
      );
      expect(noticed.level).toBe('debug');
      const second = await waitForStart(appLog, 2);
      expect(second.vars?.DB_USERNAME).toBeDefined();
      expect(second.vars?.DB_USERNAME).not.toBe(first.vars?.DB_USERNAME);
      await run.waitForLog((l) => l.msg === 'revoked a lease', 'the refused lease revoked');
    } finally {
      await bao.writePolicy('renew-switch', ALLOW_RENEW);
    }
    expect(await leaseIds('renewable')).not.toContain(lease1);
    const restart = run.logs().find((l) => l.msg === 'secrets changed: restarting the command');
    expect(restart?.reason).toBe('the lease of database/creds/renewable could not be renewed');
    await stop(run);
    expect(await leaseIds('renewable')).toEqual([]);
  });

  it('a lease revocation refused at exit (VAULT_TOKEN, no sys/leases/revoke): warned with a hint; the exit status is the app’s; the lease stays', async () => {
    await revokePrefix('long');
    const { appLog, env } = setup('long', await token(['db-read']));
    const run = startResident(['node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    const [lease, ...more] = await leaseIds('long');
    expect(more).toEqual([]);
    await stop(run);
    const warning = run.logs().find((l) => l.msg === 'could not revoke a lease');
    expect(warning).toMatchObject({ level: 'warn', path: 'database/creds/long', code: 'PERMISSION_DENIED' });
    expect(warning?.hint).toMatch(/sys\/leases\/revoke/);
    // Nobody could revoke it: it is still there (then the test cleans it up).
    expect(await leaseIds('long')).toEqual([lease]);
    await revokePrefix('long');
  });

  it('a lease revocation refused at exit under vaultrun’s own token: only a debug line; revoking the token revokes the lease', async () => {
    await revokePrefix('long');
    const auth = await approle('no-lease-revoke', { token_policies: ['db-read'] });
    const { appLog, env } = setup('long', auth);
    const run = startResident(['--log-level', 'debug', 'node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    expect(await leaseIds('long')).toHaveLength(1);
    await stop(run);
    expect(
      run.logs().find((l) => l.msg === 'could not revoke a lease: it is revoked with the token'),
    ).toMatchObject({
      level: 'debug',
      code: 'PERMISSION_DENIED',
    });
    expect(run.count('could not revoke a lease')).toBe(1); // the debug line only, no warning
    expect(run.logs().find((l) => l.msg === 'revoked the token')).toBeDefined();
    await noLeasesLeft('long');
  });

  it('a token revocation refused at exit (no default policy: no auth/token/revoke-self): warned; the exit status is the app’s', async () => {
    await revokePrefix('long');
    const auth = await approle('no-self-revoke', {
      token_policies: ['db-read-revoke'],
      token_no_default_policy: true,
    });
    const { appLog, env } = setup('long', auth);
    const run = startResident(['node', ROTATION_APP], { env });
    await waitForStart(appLog, 1);
    await stop(run);
    // The lease goes with sys/leases/revoke; the token stays until its TTL.
    expect(run.logs().find((l) => l.msg === 'revoked a lease')).toBeDefined();
    expect(run.logs().find((l) => l.msg === 'could not revoke the token')).toMatchObject({
      level: 'warn',
      code: 'PERMISSION_DENIED',
    });
    expect(await leaseIds('long')).toEqual([]);
  });

  it('exit while a re-resolution is reading a new credential: it finishes, the app is not restarted, and both leases are revoked', async () => {
    await revokePrefix('slow');
    const auth = await approle('slow', { token_policies: ['db-read-revoke'] });
    const { appLog, env } = setup('slow', auth);
    const run = startResident(['--debounce', '100ms', '--log-level', 'debug', 'node', ROTATION_APP], { env });
    const first = await waitForStart(appLog, 1);
    // The 3 s lease cannot be extended (max TTL 3 s): a new credential is read before its end, which takes 3 s.
    await run.waitForLog(
      (l) => l.msg === 'change noticed' && /^the lease of database\/creds\/slow /.test(String(l.reason)),
      'the re-read of the lease',
    );
    // Wait until OpenBao holds the read (the audit log has the request, the credential is not made yet).
    const reads = async () =>
      (await bao.auditEntries()).filter((e) => e.type === 'request' && e.path === 'database/creds/slow')
        .length;
    for (let i = 0; (await reads()) < 2; i++) {
      if (i > 400) throw new Error('the re-read never reached OpenBao');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await leaseIds('slow')).toHaveLength(1);
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(starts(appLog)).toHaveLength(1);
    expect(running(first.pid as number)).toBe(false);
    expect(run.count('secrets changed')).toBe(0);
    // Both credentials (the first one and the one the interrupted re-resolution read) are revoked.
    expect(run.count('revoked a lease')).toBe(2);
    expect(await leaseIds('slow')).toEqual([]);
  });

  it('check with a dynamic secret: reports ok and revokes the lease it obtained (VAULT_TOKEN: the lease; AppRole: the token)', async () => {
    await revokePrefix('long');
    for (const auth of [
      await token(['db-read-revoke']),
      await approle('check', { token_policies: ['db-read'] }),
    ]) {
      const before = await bao.auditEntries();
      const res = await runVaultrun(['check'], {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          DB_USERNAME: 'vault:database/creds/long#username',
          ...auth,
        }),
      });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^DB_USERNAME\s+database\/creds\/long#username\s+ok\b/m);
      expect(sensitive.leaks(`${res.stdout}${res.stderr}`)).toEqual([]);
      const after = (await bao.auditEntries()).slice(before.length);
      expect(after.filter((e) => e.type === 'request' && e.path === 'database/creds/long')).toHaveLength(1);
      // The credential read by the check is gone: nothing of it stays valid.
      await noLeasesLeft('long');
    }
  });
});
