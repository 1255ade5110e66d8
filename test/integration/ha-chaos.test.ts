// vaultrun against a real three-node OpenBao cluster (test/support/cluster.ts) while it fails: the leader
// killed in the middle of a burst of starts, the leader of a resident vaultrun dying, a hostile proxy in front
// of a node answering with redirects, and the whole cluster down for longer than the token's TTL. One cluster
// for the whole file; every test leaves three running, unsealed nodes behind. Nothing is timed: waits poll for
// log lines, app events and exits, and their timeouts only turn a hang into a failure.
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun, spawnVaultrun } from '../support/cli.js';
import { type Cluster, type ClusterNode, call, startCluster } from '../support/cluster.js';
import { type Balancer, startBalancer } from '../support/proxy.js';
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
    await waitUntil(
      async () =>
        (await call(node.addr, 'POST', 'auth/approle/login', { body: { role_id: role, secret_id: secret } }))
          .status === 200,
      `node ${node.index} knows the AppRole ${name}`,
    );
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
