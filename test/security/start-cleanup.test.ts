// A start that fails after logging in leaves nothing behind (a crash loop must not pile up live tokens and
// database users): the token vaultrun created by logging in and every lease it obtained are revoked before it
// exits; a token it was given is never revoked; the secret files it wrote are removed. And a secret_id file
// marked for deletion survives a start that could not log in (Vault down), so that the start can be retried.
//
// Against a REAL OpenBao with the database secrets engine on a REAL PostgreSQL: after each failed run, OpenBao
// (root token) lists no token and no lease of that run, and PostgreSQL has no role left of it. Token revocation
// revokes its leases in the background: lease and role checks poll (bounded), they do not time anything.
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { freePort, type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { type Postgres, startPostgres } from '../support/postgres.js';
import { PROBE, tempDir } from '../support/resolution.js';
import { waitUntil } from '../support/rotation.js';

const APP_POLICY = `
path "database/creds/long" { capabilities = ["read"] }
path "secret/data/app/*" { capabilities = ["read"] }
`;
// A token given to vaultrun (VAULT_TOKEN) may revoke its leases itself; its own revocation is not ours to do.
const GIVEN_POLICY = `${APP_POLICY}
path "sys/leases/revoke" { capabilities = ["update"] }
`;

async function setup(bao: OpenBao, pg: Postgres): Promise<void> {
  await bao.api('POST', 'sys/mounts/database', { type: 'database' });
  await bao.api('POST', 'database/config/pg', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
    username: pg.user,
    password: pg.password,
    allowed_roles: ['long'],
  });
  await bao.api('POST', 'database/roles/long', {
    db_name: 'pg',
    creation_statements: [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
    ],
    default_ttl: '1h',
    max_ttl: '2h',
  });
  await bao.writePolicy('app', APP_POLICY);
  await bao.writePolicy('given', GIVEN_POLICY);
  await bao.api('POST', 'sys/auth/approle', { type: 'approle' });
  await bao.api('POST', 'auth/approle/role/app', { token_policies: ['app'], token_ttl: '1h' });
  await bao.kvPut('app/cfg', { password: 'kv-password', key: 'kv-key' });
  await bao.kvPut('other/cfg', { password: 'not-for-app' });
}

async function accessors(bao: OpenBao): Promise<Set<string>> {
  const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
  return new Set(res.data.keys);
}

async function leaseIds(bao: OpenBao): Promise<Set<string>> {
  try {
    const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'sys/leases/lookup/database/creds/long');
    return new Set(res.data.keys);
  } catch (error) {
    if (error instanceof OpenBaoApiError && error.status === 404) return new Set();
    throw error;
  }
}

async function pgRoles(pg: Postgres): Promise<Set<string>> {
  return new Set(await pg.query(`select rolname from pg_roles where rolname like 'v-%'`));
}

async function auditCount(bao: OpenBao, path: string): Promise<number> {
  return (await bao.auditEntries()).filter((e) => e.type === 'request' && e.path === path).length;
}

const added = <T>(after: Set<T>, before: Set<T>): T[] => [...after].filter((x) => !before.has(x));

describe('a failed start revokes what it obtained', () => {
  let bao: OpenBao;
  let pg: Postgres;

  beforeAll(async () => {
    pg = await startPostgres();
    bao = await startOpenBao();
    await setup(bao, pg);
  });

  afterAll(async () => {
    await bao?.stop();
    await pg?.stop();
  });

  async function appRole(): Promise<Record<string, string>> {
    const rid = await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle/role/app/role-id');
    const sid = await bao.api<{ data: { secret_id: string } }>('POST', 'auth/approle/role/app/secret-id', {});
    return { VAULT_ROLE_ID: rid.data.role_id, VAULT_SECRET_ID: sid.data.secret_id };
  }

  /** The environment of a start that obtains a database lease (and reads KV). */
  function env(creds: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> {
    return baseEnv({
      VAULT_ADDR: bao.addr,
      ...creds,
      DB_USERNAME: 'vault:database/creds/long#username',
      DB_PASSWORD: 'vault:database/creds/long#password',
      KV_PASSWORD: 'vault:secret/app/cfg#password',
      ...extra,
    });
  }

  /**
   * Runs vaultrun, expects `exit` and then: it logged in once and obtained a database lease, and afterwards no
   * token, lease or PostgreSQL role of that run is alive (the token only when vaultrun created it).
   */
  async function expectCleanFailure(
    run: () => Promise<RunResult>,
    exit: number,
    message: RegExp,
    opts: { login?: 'approle' | 'given' } = {},
  ): Promise<RunResult> {
    const login = opts.login ?? 'approle';
    const [tokens, leases, roles] = [await accessors(bao), await leaseIds(bao), await pgRoles(pg)];
    const logins = await auditCount(bao, 'auth/approle/login');
    const reads = await auditCount(bao, 'database/creds/long');
    const result = await run();
    expect(result.exitCode, result.stderr).toBe(exit);
    expect(result.stderr).toMatch(message);
    // The run did obtain what must now be gone: a login (AppRole) and a database lease.
    if (login === 'approle') expect(await auditCount(bao, 'auth/approle/login')).toBe(logins + 1);
    expect(await auditCount(bao, 'database/creds/long')).toBe(reads + 1);
    // No token of this run left (our login's token is revoked; a given token was there before).
    expect(added(await accessors(bao), tokens)).toEqual([]);
    // Its lease and PostgreSQL role are gone (revoking a token revokes its leases in the background).
    await waitUntil(
      async () => added(await leaseIds(bao), leases).length === 0,
      'the lease of the failed start is revoked',
      20_000,
    );
    await waitUntil(
      async () => added(await pgRoles(pg), roles).length === 0,
      'the PostgreSQL role of the failed start is dropped',
      20_000,
    );
    return result;
  }

  it('a missing key (66): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    await expectCleanFailure(
      () =>
        runVaultrun(['--', process.execPath, PROBE], {
          env: env(creds, { X: 'vault:secret/app/cfg#nokey' }),
        }),
      66,
      /key "nokey" not found/,
    );
  });

  it('a denied read (77): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    await expectCleanFailure(
      () =>
        runVaultrun(['--', process.execPath, PROBE], {
          env: env(creds, { X: 'vault:secret/other/cfg#password' }),
        }),
      77,
      /permission denied/,
    );
  });

  it('command not found (127): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    await expectCleanFailure(
      () => runVaultrun(['--', 'no-such-command-vaultrun'], { env: env(creds) }),
      127,
      /command not found/,
    );
  });

  it('command not executable (126): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    const file = join(tempDir(), 'not-executable');
    writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    await expectCleanFailure(
      () => runVaultrun(['--', file], { env: env(creds) }),
      126,
      /not an executable file/,
    );
  });

  it('exec failure (--no-watch, 126): the token, the lease and the secret files are gone', async () => {
    const creds = await appRole();
    const dir = tempDir();
    const runtime = join(dir, 'run');
    const file = join(dir, 'garbage');
    writeFileSync(file, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x00, 0x01, 0x02, 0x03]));
    chmodSync(file, 0o755);
    await expectCleanFailure(
      () =>
        runVaultrun(['--no-watch', '--', file], {
          env: env(creds, { TLS_KEY_FILE: 'vault:secret/app/cfg#key', VAULTRUN_RUNTIME_DIR: runtime }),
        }),
      126,
      /cannot execute/,
    );
    // The secret file it wrote for TLS_KEY_FILE is removed.
    expect(existsSync(runtime) ? readdirSync(runtime) : []).toEqual([]);
  });

  it('a secret file that cannot be written (74): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    const notADir = join(tempDir(), 'a-file');
    writeFileSync(notADir, 'x');
    await expectCleanFailure(
      () =>
        runVaultrun(['--', process.execPath, PROBE], {
          env: env(creds, {
            TLS_KEY_FILE: 'vault:secret/app/cfg#key',
            VAULTRUN_RUNTIME_DIR: join(notADir, 'sub'),
          }),
        }),
      74,
      /secret files|directory/,
    );
  });

  it('`resolve` that cannot write its output (74): the token and the database lease are revoked', async () => {
    const creds = await appRole();
    const output = join(tempDir(), 'missing-dir', 'out.env');
    await expectCleanFailure(
      () => runVaultrun(['resolve', '--output', output], { env: env(creds) }),
      74,
      /./,
    );
  });

  /**
   * A proxy to the real OpenBao that never answers the read of secret/app/cfg (and forwards everything else):
   * Vault "goes away" for one read after the login and the database read went through.
   */
  async function stallingProxy(): Promise<{ addr: string; close: () => void }> {
    const target = new URL(bao.addr);
    const held: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      if (req.url?.includes('/secret/data/app/cfg')) {
        held.push(res);
        return;
      }
      const upstream = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => {
        for (const res of held) res.destroy();
        server.close();
        server.closeAllConnections();
      },
    };
  }

  it('--wait runs out half-way (69): the token and the lease obtained before are revoked', async () => {
    const creds = await appRole();
    const proxy = await stallingProxy();
    try {
      await expectCleanFailure(
        () =>
          runVaultrun(['--wait', '2s', '--', process.execPath, PROBE], {
            env: { ...env(creds), VAULT_ADDR: proxy.addr, VAULT_CLIENT_TIMEOUT: '1s' },
          }),
        69,
        /gave up after/,
      );
    } finally {
      proxy.close();
    }
  });

  it('`check` when --wait runs out half-way (69): the token and the lease obtained before are revoked', async () => {
    const creds = await appRole();
    const proxy = await stallingProxy();
    try {
      await expectCleanFailure(
        () =>
          runVaultrun(['check', '--wait', '2s'], {
            env: { ...env(creds), VAULT_ADDR: proxy.addr, VAULT_CLIENT_TIMEOUT: '1s' },
          }),
        69,
        /gave up after/,
      );
    } finally {
      proxy.close();
    }
  });

  it('a token given in VAULT_TOKEN is not revoked; the lease it obtained is', async () => {
    const token = await bao.createToken({ policies: ['given'], ttl: '1h' });
    await expectCleanFailure(
      () =>
        runVaultrun(['--', 'no-such-command-vaultrun'], {
          env: env({ VAULT_TOKEN: token }),
        }),
      127,
      /command not found/,
      { login: 'given' },
    );
    const self = await bao.api<{ data: { ttl: number } }>('GET', 'auth/token/lookup-self', undefined, token);
    expect(self.data.ttl).toBeGreaterThan(0);
  });
});

describe('--delete-secret-id-file: deleted only after a successful login', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.kvPut('app/cfg', { password: 'kv-password' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('Vault unreachable (69): the file stays; the retry with Vault up logs in and deletes it', async () => {
    await bao.writePolicy('kv', 'path "secret/data/app/*" { capabilities = ["read"] }');
    const { roleId, secretId } = await bao.setupAppRole({ role: 'retry', policies: ['kv'] });
    const file = join(tempDir(), 'secret-id');
    writeFileSync(file, `${secretId}\n`, { mode: 0o600 });
    const envFor = (addr: string) =>
      baseEnv({
        VAULT_ADDR: addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID_FILE: file,
        KV_PASSWORD: 'vault:secret/app/cfg#password',
      });
    const down = `http://127.0.0.1:${await freePort()}`;
    const failed = await runVaultrun(
      ['--delete-secret-id-file', '--wait', '1s', '--', process.execPath, PROBE],
      {
        env: envFor(down),
      },
    );
    expect(failed.exitCode, failed.stderr).toBe(69);
    expect(existsSync(file)).toBe(true);

    const out = join(tempDir(), 'report.json');
    const ok = await runVaultrun(['--delete-secret-id-file', '--', process.execPath, PROBE], {
      env: { ...envFor(bao.addr), PROBE_OUT: out },
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(existsSync(file)).toBe(false);
  });
});
