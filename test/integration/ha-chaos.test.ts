// vaultrun against a real three-node OpenBao cluster (test/support/cluster.ts) while it fails: the leader
// killed in the middle of a burst of starts, the leader of a resident vaultrun dying, a hostile proxy in front
// of a node answering with redirects, and the whole cluster down for longer than the token's TTL. One cluster
// for the whole file; every test leaves three running, unsealed nodes behind. Nothing is timed: waits poll for
// log lines, app events and exits, and their timeouts only turn a hang into a failure.

import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { type Cluster, type ClusterNode, call, startCluster } from '../support/cluster.js';
import { type Balancer, describeRequests, startBalancer, startRelay } from '../support/proxy.js';
import {
  type LogLine,
  type Resident,
  ROTATION_APP,
  running,
  sleep,
  startResident,
  starts,
  WATCH_FAST,
  waitForStart,
  waitUntil,
} from '../support/rotation.js';

let cluster: Cluster;
let roleId: string;
let secretId: string;
let n = 0;
const unique = (label: string) => `${label}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

/** The AppRole role `short`: tokens of TOKEN_TTL_S seconds (renewable for 10 minutes). */
const TOKEN_TTL_S = 4;
let shortRoleId: string;
let shortSecretId: string;

async function approle(name: string, extra: Record<string, unknown>): Promise<[string, string]> {
  const leader = await cluster.leader();
  await cluster.api(leader, 'POST', `auth/approle/role/${name}`, { token_policies: ['read-all'], ...extra });
  const role = (await cluster.api(leader, 'GET', `auth/approle/role/${name}/role-id`)).data.role_id;
  const secret = (await cluster.api(leader, 'POST', `auth/approle/role/${name}/secret-id`, {})).data
    .secret_id;
  // Every node knows the role and the secret_id before a test logs in through it.
  for (const node of cluster.nodes) {
    let last = '';
    const accepts = async () => {
      const res = await call(node.addr, 'POST', 'auth/approle/login', {
        body: { role_id: role, secret_id: secret },
      });
      last = `HTTP ${res.status} ${JSON.stringify(res.body?.errors ?? [])}`;
      return res.status === 200;
    };
    const what = `node ${node.index} accepts a login with the AppRole ${name}`;
    try {
      await waitUntil(accepts, what, 20_000);
    } catch {
      // Seen once in CI, right after the previous test's election: a standby that did not pass logins on to the
      // new active node for 40 s. That is the cluster's state, not vaultrun's: the node is started again.
      console.log(`${what}: not after 20 s (last answer ${last}); starting node ${node.index} again`);
      await cluster.stop(node);
      await cluster.start(node);
      await waitUntil(accepts, what).catch((error) => {
        throw new Error(`${String(error)} (last answer ${last})\n${cluster.logTail(node, 3000)}`);
      });
    }
  }
  return [role, secret];
}

beforeAll(async () => {
  cluster = await startCluster({ audit: true });
  const leader = await cluster.leader();
  await cluster.api(leader, 'PUT', 'sys/policies/acl/read-all', {
    policy: 'path "+/data/*" { capabilities = ["read"] }\npath "+/metadata/*" { capabilities = ["read"] }',
  });
  await cluster.api(leader, 'POST', 'sys/auth/approle', { type: 'approle' });
  [roleId, secretId] = await approle('app', {});
  [shortRoleId, shortSecretId] = await approle('short', {
    token_ttl: `${TOKEN_TTL_S}s`,
    token_max_ttl: '10m',
  });
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

/** Brings every stopped node back (unsealed) and waits for a leader. */
async function restoreCluster(): Promise<void> {
  await Promise.all(cluster.nodes.filter((node) => !node.running()).map((node) => cluster.start(node)));
  await cluster.leader();
}

/**
 * The command of a start: it checks the secret it was given against $EXPECTED itself, prints "ok" when it
 * matches and exits 99 (printing "wrong") when not — a start can never pass with a wrong or missing secret.
 */
const CHECK = [
  '--',
  '/bin/sh',
  '-c',
  'if [ "$DB_PASSWORD" = "$EXPECTED" ]; then echo ok; else echo wrong; exit 99; fi',
];

function startEnv(addr: string, path: string, expected: string, extra: Record<string, string> = {}) {
  return baseEnv({
    VAULT_ADDR: addr,
    VAULT_ROLE_ID: roleId,
    VAULT_SECRET_ID: secretId,
    DB_PASSWORD: `vault:secret/${path}#password`,
    EXPECTED: expected,
    ...extra,
  });
}

/** Every start either ran the command with the right secret, or failed with 69 without running it. */
function expectOkOr69(run: RunResult, what: string): 'ok' | 69 {
  if (run.exitCode === 0) {
    expect(run.stdout, `${what}: ${run.stderr}`).toBe('ok\n');
    return 'ok';
  }
  expect(run.exitCode, `${what}: ${run.stderr}`).toBe(69);
  expect(run.stdout, what).toBe('');
  expect(run.stderr, what).toMatch(/unavailable/);
  return 69;
}

describe('HA chaos: the leader is killed in the middle of a burst of starts', () => {
  it('20 starts (behind a load balancer, or at each node): each runs with the right secret or exits 69; none hangs', async () => {
    const path = unique('burst');
    const value = unique('pw');
    await cluster.kvPut(path, { password: value });
    await cluster.waitForVersion(path, 1);
    const leader = await cluster.leader();
    const balancer = await startBalancer(cluster.nodes.map((node) => node.addr));
    const runs: Array<{ target: string; afterKill: boolean; result: Promise<RunResult> }> = [];
    const launch = (i: number, afterKill: boolean) => {
      // Even: through the balancer; odd: at a node directly (the leader among them).
      const node = cluster.nodes[i % 3] as ClusterNode;
      const target = i % 2 === 0 ? 'balancer' : `node${node.index}${node === leader ? ' (leader)' : ''}`;
      const addr = i % 2 === 0 ? balancer.addr : node.addr;
      runs.push({
        target,
        afterKill,
        result: runVaultrun(['--wait', '20s', ...CHECK], {
          env: startEnv(addr, path, value),
          // Generous: only turns a hang into a failure (--wait is 20 s).
          timeoutMs: 120_000,
        }),
      });
    };
    try {
      for (let i = 0; i < 10; i++) launch(i, false);
      await cluster.kill(leader);
      for (let i = 10; i < 20; i++) launch(i, true);
      const outcomes = await Promise.all(
        runs.map(async (r, i) => ({
          ...r,
          outcome: expectOkOr69(await r.result, `start ${i} via ${r.target}`),
        })),
      );
      const summary = outcomes.map((o) => `${o.target}${o.afterKill ? '*' : ''}: ${o.outcome}`);
      console.log(`starts while the leader was killed (* = launched after the kill):\n${summary.join('\n')}`);
      // Starts at the killed node launched after the kill cannot reach anything: 69, after --wait.
      for (const o of outcomes.filter((o) => o.afterKill && o.target.endsWith('(leader)'))) {
        expect(o.outcome).toBe(69);
      }
      // Not vacuous: starts did run through the election.
      expect(outcomes.filter((o) => o.outcome === 'ok').length).toBeGreaterThan(0);
    } finally {
      await balancer.close();
      await restoreCluster();
    }
  }, 240_000);
});

/** A resident vaultrun logging in with the AppRole `role`, the app printing DB_PASSWORD. */
function resident(addr: string, path: string, role: [string, string], extra: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-chaos-'));
  const e = baseEnv({
    VAULT_ADDR: addr,
    VAULT_ROLE_ID: role[0],
    VAULT_SECRET_ID: role[1],
    DB_PASSWORD: `vault:secret/${path}#password`,
    APP_LOG: join(dir, 'app.log'),
    APP_VARS: 'DB_PASSWORD',
  });
  const run = startResident([...WATCH_FAST, '--wait', '30s', ...extra, 'node', ROTATION_APP], { env: e });
  return { run, appLog: e.APP_LOG as string };
}

const restarts = (run: Resident) =>
  run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');

/** Polls of watched paths (KV v2 metadata reads) that went through the balancer so far. */
const polls = (balancer: Balancer) => balancer.log.filter((r) => r.path.includes('/metadata/')).length;

/**
 * Waits for 4 more polls through the balancer from now on. When they do not come (seen once, under the load of
 * `npm run coverage`), the message says what the balancer and vaultrun were doing.
 */
async function pollsGoOn(balancer: Balancer, run: Resident): Promise<void> {
  const before = polls(balancer);
  await waitUntil(() => polls(balancer) >= before + 4, '4 more polls after the restart').catch((error) => {
    throw new Error(
      `${String(error)}\n--- balancer ---\n${describeRequests(balancer.log, 20)}\n--- vaultrun ---\n${run.stderr().slice(-3000)}`,
    );
  });
}

async function stopResident(run: Resident): Promise<void> {
  process.kill(run.pid, 'SIGTERM');
  const res = await run.result;
  expect(res.exitCode, res.stderr).toBe(0);
}

describe('HA chaos: the leader of a resident vaultrun dies', () => {
  it('the app keeps running, the token is renewed through the new leader, a later change restarts it once', async () => {
    // Tokens of 30 s: renewed at 20 s, long after the election (a shorter TTL would expire during it, and be
    // replaced by a new login — the whole-cluster test below covers that).
    const medium = await approle('medium', { token_ttl: '30s', token_max_ttl: '10m' });
    const path = unique('resident');
    const v1 = unique('v1');
    const v2 = unique('v2');
    await cluster.kvPut(path, { password: v1 });
    await cluster.waitForVersion(path, 1);
    const balancer = await startBalancer(cluster.nodes.map((node) => node.addr));
    const { run, appLog } = resident(balancer.addr, path, medium);
    try {
      const first = await waitForStart(appLog, 1);
      expect(first.vars?.DB_PASSWORD).toBe(v1);
      const old = await cluster.leader();
      await cluster.kill(old);
      const killedAt = new Date().toISOString();
      const leader = await cluster.leader();
      expect(leader).not.toBe(old);
      // The renewal after the election: logged by vaultrun, and audited by the new active node (a standby
      // forwards it there).
      await run.waitForLog((l) => l.msg === 'renewed the token', 'a token renewal', 90_000);
      await waitUntil(
        () =>
          cluster.auditEntries(leader).some((e) => e.path === 'auth/token/renew-self' && e.time > killedAt),
        'the renewal in the new leader’s audit log',
      );
      expect(run.count('logged in again')).toBe(0);
      expect(run.child.exitCode).toBeNull();
      expect(running(first.pid)).toBe(true);
      expect(starts(appLog)).toHaveLength(1);

      await cluster.kvPut(path, { password: v2 });
      expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(v2);
      await pollsGoOn(balancer, run);
      expect(starts(appLog).map((s) => s.vars?.DB_PASSWORD)).toEqual([v1, v2]);
      expect(restarts(run)).toHaveLength(1);
      await stopResident(run);
    } finally {
      await balancer.close();
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await restoreCluster();
    }
  }, 240_000);
});

/** A listener that plays the attacker: counts connections and keeps what it was sent. */
async function attacker(): Promise<{
  addr: string;
  connections: () => number;
  received: () => string;
  close(): Promise<void>;
}> {
  let connections = 0;
  let received = '';
  const server = net.createServer((socket) => {
    connections++;
    socket.on('data', (d) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}');
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    addr: `http://127.0.0.1:${port}`,
    connections: () => connections,
    received: () => received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * A hostile proxy in front of a node: passes requests on, except that `rewrite` may answer one itself (a 307
 * to the attacker) or change the node's answer body.
 */
async function hostileProxy(
  target: string,
  rewrite: {
    answer?: (path: string) => { status: number; headers: Record<string, string> } | undefined;
    body?: (path: string, body: string) => string;
  },
): Promise<{ addr: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const own = rewrite.answer?.(path);
    if (own) {
      req.resume();
      res.writeHead(own.status, own.headers);
      res.end();
      return;
    }
    const upstream = http.request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const body = rewrite.body ? rewrite.body(path, text) : text;
          const headers = { ...answer.headers };
          delete headers['content-length'];
          delete headers['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1' }, () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    addr: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('HA chaos: a redirect never takes the token outside the cluster', () => {
  it('a proxy answering reads with 307 to another origin: not followed, retried within --wait, exit 69', async () => {
    const path = unique('redirect');
    await cluster.kvPut(path, { password: unique('pw') });
    await cluster.waitForVersion(path, 1);
    const [standby] = await cluster.standbys();
    if (!standby) throw new Error('no standby');
    const evil = await attacker();
    // What a standby that cannot forward answers (307, Location: the "active node"), but pointing elsewhere.
    const proxy = await hostileProxy(standby.addr, {
      answer: (p) =>
        p.startsWith('/v1/secret/data/')
          ? { status: 307, headers: { location: `${evil.addr}${p}`, 'content-length': '0' } }
          : undefined,
    });
    try {
      const run = await runVaultrun(['--wait', '3s', ...CHECK], {
        env: startEnv(proxy.addr, path, 'never-used'),
      });
      expect(run.exitCode, run.stderr).toBe(69);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/HTTP 307 \(a standby that could not forward.*redirects are not followed\)/);
      // It logged in through the proxy (so it had a token to lose), and the attacker saw nothing at all.
      expect(run.stderr).toMatch(/reading secret\//);
      expect(evil.connections()).toBe(0);
      expect(evil.received()).toBe('');
    } finally {
      await proxy.close();
      await evil.close();
    }
  });

  it('--consistency leader: a leader_address outside --cluster-addr gets no request (and no token)', async () => {
    const path = unique('leader-addr');
    const value = unique('pw');
    await cluster.kvPut(path, { password: value });
    await cluster.waitForVersion(path, 1);
    const [standby] = await cluster.standbys();
    if (!standby) throw new Error('no standby');
    const evil = await attacker();
    const proxy = await hostileProxy(standby.addr, {
      body: (p, text) =>
        p === '/v1/sys/leader'
          ? JSON.stringify({
              ...JSON.parse(text),
              leader_address: evil.addr,
              leader_cluster_address: evil.addr,
            })
          : text,
    });
    try {
      for (const clusterAddrs of [cluster.nodes.map((node) => node.addr).join(','), '']) {
        const run = await runVaultrun(['--wait', '20s', '--consistency', 'leader', ...CHECK], {
          env: startEnv(
            proxy.addr,
            path,
            value,
            clusterAddrs ? { VAULTRUN_CLUSTER_ADDRS: clusterAddrs } : {},
          ),
        });
        // Kept to VAULT_ADDR (the proxy, passing on to a standby), with the index rule: the right secret.
        expect(run.exitCode, run.stderr).toBe(0);
        expect(run.stdout).toBe('ok\n');
        expect(run.stderr).toMatch(/not following the leader address/);
      }
      expect(evil.connections()).toBe(0);
      expect(evil.received()).toBe('');
    } finally {
      await proxy.close();
      await evil.close();
    }
  });
});

describe('HA chaos: the whole cluster down for longer than the token TTL, then back', () => {
  it('the app keeps running; vaultrun logs in again, checks the watched path, restarts only if it changed', async () => {
    const path = unique('outage');
    const v1 = unique('v1');
    const v2 = unique('v2');
    await cluster.kvPut(path, { password: v1 });
    await cluster.waitForVersion(path, 1);
    const balancer = await startBalancer(cluster.nodes.map((node) => node.addr));
    // vaultrun reaches the balancer through a relay: cut, it sees the cluster down while the cluster is not.
    const port = Number(new URL(balancer.addr).port);
    const relay = await startRelay(port);
    const { run, appLog } = resident(`http://127.0.0.1:${relay.port}`, path, [shortRoleId, shortSecretId]);
    /** Stops every node for longer than the token lives; `whileDown` runs once the cluster is back. */
    const outage = async (whileDown?: () => Promise<void>) => {
      const from = run.logs().length;
      relay.cut();
      await Promise.all(cluster.nodes.map((node) => cluster.stop(node)));
      const since = () => run.logs().slice(from);
      await waitUntil(() => since().some((l) => l.level === 'warn'), 'a warning that Vault is unreachable');
      // The token's TTL passes with the cluster down.
      await sleep((TOKEN_TTL_S + 2) * 1000);
      await restoreCluster();
      await whileDown?.();
      relay.heal();
      // A login that failed while the cluster was down is tried again 30 s later (LOGIN_RETRY_MS).
      await waitUntil(() => since().some((l) => l.msg === 'logged in again'), 'the new login', 120_000);
      const before = polls(balancer);
      await waitUntil(() => polls(balancer) >= before + 4, '4 polls after the new login', 60_000);
      return run
        .logs()
        .slice(from)
        .filter((l) => l.level === 'warn' || l.msg.includes('again'));
    };
    try {
      const first = await waitForStart(appLog, 1);
      expect(first.vars?.DB_PASSWORD).toBe(v1);
      await run.waitForLog((l) => l.msg === 'renewed the token', 'a token renewal');

      const seen1 = await outage();
      console.log(`outage 1 (nothing changed), what the operator saw:\n${seen1.map(show).join('\n')}`);
      expect(seen1.find((l) => l.msg === 'logged in again')?.reason).toBe(
        'the token expired while Vault was unreachable',
      );
      expect(seen1.some((l) => l.msg.startsWith('Vault unreachable: watched paths'))).toBe(true);
      expect(starts(appLog)).toHaveLength(1);
      expect(running(first.pid)).toBe(true);
      expect(restarts(run)).toHaveLength(0);

      const seen2 = await outage(async () => {
        await cluster.kvPut(path, { password: v2 });
        await cluster.waitForVersion(path, 2);
      });
      console.log(`outage 2 (changed meanwhile), what the operator saw:\n${seen2.map(show).join('\n')}`);
      expect(seen2.find((l) => l.msg === 'logged in again')?.reason).toBe(
        'the token expired while Vault was unreachable',
      );
      expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(v2);
      await pollsGoOn(balancer, run);
      expect(starts(appLog).map((s) => s.vars?.DB_PASSWORD)).toEqual([v1, v2]);
      expect(restarts(run)).toHaveLength(1);
      await stopResident(run);
    } finally {
      relay.heal();
      await relay.close();
      await balancer.close();
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await restoreCluster();
    }
  }, 300_000);
});

const show = (l: LogLine) => {
  const { time: _t, level, msg, ...rest } = l;
  return `${level} ${msg} ${JSON.stringify(rest)}`;
};
