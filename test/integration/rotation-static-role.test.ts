// Database static roles: OpenBao rotates the password of an existing PostgreSQL role on a schedule
// (rotation_period) and database/static-creds/ROLE has no lease, only `ttl` (seconds to the next rotation).
// A resident vaultrun reads the credentials again right when that time comes (plus a small margin), not at the
// next poll, and restarts the app once per rotation. A small app (test/fixtures/pg-app.mjs) answers HTTP
// requests with `select current_user`, connecting anew with the injected password each time. The gap between
// each rotation (OpenBao's last_vault_rotation) and the restarted app's first answer is measured and printed
// (not asserted: it depends on the machine).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { freePort, type OpenBao, startOpenBao } from '../support/openbao.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { workDir } from '../support/processes.js';
import { PG_APP, sleep, startResident, waitForStart, waitUntil } from '../support/rotation.js';

const ROTATION_S = 10;

interface StaticCreds {
  data: { username: string; password: string; ttl: number; last_vault_rotation: string };
}

describe('database static role (real PostgreSQL)', () => {
  let pg: Postgres;
  let bao: OpenBao;

  beforeAll(async () => {
    pg = await startPostgres();
    bao = await startOpenBao();
    await pg.query(`CREATE ROLE staticapp WITH LOGIN PASSWORD 'initial-password'`);
    await bao.api('POST', 'sys/mounts/database', { type: 'database' });
    await bao.api('POST', 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
      username: pg.user,
      password: pg.password,
      allowed_roles: ['app'],
    });
    await bao.api('POST', 'database/static-roles/app', {
      db_name: 'pg',
      username: 'staticapp',
      rotation_period: `${ROTATION_S}s`,
    });
    await bao.writePolicy('static', 'path "database/static-creds/*" { capabilities = ["read"] }');
    await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
    await bao.api('POST', 'auth/approle/role/static', { token_policies: ['static'], token_ttl: '1h' });
  });

  afterAll(async () => {
    await bao?.stop();
    await pg?.stop();
  });

  it('re-reads when the role rotates (no --watch, no poll), restarts exactly once per rotation; the app keeps working with each new password', async () => {
    const rid = await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle/role/static/role-id');
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      'auth/approle/role/static/secret-id',
      {},
    );
    const port = await freePort();
    const appLog = join(workDir('vaultrun-static-'), 'app.log');
    // A poll interval of an hour: only the rotation schedule can make vaultrun read again in time. A splay of
    // an hour would postpone any action that waits for it.
    const run = startResident(
      ['--poll-interval', '1h', '--splay', '1h', '--log-level', 'debug', 'node', PG_APP],
      {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_ROLE_ID: rid.data.role_id,
          VAULT_SECRET_ID: sid.data.secret_id,
          DB_USERNAME: 'vault:database/static-creds/app#username',
          DB_PASSWORD: 'vault:database/static-creds/app#password',
          DB_HOST: '127.0.0.1',
          DB_PORT: String(pg.port),
          APP_PORT: String(port),
          APP_LOG: appLog,
        }),
      },
    );
    const answers: Array<{ t: number; status: number; pid?: number }> = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
          const body = (await res.json()) as { pid?: number };
          answers.push({ t: Date.now(), status: res.status, ...(body.pid ? { pid: body.pid } : {}) });
        } catch {
          answers.push({ t: Date.now(), status: 0 });
        }
        await sleep(50);
      }
    })();
    const apps = [await waitForStart(appLog, 1)];
    const rotations: string[] = [];
    try {
      for (const n of [2, 3]) {
        apps.push(await waitForStart(appLog, n, 3 * ROTATION_S * 1000));
        const creds = await bao.api<StaticCreds>('GET', 'database/static-creds/app');
        rotations.push(creds.data.last_vault_rotation);
        const app = apps[n - 1];
        await waitUntil(
          () => answers.some((a) => a.pid === app?.pid && a.status === 200),
          `app ${n} to answer with the rotated password`,
        );
      }
    } finally {
      polling = false;
      await poller;
    }
    // Each app got the password of its time, and they differ.
    const passwords = apps.map((a) => a.password);
    expect(new Set(passwords).size).toBe(3);
    expect(apps.map((a) => a.user)).toEqual(['staticapp', 'staticapp', 'staticapp']);
    // Exactly one restart per rotation, each for the schedule (not a poll: the interval is an hour).
    const restarts = run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');
    expect(restarts.map((r) => r.reason)).toEqual([
      'database/static-creds/app rotates now',
      'database/static-creds/app rotates now',
    ]);
    for (const [i, rotated] of rotations.entries()) {
      const app = apps[i + 1];
      const firstNew = Math.min(
        ...answers.filter((a) => a.pid === app?.pid && a.status === 200).map((a) => a.t),
      );
      const failed = answers.filter((a) => a.t > Date.parse(rotated) && a.t < firstNew && a.status !== 200);
      console.log(
        `[static-role] rotation ${i + 1}: the restarted app answered ${firstNew - Date.parse(rotated)} ms after OpenBao rotated the password (${failed.length} failed or refused polls in between, polling every 50 ms)`,
      );
    }
    // The password the old app had no longer works; the current one does.
    const last = apps[2];
    await expect(pg.queryAs('staticapp', apps[0]?.password as string, 'select 1')).rejects.toThrow();
    expect(await pg.queryAs('staticapp', last?.password as string, 'select current_user')).toEqual([
      'staticapp',
    ]);
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    for (const p of passwords) expect(run.stderr()).not.toContain(p);
  });
});
