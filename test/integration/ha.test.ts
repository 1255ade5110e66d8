// vaultrun against a real three-node OpenBao cluster (integrated raft storage; test/support/cluster.ts): reads
// stay consistent when a standby lags behind, transient answers of a cluster are retried, and --watch only
// moves forward. One cluster for the whole file. A lagging node is made on purpose: partition(node) cuts the
// raft traffic that reaches it, so it keeps serving its older copy (as OpenBao standbys do) until heal(node).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type Cluster, type ClusterNode, call, startCluster } from '../support/cluster.js';
import { type Balancer, describeRequests, startBalancer } from '../support/proxy.js';
import {
  appEvents,
  type Resident,
  ROTATION_APP,
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
let readToken: string;
let n = 0;
const unique = (label: string) => `${label}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  cluster = await startCluster();
  const leader = await cluster.leader();
  await cluster.api(leader, 'PUT', 'sys/policies/acl/read-all', {
    policy: 'path "+/data/*" { capabilities = ["read"] }\npath "+/metadata/*" { capabilities = ["read"] }',
  });
  await cluster.api(leader, 'POST', 'sys/auth/approle', { type: 'approle' });
  await cluster.api(leader, 'POST', 'auth/approle/role/app', { token_policies: ['read-all'] });
  roleId = (await cluster.api(leader, 'GET', 'auth/approle/role/app/role-id')).data.role_id;
  secretId = (await cluster.api(leader, 'POST', 'auth/approle/role/app/secret-id', {})).data.secret_id;
  readToken = (await cluster.api(leader, 'POST', 'auth/token/create', { policies: ['read-all'] })).auth
    .client_token;
  // Every node knows the role and the secret_id before a test logs in through it.
  for (const node of cluster.nodes) {
    await waitUntil(
      async () =>
        (
          await call(node.addr, 'POST', 'auth/approle/login', {
            body: { role_id: roleId, secret_id: secretId },
          })
        ).status === 200,
      `node ${node.index} knows the AppRole`,
    );
  }
}, 120_000);

afterAll(async () => {
  await cluster?.close();
});

/** The environment of a start against `addr`, logging in with AppRole; the command prints DB_PASSWORD. */
function env(addr: string, extra: Record<string, string> = {}): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-ha-'));
  return baseEnv({
    VAULT_ADDR: addr,
    VAULT_ROLE_ID: roleId,
    VAULT_SECRET_ID: secretId,
    APP_LOG: join(dir, 'app.log'),
    APP_VARS: 'DB_PASSWORD',
    ...extra,
  });
}

const PRINT = ['--', 'node', '-e', 'process.stdout.write(process.env.DB_PASSWORD ?? "(unset)")'];

/** A standby that lags behind: partitioned, so writes made from now on do not reach it until heal(). */
async function laggingStandby(): Promise<ClusterNode> {
  const [standby] = await cluster.standbys();
  if (!standby) throw new Error('no standby');
  cluster.partition(standby);
  return standby;
}

async function readThrough(node: ClusterNode, path: string): Promise<string> {
  const res = await call(node.addr, 'GET', `secret/data/${path}`, { token: cluster.rootToken });
  return res.body?.data?.data?.password;
}

describe('HA: a start never runs the command with an older secret than the cluster has', () => {
  it('read after write: written through a lagging standby, read through it — waits until it caught up', async () => {
    // The property: the command never runs with v1 once v2 was written; it runs with v2 once the standby has
    // caught up. The scenario needs the healed standby to catch up within --wait, which a loaded machine (raft
    // replication backs off up to ~10 s per failure) cannot always promise: a start that gave up (exit 69) must
    // not have run the command, and the scenario is tried again (at most three times) until one start waited
    // and then went through. Every attempt asserts the property; the last message carries the standby's log.
    const gaveUp: string[] = [];
    let passed = false;
    for (let attempt = 0; attempt < 3 && !passed; attempt++) {
      const path = unique('raw');
      const v1 = unique('old');
      const v2 = unique('new');
      await cluster.kvPut(path, { password: v1 });
      await cluster.waitForVersion(path, 1);
      const standby = await laggingStandby();
      try {
        // The write goes through the standby (forwarded to the active node); the standby still serves v1.
        const write = await call(standby.addr, 'POST', `secret/data/${path}`, {
          token: cluster.rootToken,
          body: { data: { password: v2 } },
        });
        expect(write.status).toBe(200);
        expect(await readThrough(standby, path)).toBe(v1);
        const healLater = sleep(1500).then(() => cluster.heal(standby));
        const run = await runVaultrun(['--wait', '40s', '--log-level', 'debug', ...PRINT], {
          env: env(standby.addr, { DB_PASSWORD: `vault:secret/${path}#password` }),
        });
        await healLater;
        // How: the standby refused the read until it had applied the index of our login.
        expect(run.stderr).toMatch(/retrying Vault request.*not caught up with the cluster yet/);
        if (run.exitCode === 69) {
          // Gave up waiting: the command must not have run at all (neither value reached it).
          expect(run.stdout).toBe('');
          expect(run.stderr).toMatch(/gave up after/);
          gaveUp.push(
            `attempt ${attempt + 1}: standby node ${standby.index} not caught up in 40 s\n` +
              `${run.stderr.split('\n').slice(-3).join('\n')}\n--- its log ---\n${cluster.logTail(standby, 4000)}`,
          );
        } else {
          expect(run.exitCode, run.stderr).toBe(0);
          expect(run.stdout).toBe(v2);
          passed = true;
        }
      } finally {
        cluster.heal(standby);
      }
      await cluster.waitForVersion(path, 2).catch((error: unknown) => {
        throw new Error(`${String(error)}\n\n${gaveUp.join('\n\n')}`);
      });
    }
    expect(passed, gaveUp.join('\n\n')).toBe(true);
  }, 240_000);

  it("a write's X-Vault-Index is sent back too: once the command's token is created (vault:login), the next read waits for a lagging node", async () => {
    const path = unique('write-index');
    await cluster.kvPut(path, { password: unique('val') });
    await cluster.waitForVersion(path, 1);
    const standby = await laggingStandby();
    try {
      // A given token: no login, so the reads of the start have no index to send and the standby answers them.
      // Creating the command's token is a write, forwarded to the active node: its answer carries the active
      // node's newer index, which the next request — a poll of the path — sends back: the lagging node refuses.
      const e = env(standby.addr, {
        DB_PASSWORD: `vault:secret/${path}#password`,
        VAULT_TOKEN: cluster.rootToken,
        APP_VAULT_TOKEN: 'vault:login',
      });
      delete e.VAULT_ROLE_ID;
      delete e.VAULT_SECRET_ID;
      const run = startResident([...WATCH_FAST, '--wait', '30s', 'node', ROTATION_APP], { env: e });
      await waitForStart(e.APP_LOG as string, 1);
      expect(run.logs().filter((l) => /not caught up/.test(String(l.reason)))).toEqual([]);
      await run.waitForLog(
        (l) =>
          l.msg === 'retrying Vault request' &&
          /not caught up with the cluster yet/.test(String(l.reason)) &&
          String(l.what).startsWith('checking the version of'),
        'a poll refused by the lagging node',
      );
      cluster.heal(standby);
      process.kill(run.pid, 'SIGTERM');
      expect((await run.result).exitCode).toBe(0);
    } finally {
      cluster.heal(standby);
    }
  });

  it('stale after unseal: a node stopped while a write happened, then unsealed — not the previous secret', async () => {
    const path = unique('unseal');
    const v1 = unique('old');
    const v2 = unique('new');
    await cluster.kvPut(path, { password: v1 });
    await cluster.waitForVersion(path, 1);
    const [node] = await cluster.standbys();
    if (!node) throw new Error('no standby');
    await cluster.stop(node);
    await cluster.kvPut(path, { password: v2 });
    // It comes back sealed, is unsealed, and (partitioned) serves what it had before it stopped.
    cluster.partition(node);
    try {
      await cluster.start(node, { sealed: true });
      await cluster.unseal(node);
      expect(await readThrough(node, path)).toBe(v1);
      const healLater = sleep(1500).then(() => cluster.heal(node));
      const run = await runVaultrun(['--wait', '40s', ...PRINT], {
        env: env(node.addr, { DB_PASSWORD: `vault:secret/${path}#password` }),
      });
      await healLater;
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toBe(v2);
    } finally {
      cluster.heal(node);
    }
  });

  it('a lagging node that does not catch up within --wait: exit 69, the command never runs', async () => {
    const path = unique('never');
    await cluster.kvPut(path, { password: unique('old') });
    await cluster.waitForVersion(path, 1);
    const standby = await laggingStandby();
    try {
      await cluster.kvPut(path, { password: unique('new') });
      const run = await runVaultrun(['--wait', '3s', ...PRINT], {
        env: env(standby.addr, { DB_PASSWORD: `vault:secret/${path}#password` }),
      });
      expect(run.exitCode, run.stderr).toBe(69);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/not caught up with the cluster yet/);
    } finally {
      cluster.heal(standby);
    }
  });

  it('--consistency forward: the lagging node forwards the read to the active node, no wait', async () => {
    const path = unique('fwd');
    await cluster.kvPut(path, { password: unique('old') });
    await cluster.waitForVersion(path, 1);
    const standby = await laggingStandby();
    try {
      const v2 = unique('new');
      await cluster.kvPut(path, { password: v2 });
      const run = await runVaultrun(['--wait', '5s', '--consistency', 'forward', ...PRINT], {
        env: env(standby.addr, { DB_PASSWORD: `vault:secret/${path}#password` }),
      });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toBe(v2);
    } finally {
      cluster.heal(standby);
    }
  });

  it('--consistency leader: reads go to the active node listed in --cluster-addr; an unlisted one is not followed', async () => {
    const path = unique('leader');
    await cluster.kvPut(path, { password: unique('old') });
    await cluster.waitForVersion(path, 1);
    const standby = await laggingStandby();
    try {
      const v2 = unique('new');
      await cluster.kvPut(path, { password: v2 });
      const all = cluster.nodes.map((node) => node.addr).join(',');
      const run = await runVaultrun(['--wait', '5s', '--consistency', 'leader', ...PRINT], {
        env: env(standby.addr, { DB_PASSWORD: `vault:secret/${path}#password`, VAULTRUN_CLUSTER_ADDRS: all }),
      });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toBe(v2);

      // The leader's address is not in the list: a warning, requests stay on VAULT_ADDR (and its index rule).
      const others = cluster.nodes.filter((node) => node !== standby).map((node) => node.addr);
      const unlisted = await runVaultrun(['--wait', '3s', '--consistency', 'leader', ...PRINT], {
        env: env(standby.addr, {
          DB_PASSWORD: `vault:secret/${path}#password`,
          VAULTRUN_CLUSTER_ADDRS: 'http://127.0.0.1:1',
        }),
      });
      expect(unlisted.stderr).toMatch(/not following the leader address/);
      expect(unlisted.stderr).toContain((await cluster.leader()).addr.replace('http://', ''));
      expect(others.length).toBe(2);
      expect(unlisted.exitCode, unlisted.stderr).toBe(69);
      expect(unlisted.stdout).toBe('');
    } finally {
      cluster.heal(standby);
    }
  });
});

describe('HA: transient answers of a cluster are retried within --wait', () => {
  it('a KV v2 mount just enabled: the standby answers 400 "waiting for the primary to upgrade"; vaultrun retries', async () => {
    const leader = await cluster.leader();
    const [standby] = await cluster.standbys();
    if (!standby) throw new Error('no standby');
    // The window lasts about a second, and a loaded machine can miss it: each try enables a fresh mount, waits
    // for the standby's 400, then starts vaultrun at once; a start that came too late (no 400 seen) must still
    // succeed, and another try follows, until one start really went through the window.
    let hit = false;
    for (let attempt = 0; attempt < 5 && !hit; attempt++) {
      const mount = unique('kvnew');
      const value = unique('fresh');
      await cluster.api(leader, 'POST', `sys/mounts/${mount}`, { type: 'kv', options: { version: '2' } });
      await cluster.kvPut('app', { password: value }, mount);
      let seen = false;
      const until = Date.now() + 5_000;
      while (!seen && Date.now() < until) {
        const res = await call(standby.addr, 'GET', `${mount}/data/app`, { token: readToken });
        if (res.status === 400 && /^Waiting for the primary to upgrade/.test(res.body?.errors?.[0] ?? '')) {
          seen = true;
        } else if (res.status === 200) {
          break; // this mount's window was missed before it was seen
        }
      }
      if (!seen) continue;
      // A token (no login, so no X-Vault-Index to wait for first): the first read lands in that window.
      const e = env(standby.addr, { DB_PASSWORD: `vault:${mount}/app#password`, VAULT_TOKEN: readToken });
      delete e.VAULT_ROLE_ID;
      delete e.VAULT_SECRET_ID;
      const run = await runVaultrun(['--wait', '30s', '--log-level', 'debug', ...PRINT], { env: e });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toBe(value);
      hit = /retrying Vault request.*HTTP 400 \(the KV mount is being upgraded/.test(run.stderr);
    }
    expect(hit, 'a start that met the standby\'s "Waiting for the primary to upgrade" and retried').toBe(
      true,
    );
  });
});

describe('HA: --watch behind a load balancer with a lagging node only moves forward', () => {
  let balancer: Balancer | undefined;
  afterAll(async () => {
    await balancer?.close();
  });

  const restarts = (run: Resident) =>
    run.logs().filter((l) => l.msg === 'secrets changed: restarting the command');

  async function stop(run: Resident): Promise<void> {
    process.kill(run.pid, 'SIGTERM');
    const res = await run.result;
    expect(res.exitCode, res.stderr).toBe(0);
  }

  for (const consistency of ['index', 'eventual'] as const) {
    it(`--consistency ${consistency}: exactly one restart, onto the newest value, never back`, async () => {
      const leader = await cluster.leader();
      const standby = (await cluster.standbys())[0] as ClusterNode;
      balancer = await startBalancer([leader.addr, standby.addr]);
      const path = unique(`watch-${consistency}`);
      const v1 = unique('v1');
      const v2 = unique('v2');
      await cluster.kvPut(path, { password: v1 });
      await cluster.waitForVersion(path, 1);
      const e = env(balancer.addr, { DB_PASSWORD: `vault:secret/${path}#password` });
      const appLog = e.APP_LOG as string;
      const run = startResident(
        [...WATCH_FAST, '--wait', '5s', '--consistency', consistency, 'node', ROTATION_APP],
        { env: e },
      );
      try {
        expect((await waitForStart(appLog, 1)).vars?.DB_PASSWORD).toBe(v1);
        // The standby must know vaultrun's token before it is cut off: a standby that does not forwards that
        // token's requests to the active node, which answers with the newest version (no lagging node at all).
        await cluster.sync();
        cluster.partition(standby);
        await cluster.kvPut(path, { password: v2 });
        expect(await readThrough(standby, path)).toBe(v1);
        expect((await waitForStart(appLog, 2)).vars?.DB_PASSWORD).toBe(v2);
        // Polls go on through the balancer, half of them to the lagging node (which still has v1). What that node
        // answered is read on the wire (the balancer notes each metadata answer's status and current_version):
        // with `index` it refuses (our index is newer than its copy), with `eventual` it answers version 1.
        const fromStandby = () =>
          (balancer?.log ?? []).filter(
            (r) => r.target === standby.addr && r.path.includes('/metadata/') && r.status !== undefined,
          );
        const before = fromStandby().length;
        const lagging = () =>
          fromStandby()
            .slice(before)
            .filter((r) =>
              consistency === 'eventual' ? r.status === 200 && r.version === 1 : r.status !== 200,
            );
        const wire = () => describeRequests(balancer?.log ?? []);
        try {
          await waitUntil(() => lagging().length >= 4, '4 answers of the lagging node to polls');
        } catch (error) {
          throw new Error(
            `${String(error)}\n--- balancer (leader ${leader.addr}) ---\n${wire()}\n--- vaultrun ---\n` +
              `${run.stderr().slice(-3000)}\n--- standby node ${standby.index} ---\n${cluster.logTail(standby, 2000)}`,
          );
        }
        expect(await readThrough(standby, path)).toBe(v1);
        expect(starts(appLog).map((s) => s.vars?.DB_PASSWORD)).toEqual([v1, v2]);
        expect(restarts(run)).toHaveLength(1);
        await stop(run);
        // Once vaultrun has exited its stderr is complete: each older answer was noted as ignored (eventual), or
        // each refusal was retried (index).
        const line =
          consistency === 'eventual'
            ? 'ignoring an older version of a watched path'
            : 'retrying Vault request';
        expect(
          run.count(line),
          `${wire()}\n--- vaultrun ---\n${run.stderr().slice(-3000)}`,
        ).toBeGreaterThanOrEqual(consistency === 'eventual' ? 4 : 1);
        expect(appEvents(appLog).filter((ev) => ev.event === 'start')).toHaveLength(2);
      } finally {
        cluster.heal(standby);
        await balancer.close();
        balancer = undefined;
        if (run.child.exitCode === null) run.child.kill('SIGKILL');
      }
      await cluster.waitForVersion(path, 2);
    });
  }
});
