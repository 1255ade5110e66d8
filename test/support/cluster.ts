// Test harness: a REAL three-node OpenBao cluster (integrated raft storage, loopback ports), not dev mode.
//
// The harness writes one config file per node (raft storage with retry_join to every other node, one tcp
// listener without TLS, api_addr/cluster_addr), starts the three `bao server` processes, initialises node 0
// (`sys/init`, one key share), unseals it, then unseals the others (which makes them join through
// retry_join), enables KV v2 at secret/, waits until every node answers a read of it and until every node
// is a raft voter (so that the cluster survives the loss of its active node: see below).
//
// Nodes can be stopped (SIGTERM), killed (SIGKILL), started again (they come back sealed: start() unseals
// them unless told not to), sealed and unsealed. leader() asks sys/leader. Every node's cluster port (raft and
// request forwarding) is reached through a TCP relay (test/support/proxy.ts): partition(node) cuts what comes
// in to that node — the active node's raft log no longer reaches it, while it still serves reads from its
// own copy and still forwards writes and logins to the active node — and heal(node) lets it catch up. Processes are tracked by pid and
// killed, and the temp dir removed, after the test file (test/support/leftovers.ts), as for the dev server.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftovers } from './leftovers.ts';
import { baoBinary, freePort, OpenBaoApiError, setpriv } from './openbao.ts';
import { type Relay, startRelay } from './proxy.ts';

const registry = leftovers('KEEP_OPENBAO_DIRS');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  body: any;
}

/** One HTTP request to a node; never throws for a status (see api() for that). */
export async function call(
  addr: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${addr}/v1/${path.replace(/^\/+/, '')}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(options.token ? { 'X-Vault-Token': options.token } : {}),
      ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body };
}

export interface ClusterNode {
  index: number;
  /** http://127.0.0.1:PORT */
  addr: string;
  /** Where the node listens for cluster traffic; others reach it through relayPort. */
  clusterPort: number;
  relayPort: number;
  dir: string;
  logFile: string;
  /** Running (started and not yet seen to exit). */
  running(): boolean;
}

export interface Cluster {
  nodes: ClusterNode[];
  rootToken: string;
  unsealKey: string;
  dir: string;
  /** A request to a node (root token by default) that throws OpenBaoApiError on a non-2xx answer. */
  // biome-ignore lint/suspicious/noExplicitAny: test convenience, callers pick T
  api<T = any>(
    node: ClusterNode | number,
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<T>;
  /** The active node, per sys/leader of the running unsealed nodes; waits up to 30 s for one. */
  leader(): Promise<ClusterNode>;
  /** The running nodes other than the active one. */
  standbys(): Promise<ClusterNode[]>;
  /** SIGTERM and wait for the exit. */
  stop(node: ClusterNode | number): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(node: ClusterNode | number): Promise<void>;
  /** Start a stopped node again; unseals it (and waits until it serves reads) unless `sealed` is set. */
  start(node: ClusterNode | number, options?: { sealed?: boolean }): Promise<void>;
  seal(node: ClusterNode | number): Promise<void>;
  /** sys/unseal with the key; then waits until the node answers reads of secret/ (as active or standby). */
  unseal(node: ClusterNode | number, options?: { wait?: boolean }): Promise<void>;
  /** Cuts the node's incoming cluster traffic (see above); heal() restores it. */
  partition(node: ClusterNode | number): void;
  heal(node: ClusterNode | number): void;
  /** Writes KV v2 data at secret/PATH through the leader; returns the new version. */
  kvPut(path: string, data: Record<string, unknown>, mount?: string): Promise<number>;
  /** Waits until every running unsealed node serves `path` (KV v2, secret/) at `version` or later. */
  waitForVersion(path: string, version: number, mount?: string): Promise<void>;
  /**
   * With `audit: true`: the request entries of a node's file audit log (each node audits what it handles
   * itself: reads a standby serves, and on the active node everything forwarded to it).
   */
  auditEntries(node: ClusterNode | number): ClusterAuditEntry[];
  /**
   * A barrier: writes a marker through the active node and waits until every running node has applied it, so
   * that everything written before it (a login's token, too) is on every node. A standby that does not know a
   * token forwards that token's requests to the active node, and so never serves them from its own older copy.
   */
  sync(): Promise<void>;
  /** The end of a node's server log (for the message of a failed test). */
  logTail(node: ClusterNode | number, chars?: number): string;
  /** Stops every node. */
  close(): Promise<void>;
}

export interface ClusterAuditEntry {
  /** The request id: a request a standby forwarded is audited by both nodes, under the same id. */
  id: string;
  time: string;
  path: string;
  operation: string;
}

interface Proc {
  child: import('node:child_process').ChildProcess;
  exited: Promise<void>;
}

function tail(file: string, chars = 3000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > chars ? `…${text.slice(-chars)}` : text;
  } catch {
    return '(no log)';
  }
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const got = await fn();
      if (got !== undefined) return got;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`cluster: ${what} not reached in ${timeoutMs} ms (${String(last)})`);
    await sleep(100);
  }
}

export async function startCluster(options: { size?: number; audit?: boolean } = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const bao = baoBinary();
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-cluster-'));
  registry.dirs.add(dir);
  const ports: number[] = [];
  while (ports.length < size * 2) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const nodes: ClusterNode[] = [];
  const relays: Relay[] = [];
  const procs: Array<Proc | undefined> = [];
  for (let i = 0; i < size; i++) {
    const nodeDir = join(dir, `node${i}`);
    mkdirSync(join(nodeDir, 'data'), { recursive: true });
    const apiPort = ports[i * 2] as number;
    const clusterPort = ports[i * 2 + 1] as number;
    const relay = await startRelay(clusterPort);
    relays.push(relay);
    const node: ClusterNode = {
      index: i,
      addr: `http://127.0.0.1:${apiPort}`,
      clusterPort,
      relayPort: relay.port,
      dir: nodeDir,
      logFile: join(nodeDir, 'server.log'),
      running: () => {
        const p = procs[i];
        return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
      },
    };
    nodes.push(node);
  }
  for (const node of nodes) {
    const joins = nodes
      .filter((n) => n !== node)
      .map((n) => `  retry_join {\n    leader_api_addr = "${n.addr}"\n  }\n`)
      .join('');
    writeFileSync(
      join(node.dir, 'config.hcl'),
      `storage "raft" {\n  path = ${JSON.stringify(join(node.dir, 'data'))}\n  node_id = "node${node.index}"\n` +
        `  performance_multiplier = 2\n${joins}}\n` +
        `listener "tcp" {\n  address = "127.0.0.1:${node.addr.split(':')[2]}"\n` +
        `  cluster_address = "127.0.0.1:${node.clusterPort}"\n  tls_disable = true\n}\n` +
        `api_addr = "${node.addr}"\ncluster_addr = "https://127.0.0.1:${node.relayPort}"\n` +
        'disable_mlock = true\nui = false\nlog_level = "info"\n' +
        (options.audit
          ? // The audit table is replicated: every node must declare the same options (a node that becomes
            // active with other options fails to set up). A relative path: each node writes in its own dir.
            'audit "file" "file" {\n  options {\n    file_path = "audit.log"\n  }\n}\n'
          : ''),
    );
  }

  const nodeOf = (n: ClusterNode | number): ClusterNode => {
    const node = typeof n === 'number' ? nodes[n] : n;
    if (!node) throw new Error(`cluster: no node ${String(n)}`);
    return node;
  };

  const launch = (node: ClusterNode): void => {
    const args = ['server', `-config=${join(node.dir, 'config.hcl')}`];
    const sp = setpriv();
    const [cmd, argv] = sp ? [sp, ['--pdeathsig', 'KILL', '--', bao, ...args]] : [bao, args];
    procs[node.index] = registry.start(cmd, argv, {
      cwd: node.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: node.dir, LANG: 'C.UTF-8' },
      logFile: node.logFile,
    });
  };

  const listening = (node: ClusterNode) =>
    waitUntil(`node ${node.index} listening`, async () => {
      if (!node.running()) throw new Error(`node ${node.index} exited. Log:\n${tail(node.logFile)}`);
      const res = await call(node.addr, 'GET', 'sys/seal-status');
      return res.status === 200 ? true : undefined;
    });

  let rootToken = '';
  let unsealKey = '';

  async function api<T>(
    n: ClusterNode | number,
    method: string,
    path: string,
    body?: unknown,
    token: string = rootToken,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await call(nodeOf(n).addr, method, path, { body, token, headers });
    if (res.status >= 300) {
      const errors: string[] =
        typeof res.body === 'object' && res.body && Array.isArray(res.body.errors) ? res.body.errors : [];
      throw new OpenBaoApiError(
        `OpenBao node ${nodeOf(n).index} ${method} ${path}: HTTP ${res.status}: ${errors.join('; ') || '(no errors)'}`,
        res.status,
        errors,
      );
    }
    return res.body as T;
  }

  /** Unsealed and serving: sys/health says unsealed, and a read of secret/config answers 200. */
  const serving = (node: ClusterNode) =>
    waitUntil(`node ${node.index} serving reads`, async () => {
      if (!node.running()) throw new Error(`node ${node.index} exited. Log:\n${tail(node.logFile)}`);
      const health = await call(node.addr, 'GET', 'sys/health?standbyok=true');
      if (health.status !== 200) return undefined;
      const kv = await call(node.addr, 'GET', 'secret/config', { token: rootToken });
      return kv.status === 200 ? true : undefined;
    });

  const unseal = async (n: ClusterNode | number, opts: { wait?: boolean } = {}): Promise<void> => {
    const node = nodeOf(n);
    // A node that has not joined yet answers 400/503 until retry_join has fetched the challenge: retry.
    await waitUntil(`node ${node.index} unsealed`, async () => {
      const res = await call(node.addr, 'PUT', 'sys/unseal', { body: { key: unsealKey } });
      if (res.status === 200 && res.body?.sealed === false) return true;
      const status = await call(node.addr, 'GET', 'sys/seal-status');
      return status.body?.sealed === false ? true : undefined;
    });
    if (opts.wait !== false) await serving(node);
  };

  const leader = (): Promise<ClusterNode> =>
    waitUntil('a leader', async () => {
      for (const node of nodes) {
        if (!node.running()) continue;
        const res = await call(node.addr, 'GET', 'sys/leader').catch(() => undefined);
        if (res?.status === 200 && res.body?.is_self === true) return node;
      }
      return undefined;
    });

  const stopProc = async (n: ClusterNode | number, signal: NodeJS.Signals): Promise<void> => {
    const node = nodeOf(n);
    const proc = procs[node.index];
    if (!proc || !node.running()) return;
    proc.child.kill(signal);
    const timedOut = await Promise.race([proc.exited.then(() => false), sleep(15_000).then(() => true)]);
    if (timedOut) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  };

  for (const node of nodes) launch(node);
  try {
    await Promise.all(nodes.map(listening));
    const first = nodes[0] as ClusterNode;
    const init = await call(first.addr, 'PUT', 'sys/init', {
      body: { secret_shares: 1, secret_threshold: 1 },
    });
    if (init.status !== 200) throw new Error(`sys/init: HTTP ${init.status} ${JSON.stringify(init.body)}`);
    rootToken = init.body.root_token;
    unsealKey = (init.body.keys_base64 ?? init.body.keys_b64 ?? init.body.keys)?.[0];
    if (!rootToken || !unsealKey)
      throw new Error(`sys/init: no root token or key in ${Object.keys(init.body)}`);
    await unseal(first, { wait: false });
    await leader();
    await api(first, 'POST', 'sys/mounts/secret', { type: 'kv', options: { version: '2' } });
    await serving(first);
    for (const node of nodes.slice(1)) await unseal(node);
    // Joined nodes start as raft non-voters; autopilot promotes them once stable (10 s by default, and often
    // later). Until then the active node is the only voter: killing it would leave no quorum, so no election
    // ever. Shorten the stabilisation time and wait until every node votes.
    await api(first, 'POST', 'sys/storage/raft/autopilot/configuration', { server_stabilization_time: '1s' });
    await waitUntil(
      'every node a raft voter',
      async () => {
        const state = await api<{ data: { voters: string[] } }>(
          first,
          'GET',
          'sys/storage/raft/autopilot/state',
        );
        return state.data.voters.length === size ? true : undefined;
      },
      60_000,
    );
  } catch (e) {
    for (const node of nodes) await stopProc(node, 'SIGKILL');
    for (const relay of relays) await relay.close();
    throw e;
  }

  const cluster: Cluster = {
    nodes,
    get rootToken() {
      return rootToken;
    },
    get unsealKey() {
      return unsealKey;
    },
    dir,
    api,
    leader,
    async standbys() {
      const active = await leader();
      return nodes.filter((n) => n !== active && n.running());
    },
    stop: (n) => stopProc(n, 'SIGTERM'),
    kill: (n) => stopProc(n, 'SIGKILL'),
    async start(n, opts = {}) {
      const node = nodeOf(n);
      if (node.running()) throw new Error(`cluster: node ${node.index} is running already`);
      launch(node);
      await listening(node);
      if (!opts.sealed) await unseal(node);
    },
    async seal(n) {
      await api(n, 'PUT', 'sys/seal');
    },
    unseal,
    partition(n) {
      relays[nodeOf(n).index]?.cut();
    },
    heal(n) {
      relays[nodeOf(n).index]?.heal();
    },
    async kvPut(path, data, mount = 'secret') {
      // A freshly enabled KV v2 mount answers "upgrading" for a moment, and on a loaded machine the active node
      // can lose its leadership under a write: retry briefly, through whichever node leads then.
      for (let i = 0; ; i++) {
        try {
          const active = await leader();
          const res = await api<{ data: { version: number } }>(active, 'POST', `${mount}/data/${path}`, {
            data,
          });
          return res.data.version;
        } catch (e) {
          const transient = /upgrad|no handler|leadership lost|not active|no leader/i;
          // 307: the node sys/leader named a moment ago is a standby by now (a new election under load).
          const moved = e instanceof OpenBaoApiError && e.status === 307;
          if (i >= 100 || !(e instanceof OpenBaoApiError) || !(moved || transient.test(e.message))) throw e;
          await sleep(100);
        }
      }
    },
    async waitForVersion(path, version, mount = 'secret') {
      for (const node of nodes.filter((n) => n.running())) {
        await waitUntil(`node ${node.index} at ${mount}/${path} v${version}`, async () => {
          const res = await call(node.addr, 'GET', `${mount}/metadata/${path}`, { token: rootToken });
          return res.status === 200 && res.body.data.current_version >= version ? true : undefined;
        });
      }
    },
    auditEntries(n) {
      let text: string;
      try {
        text = readFileSync(join(nodeOf(n).dir, 'audit.log'), 'utf8');
      } catch {
        return [];
      }
      return text
        .slice(0, text.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map(
          (line) =>
            JSON.parse(line) as {
              type?: string;
              time?: string;
              request?: { id?: string; path?: string; operation?: string };
            },
        )
        .filter((e) => e.type === 'request')
        .map((e) => ({
          id: e.request?.id ?? '',
          time: e.time ?? '',
          path: e.request?.path ?? '',
          operation: e.request?.operation ?? '',
        }));
    },
    async sync() {
      const marker = `sync-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
      const version = await cluster.kvPut(marker, { at: new Date().toISOString() });
      await cluster.waitForVersion(marker, version);
    },
    logTail: (n, chars) => tail(nodeOf(n).logFile, chars),
    async close() {
      await Promise.all(nodes.map((n) => stopProc(n, 'SIGTERM')));
      for (const relay of relays) await relay.close();
    },
  };
  return cluster;
}
