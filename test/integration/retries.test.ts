// Transient states are retried, not failed at once, against a real OpenBao: a sealed server (HTTP 503) until it
// is unsealed, and a rate-limit quota (HTTP 429, with and without Retry-After). Nothing is timed: the tests
// wait for log lines and for vaultrun's exit, and the timeouts only turn a hang into a failure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectFailure,
  probeEnv,
  runProbe,
  Sensitive,
  spawnProbe,
  unique,
} from '../support/resolution.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the condition holds; the timeout (generous) names what was awaited, it measures nothing. */
async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** vaultrun's stderr at VAULTRUN_LOG_FORMAT=json, one object a line. */
function jsonLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LogLine);
}

describe('retries: a sealed Vault (HTTP 503)', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));

  const env = () => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    DB_PASSWORD: 'vault:secret/app/db#password',
  });

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    sensitive.add('unseal key', await bao.unsealKey());
    await bao.kvPut('app/db', { password });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('sealed for good: retries until --wait runs out, then 69 "unavailable (HTTP 503)"', async () => {
    await bao.seal();
    try {
      expect(await bao.api('GET', 'sys/seal-status')).toMatchObject({ sealed: true });
      const run = await runProbe(sensitive, env(), { args: ['--wait', '2s'] });
      expectFailure(
        run,
        69,
        /retrying Vault request .*HTTP 503 \(Vault is sealed\)/,
        /unavailable .*HTTP 503 \(Vault is sealed\); gave up after 2\.\d s/,
        /Vault is sealed: unseal it \(vault operator unseal\)/, // the hint
      );
    } finally {
      await bao.unseal();
    }
  });

  it('sealed, then unsealed while vaultrun retries: it goes on and succeeds', async () => {
    const reads = (await auditRequests(bao, 'secret/data/app/db')).length;
    await bao.seal();
    const probe = spawnProbe(sensitive, env(), { args: ['--wait', '60s'], timeoutMs: 90_000 });
    try {
      await waitUntil(() => {
        if (probe.child.exitCode !== null) {
          throw new Error(`vaultrun exited (${probe.child.exitCode}) while sealed:\n${probe.stderr()}`);
        }
        return /retrying Vault request .*HTTP 503/.test(probe.stderr());
      }, 'vaultrun to retry on HTTP 503');
      // It waits (the 60 s of --wait are far from over) rather than failing, and has resolved nothing. (Not
      // checked in the audit log: a sealed server writes no audit entry, whatever it is asked.)
      expect(probe.child.exitCode).toBeNull();
      expect(probe.stderr()).not.toMatch(/resolved \d+ reference/);
    } finally {
      await bao.unseal();
    }
    const run = await probe.result;
    expect(probeEnv(run).DB_PASSWORD).toBe(password);
    expect(run.stderr).toMatch(/retrying Vault request .*HTTP 503 \(Vault is sealed\)/);
    expect(run.stderr).not.toMatch(/unavailable/);
    // the secret was read once, after the unseal
    expect(await auditRequests(bao, 'secret/data/app/db')).toHaveLength(reads + 1);
  }, 120_000);
});

describe('retries: a rate-limit quota (HTTP 429)', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const values: Record<string, string> = {};
  const paths = ['app/one', 'app/two', 'app/three', 'app/four'];

  // One variable per path, so that each is a request of its own against the quota.
  const env = (vars: Record<string, string> = {}) => ({
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    ...Object.fromEntries(paths.map((path, i) => [`SECRET_${i}`, `vault:secret/${path}#value`])),
    ...vars,
  });

  const expectAllValues = (e: Record<string, string>) => {
    for (const [i, path] of paths.entries()) expect(e[`SECRET_${i}`]).toBe(values[path]);
  };

  /** A tight quota on the KV mount: one request per 3 s for a client (vaultrun's reads share 127.0.0.1). */
  async function withQuota<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await bao.api('POST', `sys/quotas/rate-limit/${name}`, { path: 'secret/', rate: 1, interval: '3s' });
    try {
      return await fn();
    } finally {
      await bao.api('DELETE', `sys/quotas/rate-limit/${name}`);
    }
  }

  /** How many reads of each path the audit log holds. */
  const readCounts = async () =>
    Promise.all(paths.map(async (path) => (await auditRequests(bao, `secret/data/${path}`)).length));

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    for (const path of paths) {
      values[path] = sensitive.add(`secret at ${path}`, unique(path.replace('/', '-')));
      await bao.kvPut(path, { value: values[path] });
    }
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('the quota is real: OpenBao answers 429 with Retry-After once it is used up', async () => {
    // The sanity check of the setup the next tests rely on (raw requests, not vaultrun).
    await bao.api('POST', 'sys/quotas/config', { enable_rate_limit_response_headers: true });
    await withQuota('sanity', async () => {
      const read = () =>
        fetch(`${bao.addr}/v1/secret/data/${paths[0]}`, {
          headers: { 'X-Vault-Token': bao.rootToken },
          signal: AbortSignal.timeout(15_000),
        });
      const first = await read();
      const second = await read();
      expect(first.status).toBe(200);
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await second.text()).toMatch(/rate limit quota exceeded/);
    });
  });

  it('with Retry-After: retries each read on 429, waiting at least what Retry-After says, and succeeds', async () => {
    await bao.api('POST', 'sys/quotas/config', { enable_rate_limit_response_headers: true });
    const before = await readCounts();
    const run = await withQuota('tight-with-headers', () =>
      runProbe(sensitive, env({ VAULTRUN_LOG_FORMAT: 'json' }), {
        args: ['--wait', '90s'],
        timeoutMs: 120_000,
      }),
    );
    expectAllValues(probeEnv(run));
    const retries = jsonLines(run.stderr).filter(
      (l) =>
        l.msg === 'retrying Vault request' && /^HTTP 429 .*rate limit quota exceeded/.test(String(l.reason)),
    );
    // One request at a time gets through: the other reads were each retried on 429.
    const retried = new Set(retries.map((l) => String(l.what)));
    expect(retried.size).toBeGreaterThanOrEqual(paths.length - 1);
    for (const what of retried) expect(what).toMatch(/^reading secret\/app\/(one|two|three|four)/);
    // The first retry of a request waits less than 200 ms by backoff alone (attempt 0); the reads that met the
    // quota right after one got through were told to wait about 2 s (Retry-After counts whole seconds left of
    // the 3 s interval), so their first retry waited that long at least.
    const firstDelays = [...retried].map((what) => Number(retries.find((l) => l.what === what)?.delay_ms));
    expect(Math.max(...firstDelays), `first delays: ${firstDelays.join(', ')} ms`).toBeGreaterThanOrEqual(
      1000,
    );
    // Each path was read once more: a request the quota rejects is not audited (it never got in).
    expect(await readCounts()).toEqual(before.map((n) => n + 1));
  }, 150_000);

  it("without Retry-After (OpenBao's default): retries on 429 with backoff alone, and succeeds", async () => {
    await bao.api('POST', 'sys/quotas/config', { enable_rate_limit_response_headers: false });
    const run = await withQuota('tight-without-headers', () =>
      runProbe(sensitive, env(), { args: ['--wait', '90s'], timeoutMs: 120_000 }),
    );
    expectAllValues(probeEnv(run));
    const retries = run.stderr.split('\n').filter((l) => /retrying Vault request .*HTTP 429/.test(l));
    expect(retries.length).toBeGreaterThanOrEqual(paths.length - 1);
  }, 150_000);
});
