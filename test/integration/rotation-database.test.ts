// Rotation of dynamic database credentials: a REAL PostgreSQL (test/support/postgres.ts) and OpenBao's
// database secrets engine with short TTLs (4 s, at most 10 s). A small app (test/fixtures/pg-app.mjs) answers
// HTTP requests with `select current_user`, connecting with the injected DB_USERNAME / DB_PASSWORD each time.
// vaultrun stays resident by itself (a secret has a lease), renews the lease, reads fresh credentials before the
// old ones reach their max TTL, restarts the app, and revokes the old lease; on exit it revokes what it
// created. The gap between the old app's last answer and the new one's first is measured and printed (not
// asserted: it depends on the machine).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { freePort, type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { workDir } from '../support/processes.js';
import {
  appEvents,
  PG_APP,
  type Resident,
  ROTATION_APP,
  running,
  sleep,
  startResident,
  starts,
  waitForEvents,
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

const POLICY = `
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;

/** Mounts the database engine on `bao`, connected to `pg`, with roles `app` (4 s / 10 s) and `long` (1 h). */
async function setupDatabase(bao: OpenBao, pg: Postgres): Promise<void> {
  await bao.api('POST', 'sys/mounts/database', { type: 'database' });
  await bao.api('POST', 'database/config/pg', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
    username: pg.user,
    password: pg.password,
    allowed_roles: ['app', 'long'],
  });
  const creation = [
    `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    `GRANT pg_read_all_stats TO "{{name}}";`,
  ];
  await bao.api('POST', 'database/roles/app', {
    db_name: 'pg',
    creation_statements: creation,
    default_ttl: '4s',
    max_ttl: '10s',
  });
  await bao.api('POST', 'database/roles/long', {
    db_name: 'pg',
    creation_statements: creation,
    default_ttl: '1h',
    max_ttl: '2h',
  });
  await bao.writePolicy('db', POLICY);
  await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
  await bao.api('POST', 'auth/approle/role/db', { token_policies: ['db'], token_ttl: '1h' });
}

async function appRoleCreds(bao: OpenBao): Promise<Record<string, string>> {
  const rid = await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle/role/db/role-id');
  const sid = await bao.api<{ data: { secret_id: string } }>('POST', 'auth/approle/role/db/secret-id', {});
  return { VAULT_ROLE_ID: rid.data.role_id, VAULT_SECRET_ID: sid.data.secret_id };
}

/** Lease ids under database/creds/<role> (LIST with the root token). */
async function leaseIds(bao: OpenBao, role: string): Promise<string[]> {
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
 * A test that lost track of what it checks (an undefined id, a name of `undefined`) must fail, not pass: the
 * look-ups below would answer "invalid" for it, which is exactly what the "revoked" checks expect.
 */
function known(what: string, value: string | undefined): string {
  if (value === undefined || value === '' || value === 'undefined') throw new Error(`no ${what} to check`);
  return value;
}

async function leaseValid(bao: OpenBao, leaseId: string | undefined): Promise<boolean> {
  known('lease id', leaseId);
  try {
    await bao.api('PUT', 'sys/leases/lookup', { lease_id: leaseId });
    return true;
  } catch (error) {
    if (error instanceof OpenBaoApiError && error.status === 400) return false; // "invalid lease"
    throw error;
  }
}

async function accessors(bao: OpenBao): Promise<Set<string>> {
  const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
  return new Set(res.data.keys);
}

async function accessorValid(bao: OpenBao, accessor: string | undefined): Promise<boolean> {
  known('token accessor', accessor);
  try {
    await bao.api('POST', 'auth/token/lookup-accessor', { accessor });
    return true;
  } catch (error) {
    if (error instanceof OpenBaoApiError && error.status === 400) return false;
    throw error;
  }
}

async function roleExists(pg: Postgres, name: string | undefined): Promise<boolean> {
  known('role name', name);
  const rows = await pg.query(
    `select count(*) from pg_roles where rolname = '${known('role name', name).replace(/'/g, "''")}'`,
  );
  return rows[0] === '1';
}

interface Answer {
  t: number;
  status: number;
  user?: string;
  error?: string;
  pid?: number;
}

/** Asks the app every 50 ms until stopped; every answer (and refused connection, status 0) is recorded. */
function pollApp(port: number): { answers: Answer[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
        const body = (await res.json()) as { user?: string; error?: string; pid?: number };
        answers.push({ t: Date.now(), status: res.status, ...body });
      } catch {
        answers.push({ t: Date.now(), status: 0 });
      }
      await sleep(50);
    }
  })();
  return {
    answers,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

describe('rotation of dynamic PostgreSQL credentials', () => {
  let pg: Postgres;
  let bao: OpenBao;

  beforeAll(async () => {
    pg = await startPostgres();
    bao = await startOpenBao();
    await setupDatabase(bao, pg);
  });

  afterAll(async () => {
    await bao?.stop();
    await pg?.stop();
  });

  async function start(
    role: string,
    extraArgs: string[] = [],
    vaultAddr = bao.addr,
    creds?: Record<string, string>,
  ) {
    const port = await freePort();
    const appLog = join(workDir('vaultrun-rotdb-'), 'app.log');
    const run = startResident([...extraArgs, 'node', PG_APP], {
      env: baseEnv({
        VAULT_ADDR: vaultAddr,
        ...(creds ?? (await appRoleCreds(bao))),
        DB_USERNAME: `vault:database/creds/${role}#username`,
        DB_PASSWORD: `vault:database/creds/${role}#password`,
        DB_HOST: '127.0.0.1',
        DB_PORT: String(pg.port),
        APP_PORT: String(port),
        APP_LOG: appLog,
      }),
    });
    return { run, port, appLog };
  }

  function expectNoCredentialsIn(run: Resident, appLog: string): void {
    const starts = appEvents(appLog).filter((e) => e.event === 'start');
    expect(starts.length).toBeGreaterThan(0);
    for (const e of starts) {
      expect(run.stderr()).not.toContain(e.password);
      expect(run.stderr()).not.toContain(e.user);
    }
  }

  it('rotates the credentials before they expire, restarts the app (which keeps answering), revokes the old lease; revokes everything on exit', async () => {
    const tokensBefore = await accessors(bao);
    // No --watch: a secret with a lease makes vaultrun stay resident by itself. A splay of an hour would
    // postpone the restart past the lease's end: an action for a lease comes at the latest halfway to its end.
    const { run, port, appLog } = await start('app', [
      '--debounce',
      '100ms',
      '--splay',
      '1h',
      '--log-level',
      'debug',
    ]);
    const first = await waitForStart(appLog, 1);
    expect(first.ppid).toBe(run.pid);
    const user1 = first.user as string;
    const [lease1, ...others] = await leaseIds(bao, 'app');
    expect(others).toEqual([]);
    const lookup = await bao.api<{ data: { issue_time: string } }>('PUT', 'sys/leases/lookup', {
      lease_id: lease1,
    });
    const maxEnd = Date.parse(lookup.data.issue_time) + 10_000; // the role's max TTL: the credential's hard end
    const [accessor, ...moreTokens] = [...(await accessors(bao))].filter((a) => !tokensBefore.has(a));
    expect(moreTokens).toEqual([]);

    const client = pollApp(port);
    try {
      await waitUntil(
        () => client.answers.some((a) => a.status === 200 && a.user === user1),
        'the app to answer with the first credentials',
      );
      await waitUntil(
        () => client.answers.some((a) => a.status === 200 && a.user !== undefined && a.user !== user1),
        'the app to answer with new credentials',
      );
    } finally {
      await client.stop();
    }
    const second = await waitForStart(appLog, 2);
    const user2 = second.user as string;
    expect(user2).not.toBe(user1);

    // The lease was renewed (4 s TTL) until its max TTL capped it, then replaced before it ended.
    expect(run.count('renewed a lease')).toBeGreaterThanOrEqual(1);
    const restarts = run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');
    expect(restarts).toHaveLength(1);
    expect(restarts[0]?.variables).toBe('DB_PASSWORD,DB_USERNAME');
    expect(restarts[0]?.reason).toContain('lease of database/creds/app');
    expect(Date.parse(restarts[0]?.time as string)).toBeLessThan(maxEnd);

    // The old app answered with working credentials until it was stopped; the new one took over.
    const answers = client.answers;
    const old = answers.filter((a) => a.pid === first.pid);
    expect(old.length).toBeGreaterThan(0);
    expect(old.filter((a) => a.status !== 200 || a.user !== user1)).toEqual([]);
    const lastOld = Math.max(...old.map((a) => a.t));
    const firstNew = Math.min(...answers.filter((a) => a.status === 200 && a.user === user2).map((a) => a.t));
    const refused = answers.filter((a) => a.t > lastOld && a.t < firstNew).length;
    console.log(
      `[rotation-database] restart gap: ${firstNew - lastOld} ms between the old app's last answer and the new app's first (${refused} refused polls in between, polling every 50 ms)`,
    );
    expect(answers.filter((a) => a.status !== 200 && a.status !== 0)).toEqual([]); // never a database error

    // The replaced lease is revoked in OpenBao, and its role dropped in PostgreSQL.
    await waitUntil(async () => !(await leaseValid(bao, lease1)), 'the old lease to be revoked');
    await waitUntil(async () => !(await roleExists(pg, user1)), 'the old role to be dropped');
    expect(run.count('revoked a lease')).toBeGreaterThanOrEqual(1);
    const current = await leaseIds(bao, 'app');
    expect(current).toHaveLength(1);
    expect(await roleExists(pg, user2)).toBe(true);

    // Exit: the lease and the AppRole token vaultrun created are revoked; the role is gone from PostgreSQL.
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    await waitUntil(async () => !(await leaseValid(bao, current[0])), 'the last lease to be revoked');
    await waitUntil(async () => !(await roleExists(pg, user2)), 'the last role to be dropped');
    expect(await accessorValid(bao, accessor)).toBe(false);
    expect(running(second.pid)).toBe(false);
    expectNoCredentialsIn(run, appLog);
  });

  it('a token at its max TTL: vaultrun logs in again and reads the dynamic secret again under the new token (leases die with their token)', async () => {
    await bao.api('POST', 'auth/approle/role/short', {
      token_policies: ['db'],
      token_ttl: '3s',
      token_max_ttl: '6s',
    });
    const rid = await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle/role/short/role-id');
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      'auth/approle/role/short/secret-id',
      {},
    );
    const { run, appLog } = await start('long', ['--debounce', '100ms'], bao.addr, {
      VAULT_ROLE_ID: rid.data.role_id,
      VAULT_SECRET_ID: sid.data.secret_id,
    });
    const first = await waitForStart(appLog, 1);
    const [lease1] = await leaseIds(bao, 'long');
    const second = await waitForStart(appLog, 2);
    expect(second.user).not.toBe(first.user);
    await run.waitForLog((l) => l.msg === 'restarted the command', 'the restart line');
    const relogin = run.logs().find((l) => l.msg === 'logged in again');
    expect(relogin?.reason).toBe('the token reaches its max TTL');
    const restart = run.logs().find((l) => l.msg === 'secrets changed: restarting the command');
    expect(restart?.reason).toContain('the token was replaced');
    await waitUntil(async () => !(await leaseValid(bao, lease1)), 'the old lease to be revoked');
    await waitUntil(async () => !(await roleExists(pg, first.user)), 'the old role to be dropped');
    expect(await roleExists(pg, second.user)).toBe(true);
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expectNoCredentialsIn(run, appLog);
  });

  it('signal:SIGHUP with a dynamic secret in a file: the file gets the new password, the app a SIGHUP, the old lease goes after --stop-timeout', async () => {
    const appLog = join(workDir('vaultrun-rotdb-'), 'app.log');
    const runtime = join(workDir('vaultrun-rotdb-'), 'rt');
    const run = startResident(
      [
        ...['--on-change', 'signal:SIGHUP', '--stop-timeout', '1s', '--debounce', '100ms'],
        ...['--runtime-dir', runtime, 'node', ROTATION_APP],
      ],
      {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          ...(await appRoleCreds(bao)),
          DB_PASSWORD_FILE: 'vault:database/creds/app#password',
          APP_LOG: appLog,
          APP_FILE_VARS: 'DB_PASSWORD_FILE',
        }),
      },
    );
    const first = await waitForStart(appLog, 1);
    const file = first.files?.DB_PASSWORD_FILE;
    const [lease1] = await leaseIds(bao, 'app');
    const events = await waitForEvents(appLog, (es) => es.some((e) => e.event === 'SIGHUP'), 'a SIGHUP');
    const hup = events.find((e) => e.event === 'SIGHUP')?.files?.DB_PASSWORD_FILE;
    expect(hup?.path).toBe(file?.path);
    expect(hup?.content).not.toBe(file?.content);
    expect(hup?.ino).not.toBe(file?.ino);
    expect(hup?.mode).toBe(0o400);
    expect(starts(appLog)).toHaveLength(1); // no restart
    await waitUntil(async () => !(await leaseValid(bao, lease1)), 'the old lease to be revoked');
    // By vaultrun, not by expiry: its log line follows the revocation Vault already shows (read it, not race it).
    await waitUntil(async () => run.count('revoked a lease') > 0, "vaultrun's 'revoked a lease'");
    expect(run.count('revoked a lease')).toBe(1);
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    for (const content of [file?.content, hup?.content]) expect(run.stderr()).not.toContain(content);
  });

  it('--no-revoke leaves the lease, its database role and the token valid on exit', async () => {
    const tokensBefore = await accessors(bao);
    const { run, appLog } = await start('long', ['--no-revoke']);
    const first = await waitForStart(appLog, 1);
    const [lease] = await leaseIds(bao, 'long');
    const [accessor] = [...(await accessors(bao))].filter((a) => !tokensBefore.has(a));
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(await leaseValid(bao, lease)).toBe(true);
    expect(await roleExists(pg, first.user)).toBe(true);
    expect(await accessorValid(bao, accessor)).toBe(true);
    expect(await pg.queryAs(first.user as string, first.password as string, 'select current_user')).toEqual([
      first.user,
    ]);
    expectNoCredentialsIn(run, appLog);
    await bao.api('PUT', 'sys/leases/revoke', { lease_id: lease });
  });

  it('Vault unreachable: the app keeps running, vaultrun warns when the lease expires; at expiry --on-lease-expiry=keep keeps the app, =stop stops it (exit 69)', async () => {
    const own = await startOpenBao();
    try {
      await setupDatabase(own, pg);
      const args = ['--wait', '2s', '--log-level', 'debug'];
      const keep = await start(
        'app',
        [...args, '--on-lease-expiry', 'keep'],
        own.addr,
        await appRoleCreds(own),
      );
      const stop = await start(
        'app',
        [...args, '--on-lease-expiry', 'stop'],
        own.addr,
        await appRoleCreds(own),
      );
      const keepApp = await waitForStart(keep.appLog, 1);
      const stopApp = await waitForStart(stop.appLog, 1);
      await own.stop();

      for (const { run } of [keep, stop]) {
        const warning = await run.waitForLog(
          (l) => l.msg === 'Vault unreachable: could not renew a lease; retrying',
          'the renewal warning',
        );
        expect(warning.path).toBe('database/creds/app');
        expect(typeof warning.expires_in_s).toBe('number');
        await run.waitForLog(
          (l) => l.msg.startsWith('a lease expired while Vault was unreachable'),
          'the expiry error',
        );
      }
      // stop: the app is stopped and vaultrun exits with 69 (unreachable).
      const stopped = await stop.run.result;
      expect(stopped.exitCode, stopped.stderr).toBe(69);
      expect(
        appEvents(stop.appLog)
          .filter((e) => e.pid === stopApp.pid)
          .map((e) => e.event),
      ).toEqual(['start', 'SIGTERM']);
      // keep: the app still runs, untouched.
      expect(running(keepApp.pid)).toBe(true);
      expect(appEvents(keep.appLog).map((e) => e.event)).toEqual(['start']);
      expect(keep.run.count('Vault unreachable on exit') + keep.run.count('stopping the command')).toBe(0);
      process.kill(keep.run.pid, 'SIGTERM');
      const kept = await keep.run.result;
      expect(kept.exitCode, kept.stderr).toBe(0);
      for (const { run, appLog } of [keep, stop]) expectNoCredentialsIn(run, appLog);
    } finally {
      await own.stop();
    }
  });
});
