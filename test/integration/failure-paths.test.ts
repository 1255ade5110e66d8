// Paths a start or a resident vaultrun takes that the rest of the suite never drove end to end, each against a
// real OpenBao: deleted and destroyed KV versions, --concurrency 1 (reads one after another), VAULT_CAPATH and
// --tls-server-name on a TLS listener, and a server that accepts connections and never answers while vaultrun
// is resident.
import { copyFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { makePki, type Pki } from '../support/identity.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { Sensitive, tempDir, unique } from '../support/resolution.js';
import {
  eventsOf,
  ROTATION_APP,
  running,
  startResident,
  starts,
  WATCH_FAST,
  waitForStart,
} from '../support/rotation.js';

/**
 * A broken network path (a test's stand-in for a hung load balancer): a TCP relay to OpenBao that, once
 * `hang()` is called, accepts connections and never answers them (and holds the ones open), until `heal()`.
 */
async function hangingRelay(target: number) {
  const sockets = new Set<Socket>();
  let hanging = false;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (hanging) return; // accepted, read, never answered
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    addr: `http://127.0.0.1:${port}`,
    hang() {
      hanging = true;
      // Connections kept alive would go on working: drop them, the next ones hang.
      for (const s of sockets) s.destroy();
    },
    heal() {
      hanging = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('start and resident paths (real OpenBao)', () => {
  let bao: OpenBao;
  let pki: Pki;
  const sensitive = new Sensitive();

  beforeAll(async () => {
    pki = makePki(tempDir('vaultrun-pki-'));
    bao = await startOpenBao({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
    sensitive.add('root token', bao.rootToken);
    await bao.writePolicy(
      'paths-read',
      `
path "secret/data/paths/*" { capabilities = ["read"] }
path "secret/metadata/paths/*" { capabilities = ["read"] }
`,
    );
  });

  afterAll(async () => {
    await bao?.stop();
  });

  async function token(policies = ['paths-read'], extra: Record<string, unknown> = {}): Promise<string> {
    const res = await bao.api<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
      policies,
      ttl: '1h',
      ...extra,
    });
    return sensitive.add('token', res.auth.client_token);
  }

  async function put(path: string, label: string): Promise<string> {
    const value = sensitive.add(label, unique(label));
    await bao.kvPut(path, { password: value });
    return value;
  }

  it('a deleted or destroyed KV version (#KEY#VERSION), or a deleted latest version: exit 66, saying which and what to do', async () => {
    await put('paths/versions', 'v1');
    await put('paths/versions', 'v2');
    const v3 = await put('paths/versions', 'v3');
    await bao.api('POST', 'secret/delete/paths/versions', { versions: [1] });
    await bao.api('PUT', 'secret/destroy/paths/versions', { versions: [2] });
    const env = (ref: string, t: string) =>
      baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: t,
        DB_PASSWORD: `vault:secret/paths/versions#password${ref}`,
      });
    const t = await token();

    const deleted = await runVaultrun(['--', 'env'], { env: env('#1', t) });
    expect(deleted.exitCode, deleted.stderr).toBe(66);
    expect(deleted.stderr).toContain('the secret at secret/paths/versions version 1 is deleted');
    expect(deleted.stderr).toContain('vault kv undelete -versions=1');
    expect(deleted.stdout).toBe('');

    const destroyed = await runVaultrun(['--', 'env'], { env: env('#2', t) });
    expect(destroyed.exitCode, destroyed.stderr).toBe(66);
    expect(destroyed.stderr).toContain('the secret at secret/paths/versions version 2 is destroyed');
    // A destroyed version is gone for good: undeleting it is no advice.
    expect(destroyed.stderr).not.toMatch(/undelete/);
    expect(destroyed.stderr).toMatch(/another version/);

    const live = await runVaultrun(['--', 'env'], { env: env('#3', t) });
    expect(live.exitCode, live.stderr).toBe(0);
    expect(live.stdout).toContain(`DB_PASSWORD=${v3}\n`);

    // The latest version deleted: a reference without a version is refused too.
    await bao.api('DELETE', 'secret/data/paths/versions');
    const latest = await runVaultrun(['--', 'env'], { env: env('', t) });
    expect(latest.exitCode, latest.stderr).toBe(66);
    expect(latest.stderr).toContain('the secret at secret/paths/versions is deleted');
    for (const r of [deleted, destroyed, live, latest]) {
      expect(sensitive.leaks(`${r.stderr}`)).toEqual([]);
    }
  });

  it('--concurrency 1 with many paths: every one resolved, the reads one after another', async () => {
    const values = new Map<string, string>();
    for (let i = 0; i < 12; i++) values.set(`C${i}`, await put(`paths/conc/${i}`, `conc-${i}`));
    const refs = Object.fromEntries(
      [...values.keys()].map((name, i) => [name, `vault:secret/paths/conc/${i}#password`]),
    );
    const before = (await bao.auditEntries()).length;
    const res = await runVaultrun(['--concurrency', '1', '--', 'env'], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: await token(), ...refs }),
    });
    expect(res.exitCode, res.stderr).toBe(0);
    for (const [name, value] of values) expect(res.stdout).toContain(`${name}=${value}\n`);
    const reads = (await bao.auditEntries())
      .slice(before)
      .filter((e) => e.path.startsWith('secret/data/paths/conc/'));
    expect(reads).toHaveLength(24);
    // Serialized: each request's response comes before the next request.
    reads.forEach((entry, i) => {
      expect(entry.type).toBe(i % 2 === 0 ? 'request' : 'response');
      if (i % 2 === 1) expect(entry.path).toBe(reads[i - 1]?.path);
    });
    expect(new Set(reads.map((e) => e.path)).size).toBe(12);
  });

  it('VAULT_CAPATH: a directory of CA files is trusted (other files ignored); a directory without our CA is not', async () => {
    const value = await put('paths/tls', 'tls');
    const t = await token();
    const good = tempDir('vaultrun-capath-');
    copyFileSync(pki.caFile, join(good, 'ca.pem'));
    writeFileSync(join(good, 'README'), 'not a certificate\n');
    const other = tempDir('vaultrun-capath-other-');
    copyFileSync(join(pki.caFile, '../other-ca.pem'), join(other, 'other.pem'));
    const run = (capath: string) =>
      runVaultrun(['--', 'env'], {
        env: baseEnv({
          VAULT_ADDR: bao.tlsAddr as string,
          VAULT_TOKEN: t,
          VAULT_CAPATH: capath,
          DB_PASSWORD: 'vault:secret/paths/tls#password',
        }),
      });
    const ok = await run(good);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`DB_PASSWORD=${value}\n`);
    const refused = await run(other);
    expect(refused.exitCode).toBe(69);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/certificate|trust/i);
  });

  it('--tls-server-name: the certificate is checked against that name (and sent as SNI), not the address', async () => {
    const value = await put('paths/sni', 'sni');
    const t = await token();
    const run = (name: string) =>
      runVaultrun(['--tls-server-name', name, '--', 'env'], {
        env: baseEnv({
          VAULT_ADDR: bao.tlsAddr as string,
          VAULT_TOKEN: t,
          VAULT_CACERT: pki.caFile,
          DB_PASSWORD: 'vault:secret/paths/sni#password',
        }),
      });
    // The certificate names 127.0.0.1 and localhost.
    const ok = await run('localhost');
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`DB_PASSWORD=${value}\n`);
    const mismatch = await run('vault.example.com');
    expect(mismatch.exitCode).toBe(69);
    expect(mismatch.stdout).toBe('');
    expect(mismatch.stderr).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(mismatch.stderr).toMatch(/VAULT_TLS_SERVER_NAME/);
  });

  it('a server that accepts and never answers while vaultrun is resident: polls give up within --wait, the app keeps running; afterwards one restart per change', async () => {
    const path = 'paths/hang';
    await put(path, 'hang-v1');
    const relay = await hangingRelay(Number(new URL(bao.addr).port));
    try {
      const appLog = join(workDir('vaultrun-hang-'), 'app.log');
      const env = baseEnv({
        VAULT_ADDR: relay.addr,
        VAULT_TOKEN: await token(),
        APP_LOG: appLog,
        APP_VARS: 'DB_PASSWORD',
        DB_PASSWORD: `vault:secret/${path}#password`,
      });
      const run = startResident([...WATCH_FAST, '--wait', '2s', 'node', ROTATION_APP], { env });
      const first = await waitForStart(appLog, 1);
      await run.waitForLog((l) => l.msg === 'watching for changes', 'the watch set-up');
      relay.hang();
      const warning = await run.waitForLog(
        (l) => l.msg.startsWith('Vault unreachable: watched paths are checked again'),
        'the unreachable warning',
      );
      expect(warning.level).toBe('warn');
      expect(running(first.pid as number)).toBe(true);
      // A change made while the server hangs is seen once it answers again.
      const v2 = await put(path, 'hang-v2');
      relay.heal();
      await run.waitForLog(
        (l) => l.msg === 'Vault reachable again: watched paths were checked',
        'the recovery',
      );
      const second = await waitForStart(appLog, 2);
      expect(second.vars?.DB_PASSWORD).toBe(v2);
      expect(eventsOf(appLog, first.pid)).toEqual(['start', 'SIGTERM']);
      expect(run.count('secrets changed: restarting the command')).toBe(1);
      expect(starts(appLog)).toHaveLength(2);
      process.kill(run.pid, 'SIGTERM');
      const res = await run.result;
      expect(res.exitCode, res.stderr).toBe(0);
      expect(sensitive.leaks(`${res.stdout}${res.stderr}`)).toEqual([]);
    } finally {
      await relay.close();
    }
  });
});
