// Issue-on-start (write) references against OpenBao's real PKI engine: certificate, private key and CA chain from
// ONE issuance written to 0400 files (NAME_FILE), the key checked against the certificate with node:crypto;
// `check` never writes; in resident mode a short-lived certificate is issued again before it expires, with
// exactly one restart per re-issue; a role with generate_lease=true gives a lease that is revoked on exit.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, OpenBaoApiError, startOpenBao } from '../support/openbao.js';
import { workDir } from '../support/processes.js';
import { auditRequests, probeEnv, runProbe, Sensitive, tempDir } from '../support/resolution.js';
import {
  ROTATION_APP,
  running,
  startResident,
  starts,
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

const POLICY = `
path "pki/issue/*" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;

describe('issue-on-start references (PKI)', () => {
  let bao: OpenBao;
  let token: string;
  let rootPem: string;
  const secrets = new Sensitive();
  const body = (ttl: string) => JSON.stringify({ common_name: 'api.internal', ttl });
  const tlsEnv = (role: string, ttl: string) => ({
    TLS_CERT_FILE: `>>vault:pki/issue/${role}#certificate#${body(ttl)}`,
    TLS_KEY_FILE: `>>vault:pki/issue/${role}#private_key#${body(ttl)}`,
    TLS_CHAIN_FILE: `>>vault:pki/issue/${role}#ca_chain#${body(ttl)}`,
  });

  /** The leases of the role with generate_lease=true, by id. */
  const leasedLeases = async () => {
    try {
      return (await bao.api<{ data: { keys: string[] } }>('LIST', 'sys/leases/lookup/pki/issue/leased')).data
        .keys;
    } catch (error) {
      if (error instanceof OpenBaoApiError && error.status === 404) return []; // none (yet)
      throw error;
    }
  };
  const leaseOf = (id: string) =>
    bao.api<{ data: { renewable: boolean; issue_time: string; expire_time: string } }>(
      'PUT',
      'sys/leases/lookup',
      { lease_id: `pki/issue/leased/${id}` },
    );

  /** A resident run's environment: a certificate of the role with generate_lease=true, in a file. */
  const leasedEnv = (appLog: string, ttl: string) =>
    baseEnv({
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      ...tlsEnv('leased', ttl),
      APP_LOG: appLog,
      APP_FILE_VARS: 'TLS_CERT_FILE',
    });

  beforeAll(async () => {
    bao = await startOpenBao();
    secrets.add('root token', bao.rootToken);
    await bao.api('POST', 'sys/mounts/pki', { type: 'pki', config: { max_lease_ttl: '87600h' } });
    const root = await bao.api<{ data: { certificate: string } }>('POST', 'pki/root/generate/internal', {
      common_name: 'vaultrun test root',
      ttl: '87600h',
    });
    rootPem = root.data.certificate;
    await bao.api('POST', 'pki/roles/web', {
      allowed_domains: 'internal',
      allow_subdomains: true,
      max_ttl: '2h',
    });
    await bao.api('POST', 'pki/roles/leased', {
      allowed_domains: 'internal',
      allow_subdomains: true,
      max_ttl: '2h',
      generate_lease: true,
    });
    await bao.writePolicy('pki-web', POLICY);
    token = await bao.createToken({ policies: ['pki-web'] });
    secrets.add('token', token);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('exec: certificate, key and CA chain of ONE issuance in 0400 files; the key matches the certificate', async () => {
    const before = (await auditRequests(bao, 'pki/issue/web')).length;
    const runtime = join(tempDir(), 'rt');
    const run = await runProbe(
      secrets,
      { VAULT_ADDR: bao.addr, VAULT_TOKEN: token, ...tlsEnv('web', '1h') },
      {
        args: ['--no-watch', '--runtime-dir', runtime],
      },
    );
    const env = probeEnv(run);
    expect((await auditRequests(bao, 'pki/issue/web')).slice(before)).toHaveLength(1);
    const [certFile, keyFile, chainFile] = [
      env.TLS_CERT_FILE,
      env.TLS_KEY_FILE,
      env.TLS_CHAIN_FILE,
    ] as string[];
    for (const file of [certFile, keyFile, chainFile]) {
      expect(file?.startsWith(runtime)).toBe(true);
      expect(statSync(file as string).mode & 0o777).toBe(0o400);
    }
    const cert = new X509Certificate(readFileSync(certFile as string));
    const key = readFileSync(keyFile as string, 'utf8');
    secrets.add('private key', key);
    expect(cert.subject).toContain('CN=api.internal');
    expect(cert.checkPrivateKey(createPrivateKey(key))).toBe(true);
    const chain = readFileSync(chainFile as string, 'utf8');
    expect(chain.trim()).toBe(rootPem.trim());
    expect(cert.verify(new X509Certificate(rootPem).publicKey)).toBe(true);
    expect(run.output).not.toContain('PRIVATE KEY');
  });

  it('check: says what would be written, writes nothing (exit 0); a write to a KV mount is refused', async () => {
    await bao.kvPut('app', { x: '1' });
    const before = (await auditRequests(bao, /^(pki|secret)\/issue\//)).length;
    const ok = await runVaultrun(['check'], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: token, ...tlsEnv('web', '1h') }),
    });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /TLS_CERT_FILE\s+>>pki\/issue\/web#certificate#\{"common_name":"api.internal","ttl":"1h"\}\s+not written/,
    );
    expect(ok.stderr).toContain(
      'a start would POST {"common_name":"api.internal","ttl":"1h"} to pki/issue/web',
    );
    expect(await auditRequests(bao, /^(pki|secret)\/issue\//)).toHaveLength(before);
    const kv = await runVaultrun(['resolve'], {
      env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, X: '>>vault:secret/issue/app#x' }),
    });
    expect(kv.exitCode).toBe(64);
    expect(kv.stderr).toMatch(
      /secret\/issue\/app is not writable by a reference: writes go only to issue\/ROLE of a PKI mount \(secret\/ is a kv engine\)/,
    );
    expect(await auditRequests(bao, /^(pki|secret)\/issue\//)).toHaveLength(before);
  });

  it('a refused write fails the start, naming the path, the body and what to check: no such role or a name the role refuses (76), no update capability (77)', async () => {
    // One token that may read the roles but not issue (it sees the mount), one with no capability in the mount
    // (OpenBao then refuses even the mount look-up).
    await bao.writePolicy('pki-roles', 'path "pki/roles/*" { capabilities = ["read"] }');
    const readOnly = await bao.createToken({ policies: ['pki-roles'] });
    const outsider = await bao.createToken({ policies: ['default'] });
    secrets.add('read-only token', readOnly);
    secrets.add('outsider token', outsider);
    const cases = [
      {
        what: 'no such role',
        token,
        env: { TLS: `>>vault:pki/issue/nobody#certificate#${body('1h')}` },
        code: 76,
        message: /pki\/issue\/nobody refused the write \{"common_name":"api\.internal","ttl":"1h"\}: .*role/,
        hint: 'check the role (vault read PKI_MOUNT/roles/ROLE) and the fields of the body',
      },
      {
        what: 'a common name the role does not allow',
        token,
        env: { TLS: `>>vault:pki/issue/web#certificate#{"common_name":"db.example.com"}` },
        code: 76,
        message: /pki\/issue\/web refused the write \{"common_name":"db\.example\.com"\}: .*not allowed/,
        hint: 'check the role (vault read PKI_MOUNT/roles/ROLE) and the fields of the body',
      },
      {
        what: 'a token without update on the path',
        token: readOnly,
        env: { TLS: `>>vault:pki/issue/web#certificate#${body('1h')}` },
        code: 77,
        message: /^TLS: permission denied writing pki\/issue\/web$/,
        hint: 'the token\'s policies must allow it: path "pki/issue/web" { capabilities = ["update"] }',
      },
      {
        what: 'a token with no capability in the mount',
        token: outsider,
        env: { TLS: `>>vault:pki/issue/web#certificate#${body('1h')}` },
        code: 77,
        message: /^TLS: permission denied while looking up the mount of pki\/issue\/web$/,
        hint: 'the token\'s policies must allow it: path "pki/issue/web" { capabilities = ["update"] }',
      },
    ];
    for (const c of cases) {
      const res = await runVaultrun(['resolve'], {
        env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: c.token, VAULTRUN_LOG_FORMAT: 'json', ...c.env }),
      });
      expect(res.exitCode, `${c.what}: ${res.stderr}`).toBe(c.code);
      expect(res.stdout, c.what).toBe('');
      const errors = res.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string; hint?: string; exit?: number })
        .filter((l) => l.level === 'error');
      expect(errors, `${c.what}: ${res.stderr}`).toHaveLength(1);
      expect(errors[0]?.msg, c.what).toMatch(c.message);
      expect(errors[0]?.hint, c.what).toBe(c.hint);
      expect(errors[0]?.exit, c.what).toBe(c.code);
      expect(secrets.leaks(res.stderr), c.what).toEqual([]);
    }
  });

  it('resident: a 12 s certificate is issued again at 2/3 of its life, before it expires; exactly one restart per re-issue', async () => {
    const appLog = join(workDir('vaultrun-pki-'), 'app.log');
    const runtime = join(workDir('vaultrun-pki-'), 'rt');
    const run = startResident(
      [
        '--debounce',
        '100ms',
        '--splay',
        '1h',
        '--runtime-dir',
        runtime,
        '--log-level',
        'debug',
        'node',
        ROTATION_APP,
      ],
      {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: token,
          ...tlsEnv('web', '12s'),
          APP_LOG: appLog,
          APP_FILE_VARS: 'TLS_CERT_FILE,TLS_KEY_FILE',
        }),
      },
    );
    const apps = [
      await waitForStart(appLog, 1),
      await waitForStart(appLog, 2),
      await waitForStart(appLog, 3),
    ];
    const certs = apps.map((a) => new X509Certificate(a.files?.TLS_CERT_FILE?.content as string));
    for (const [i, app] of apps.entries()) {
      const key = app.files?.TLS_KEY_FILE?.content as string;
      secrets.add(`key ${i}`, key);
      expect(certs[i]?.checkPrivateKey(createPrivateKey(key))).toBe(true);
      expect(app.files?.TLS_KEY_FILE?.mode).toBe(0o400);
    }
    expect(new Set(certs.map((c) => c.serialNumber)).size).toBe(3);
    // Each new app started while the certificate before it was still valid.
    for (const i of [1, 2]) {
      expect(apps[i]?.t as number).toBeLessThan(Date.parse(certs[i - 1]?.validTo as string));
    }
    const restarts = run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');
    expect(restarts.length).toBeGreaterThanOrEqual(2);
    for (const r of restarts) {
      expect(r.reason).toBe('the certificate from pki/issue/web is due for renewal');
      expect(r.variables).toBe('TLS_CERT_FILE,TLS_KEY_FILE'); // the CA chain stays the same
    }
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    // One restart per issuance: as many starts as restarts + 1 (counted after exit: nothing is under way).
    expect(starts(appLog)).toHaveLength(restarts.length + 1);
    const issued = run.logs().filter((l) => l.msg === 'read again when it rotates');
    expect(issued.length).toBeGreaterThanOrEqual(3);
    expect(secrets.leaks(run.stderr())).toEqual([]);
  });

  // A PKI lease is never renewable: vaultrun replaces the certificate at --lease-refresh of the lease's life
  // (issue 12: a non-renewable lease and --lease-refresh, end to end). The schedule is read from vaultrun's
  // debug line (the numbers come from the lease and the flag, not from a clock); the replacement itself is
  // checked against the two leases OpenBao reports: the new one was issued while the old one was still valid,
  // and the old one is revoked once the command has switched.
  it('--lease-refresh: a non-renewable lease is replaced at that fraction of its life, before it ends', async () => {
    const appLog = join(workDir('vaultrun-pki-'), 'app.log');
    const before = new Set(await leasedLeases());
    const run = startResident(
      ['--lease-refresh', '0.2', '--debounce', '100ms', '--log-level', 'debug', 'node', ROTATION_APP],
      { env: leasedEnv(appLog, '30s') },
    );
    try {
      const first = await waitForStart(appLog, 1);
      const [firstId, ...others] = (await leasedLeases()).filter((id) => !before.has(id));
      expect(firstId).toBeDefined();
      expect(others).toEqual([]);
      const firstLease = (await leaseOf(firstId as string)).data;
      expect(firstLease.renewable).toBe(false);
      const scheduled = run
        .logs()
        .filter(
          (l) => l.msg === 'a lease that cannot be extended is replaced at --lease-refresh of its life',
        );
      // (The new certificate's lease is scheduled in turn once it replaces this one.)
      expect(scheduled.length).toBeGreaterThanOrEqual(1);
      const plan = scheduled[0] as unknown as {
        path: string;
        lease_refresh: number;
        life_s: number;
        replace_in_s: number;
      };
      expect(plan).toMatchObject({ path: 'pki/issue/leased', lease_refresh: 0.2 });
      // The life is what OpenBao granted: PKI counts it to the certificate's notAfter, 29 or 30 s for 30 s.
      expect(plan.life_s).toBeLessThanOrEqual(30);
      expect(plan.life_s).toBeGreaterThan(20);
      expect(plan.replace_in_s).toBe(Math.round(0.2 * plan.life_s));

      const second = await waitForStart(appLog, 2);
      const restart = await run.waitForLog(
        (l) => l.msg === 'secrets changed: restarting the command',
        'the restart for the new certificate',
      );
      expect(String(restart.reason)).toMatch(
        /^the lease of pki\/issue\/leased cannot be extended and ends in \d+ s$/,
      );
      const certs = [first, second].map(
        (a) => new X509Certificate(a.files?.TLS_CERT_FILE?.content as string),
      );
      expect(certs[1]?.serialNumber).not.toBe(certs[0]?.serialNumber);
      // The new certificate's lease was issued while the old one was valid, and the old lease is revoked once
      // the command switched (not before).
      const secondId = (await leasedLeases()).find((id) => !before.has(id) && id !== firstId);
      expect(secondId).toBeDefined();
      const secondLease = (await leaseOf(secondId as string)).data;
      expect(Date.parse(secondLease.issue_time)).toBeLessThan(Date.parse(firstLease.expire_time));
      await waitUntil(
        async () => !(await leasedLeases()).includes(firstId as string),
        'the old lease to be revoked',
      );
    } finally {
      // Also when an assertion failed: a vaultrun left running would go on issuing certificates.
      if (running(run.pid)) process.kill(run.pid, 'SIGTERM');
    }
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(secrets.leaks(run.stderr())).toEqual([]);
  });

  it('generate_lease=true: the certificate has a lease (resident by itself), revoked on exit', async () => {
    const appLog = join(workDir('vaultrun-pki-'), 'app.log');
    const before = new Set(await leasedLeases());
    const run = startResident(['node', ROTATION_APP], { env: leasedEnv(appLog, '1h') });
    const app = await waitForStart(appLog, 1);
    const cert = new X509Certificate(app.files?.TLS_CERT_FILE?.content as string);
    const ours = (await leasedLeases()).filter((id) => !before.has(id));
    expect(ours).toHaveLength(1);
    const leaseId = `pki/issue/leased/${ours[0]}`;
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(run.count('revoked a lease')).toBe(1);
    await expect(bao.api('PUT', 'sys/leases/lookup', { lease_id: leaseId })).rejects.toBeInstanceOf(
      OpenBaoApiError,
    );
    const serial = cert.serialNumber.match(/../g)?.join(':').toLowerCase();
    await waitUntil(async () => {
      const revoked = await bao.api<{ data: { keys: string[] } }>('LIST', 'pki/certs/revoked');
      return revoked.data.keys.includes(serial as string);
    }, 'the certificate to be revoked in the PKI engine');
  });
});
