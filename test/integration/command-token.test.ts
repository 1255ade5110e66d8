// NAME=vault:login: the command gets a Vault token of its own — a child of vaultrun's token with the TTL and
// policies chosen — for an app that talks to Vault itself. Real OpenBao; the app asks Vault about its token
// (lookup-self) and reads a secret with it; the test then checks from outside that it is revoked.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { workDir, writeFile } from '../support/processes.js';
import { unique } from '../support/resolution.js';
import { startResident, waitUntil } from '../support/rotation.js';

/** The app: looks its token up, reads a secret with it, writes what it found; `wait`: then waits for SIGTERM. */
const APP = `
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
const name = process.env.TOKEN_VAR;
const token = name.endsWith('_FILE') ? readFileSync(process.env[name], 'utf8') : process.env[name];
const addr = process.env.APP_VAULT_ADDR;
const get = (path) => fetch(addr + '/v1/' + path, { headers: { 'X-Vault-Token': token } });
const self = await get('auth/token/lookup-self');
const read = await get('secret/data/tok/app');
writeFileSync(process.env.APP_OUT + '.tmp', JSON.stringify({
  pid: process.pid,
  token,
  lookupStatus: self.status,
  self: self.ok ? (await self.json()).data : null,
  readStatus: read.status,
  value: read.ok ? (await read.json()).data.data.value : null,
  env: Object.keys(process.env).sort(),
}));
renameSync(process.env.APP_OUT + '.tmp', process.env.APP_OUT); // whole, for the test to read
if (process.argv[2] === 'wait') {
  process.on('SIGTERM', () => process.exit(0));
  setInterval(() => {}, 1000);
}
`;

interface AppOut {
  pid: number;
  token: string;
  lookupStatus: number;
  self: {
    accessor: string;
    policies: string[];
    creation_ttl: number;
    ttl: number;
    path: string;
    display_name: string;
  } | null;
  readStatus: number;
  value: string | null;
  env: string[];
}

describe('NAME=vault:login: a token for the command', () => {
  let bao: OpenBao;
  let dir: string;
  let app: string;
  const value = unique('tok-value');

  beforeAll(async () => {
    bao = await startOpenBao();
    dir = workDir('vaultrun-tok-');
    app = writeFile(join(dir, 'app.mjs'), APP, 0o644);
    await bao.kvPut('tok/app', { value });
    await bao.writePolicy('app-read', 'path "secret/data/tok/*" { capabilities = ["read"] }');
    await bao.writePolicy('make-child', 'path "auth/token/create" { capabilities = ["update"] }');
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** Accessors of every token (root's view): what a leak would leave behind. */
  async function accessors(): Promise<string[]> {
    const res = await bao.api<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
    return res.data.keys.sort();
  }

  /** Looks a token up by accessor (root); undefined when it no longer exists. */
  async function byAccessor(accessor: string): Promise<{ policies: string[] } | undefined> {
    try {
      const res = await bao.api<{ data: { policies: string[] } }>('POST', 'auth/token/lookup-accessor', {
        accessor,
      });
      return res.data;
    } catch (error) {
      if (error instanceof OpenBaoApiError && error.status === 400) return undefined;
      throw error;
    }
  }

  async function approleEnv(role: string, policies: string[]): Promise<Record<string, string>> {
    const { roleId, secretId } = await bao.setupAppRole({ role, policies, tokenTtl: '20m' });
    return { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId };
  }

  function env(extra: Record<string, string>): { out: string; env: Record<string, string> } {
    const out = join(workDir('vaultrun-tok-run-'), 'out.json');
    return {
      out,
      env: baseEnv({ VAULT_ADDR: bao.addr, APP_VAULT_ADDR: bao.addr, APP_OUT: out, ...extra }),
    };
  }

  const readOut = (out: string) => JSON.parse(readFileSync(out, 'utf8')) as AppOut;

  it('resident (the default with vault:login): a child token with the TTL and policies chosen, revoked on exit', async () => {
    const login = await approleEnv('tok-res', ['app-read', 'make-child']);
    const before = await accessors();
    const { out, env: e } = env({
      ...login,
      APP_VAULT_TOKEN: 'vault:login',
      TOKEN_VAR: 'APP_VAULT_TOKEN',
      VAULTRUN_CHILD_TOKEN_TTL: '10m',
      VAULTRUN_CHILD_TOKEN_POLICIES: 'app-read',
    });
    const run = startResident(['node', app, 'wait'], { env: e });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const got = readOut(out);
    expect(got.lookupStatus).toBe(200);
    expect(got.self?.policies.sort()).toEqual(['app-read', 'default']);
    expect(got.self?.creation_ttl).toBe(600);
    expect(got.self?.path).toBe('auth/token/create'); // not vaultrun's own (auth/approle/login)
    expect(got.self?.display_name).toBe('token-vaultrun-command');
    expect(got.readStatus).toBe(200);
    expect(got.value).toBe(value);
    // Our credentials never reach the app; the app's token is in its variable only.
    expect(got.env).not.toContain('VAULT_ROLE_ID');
    expect(got.env).not.toContain('VAULT_SECRET_ID');
    expect(got.env).not.toContain('VAULT_TOKEN');
    // vaultrun's token is another one (another accessor), alive while it runs.
    const during = await accessors();
    const created = during.filter((a) => !before.includes(a));
    expect(created).toHaveLength(2); // vaultrun's login and the command's token
    const accessor = got.self?.accessor as string;
    expect(created).toContain(accessor);
    const ours = created.find((a) => a !== accessor) as string;
    expect((await byAccessor(ours))?.policies).toContain('make-child');
    expect(run.stderr()).not.toContain(got.token);

    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(await byAccessor(accessor)).toBeUndefined();
    expect(await byAccessor(ours)).toBeUndefined();
    expect(await accessors()).toEqual(before);
  });

  it('resident: the command token is renewed before its TTL ends', async () => {
    const login = await approleEnv('tok-renew', ['app-read', 'make-child']);
    const { out, env: e } = env({
      ...login,
      APP_VAULT_TOKEN: 'vault:login',
      TOKEN_VAR: 'APP_VAULT_TOKEN',
      VAULTRUN_CHILD_TOKEN_TTL: '3s',
    });
    const run = startResident(['--log-level', 'debug', 'node', app, 'wait'], { env: e });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const got = readOut(out);
    // Default policies: vaultrun's (no root among them).
    expect(got.self?.policies.sort()).toEqual(['app-read', 'default', 'make-child']);
    await run.waitForLog((l) => l.msg === "renewed the command's token", 'a renewal');
    await run.waitForLog(
      (l) => l.msg === "renewed the command's token" && run.count("renewed the command's token") >= 3,
      'three renewals (over twice the TTL)',
    );
    const self = await bao.api<{ data: { ttl: number } }>(
      'GET',
      'auth/token/lookup-self',
      undefined,
      got.token,
    );
    expect(self.data.ttl).toBeGreaterThan(0);
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
    expect(await byAccessor(got.self?.accessor as string)).toBeUndefined();
  });

  it("resident: when vaultrun's token reaches its max TTL, the command gets a new token under the new login (restart), the old one is revoked", async () => {
    await bao.setupAppRole({ role: 'tok-max', policies: ['app-read', 'make-child'] });
    await bao.api('POST', 'auth/approle/role/tok-max', { token_ttl: '4s', token_max_ttl: '8s' });
    const rid = await bao.api<{ data: { role_id: string } }>('GET', 'auth/approle/role/tok-max/role-id');
    const sid = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      'auth/approle/role/tok-max/secret-id',
      {},
    );
    const { out, env: e } = env({
      VAULT_ROLE_ID: rid.data.role_id,
      VAULT_SECRET_ID: sid.data.secret_id,
      APP_VAULT_TOKEN: 'vault:login',
      TOKEN_VAR: 'APP_VAULT_TOKEN',
    });
    const run = startResident(['--debounce', '100ms', 'node', app, 'wait'], { env: e });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const first = readOut(out);
    await waitUntil(
      () => existsSync(out) && readOut(out).pid !== first.pid,
      'the app restarted with a new token',
      30_000,
    );
    const second = readOut(out);
    expect(second.token).not.toBe(first.token);
    expect(second.lookupStatus).toBe(200);
    expect(second.readStatus).toBe(200);
    expect(await byAccessor(first.self?.accessor as string)).toBeUndefined();
    expect(run.logs().some((l) => l.msg === 'logged in again')).toBe(true);
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
    expect(await byAccessor(second.self?.accessor as string)).toBeUndefined();
  });

  it("VAULT_TOKEN=vault:login (vault-env's form), with a given token: root is never handed on; revoked on exit", async () => {
    const tokenFile = writeFile(join(dir, 'root-token'), bao.rootToken, 0o600);
    const before = await accessors();
    const { out, env: e } = env({
      VAULT_TOKEN_FILE: tokenFile,
      VAULT_TOKEN: 'vault:login',
      TOKEN_VAR: 'VAULT_TOKEN',
    });
    const run = startResident(['node', app, 'wait'], { env: e });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const got = readOut(out);
    expect(got.token).not.toBe(bao.rootToken);
    expect(got.self?.policies).toEqual(['default']);
    expect(got.readStatus).toBe(403); // default only: not our root token's power
    await run.waitForLog((l) => l.msg.includes('root policy'), 'the warning about root');
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
    expect(await accessors()).toEqual(before); // the child revoked; the given root token left alone
  });

  it('NAME_FILE=vault:login writes the token to a 0400 file', async () => {
    const login = await approleEnv('tok-file', ['app-read', 'make-child']);
    const { out, env: e } = env({
      ...login,
      APP_VAULT_TOKEN_FILE: 'vault:login',
      TOKEN_VAR: 'APP_VAULT_TOKEN_FILE',
      VAULTRUN_RUNTIME_DIR: workDir('vaultrun-tok-rt-'),
    });
    const run = startResident(['node', app, 'wait'], { env: e });
    await waitUntil(() => existsSync(out), 'the app wrote what it found');
    const got = readOut(out);
    expect(got.lookupStatus).toBe(200);
    expect(got.readStatus).toBe(200);
    process.kill(run.pid, 'SIGTERM');
    expect((await run.result).exitCode).toBe(0);
  });

  it("exec mode (--no-watch): the command's token outlives vaultrun, which keeps its own token (the child's parent)", async () => {
    const login = await approleEnv('tok-exec', ['app-read', 'make-child']);
    const before = await accessors();
    const { out, env: e } = env({
      ...login,
      APP_VAULT_TOKEN: 'vault:login',
      TOKEN_VAR: 'APP_VAULT_TOKEN',
      VAULTRUN_CHILD_TOKEN_TTL: '5m',
    });
    const res = await runVaultrun(['--no-watch', 'node', app], { env: e });
    expect(res.exitCode, res.stderr).toBe(0);
    const got = readOut(out);
    expect(got.pid).toBe(res.pid); // exec: the app replaced vaultrun
    expect(got.self?.creation_ttl).toBe(300);
    expect(got.readStatus).toBe(200);
    // Still valid after the app exited: nothing could revoke it (documented), and neither was its parent.
    const self = await bao.api<{ data: { ttl: number } }>(
      'GET',
      'auth/token/lookup-self',
      undefined,
      got.token,
    );
    expect(self.data.ttl).toBeGreaterThan(0);
    expect((await accessors()).filter((a) => !before.includes(a))).toHaveLength(2);
  });

  it('a failed start revokes the token it created for the command', async () => {
    const login = await approleEnv('tok-fail', ['app-read', 'make-child']);
    const tokenFile = writeFile(join(dir, 'root-token-2'), bao.rootToken, 0o600);
    for (const credentials of [login, { VAULT_TOKEN_FILE: tokenFile }]) {
      const before = await accessors();
      const { env: e } = env({
        ...credentials,
        APP_VAULT_TOKEN: 'vault:login',
        MISSING: 'vault:secret/tok/app#nope',
        TOKEN_VAR: 'APP_VAULT_TOKEN',
      });
      const res = await runVaultrun(['node', app], { env: e });
      expect(res.exitCode, res.stderr).toBe(66);
      expect(await accessors()).toEqual(before);
    }
  });

  it('without auth/token/create, the start fails (77) saying which policy it needs; `check` says so without creating one', async () => {
    const login = await approleEnv('tok-denied', ['app-read']);
    const before = await accessors();
    const { env: e } = env({ ...login, APP_VAULT_TOKEN: 'vault:login', TOKEN_VAR: 'APP_VAULT_TOKEN' });
    const res = await runVaultrun(['node', app], { env: e });
    expect(res.exitCode, res.stderr).toBe(77);
    expect(res.stderr).toContain('auth/token/create');
    expect(await accessors()).toEqual(before);

    const secondLogin = await approleEnv('tok-denied', ['app-read']);
    const check = await runVaultrun(['check'], { env: { ...e, ...secondLogin } });
    expect(check.exitCode, check.stderr).toBe(77);
    expect(check.stdout).toMatch(/APP_VAULT_TOKEN\s+vault:login\s+denied/);

    const allowed = await approleEnv('tok-check', ['app-read', 'make-child']);
    const ok = await runVaultrun(['check'], {
      env: { ...e, ...allowed, REF: 'vault:secret/tok/app#value' },
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/APP_VAULT_TOKEN\s+vault:login\s+ok/);
    expect(await accessors()).toEqual(before);
  });
});
