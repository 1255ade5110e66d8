// `--wait` is one deadline for the whole start: connecting, every request (login, mount lookups, reads), every
// retry and every Retry-After. Broken servers written here (they play a broken or hostile server, not Vault)
// each hold vaultrun in a different way; each time vaultrun must give up by itself with exit 69 and say how
// long it really waited.
//
// Nothing is timed against a threshold: the harness timeout (far above --wait) only catches a hang, and the
// time vaultrun reports is checked against --wait (at least) and against the time the test saw it run (at
// most: it must not claim a wait it did not do).
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { PROBE } from '../support/resolution.js';

const WAIT_S = 2;
/** Far above --wait: only a hang reaches it (today's per-request timeout alone is 60 s). */
const HARNESS_MS = 30_000;
const FAKE_TOKEN = 's.hostile-test-token-0123456789';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.close();
    (server as http.Server).closeAllConnections?.();
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** Accepted sockets, held open (destroyed after the test). */
function holdSockets(): { hold: (s: net.Socket) => void; count: () => number } {
  const sockets: net.Socket[] = [];
  closers.push(() => {
    for (const s of sockets) s.destroy();
  });
  return { hold: (s) => sockets.push(s), count: () => sockets.length };
}

/** Runs vaultrun against `addr` and checks: exit 69, a "gave up after N s" with N ≥ --wait and ≤ the real time. */
async function expectGivesUp(addr: string, extraEnv: Record<string, string> = {}, args: string[] = []) {
  const started = performance.now();
  const run = await runVaultrun(['--wait', `${WAIT_S}s`, ...args, '--', process.execPath, PROBE], {
    env: baseEnv({
      VAULT_ADDR: addr,
      VAULT_TOKEN: FAKE_TOKEN,
      DB_PASSWORD: 'vault:secret/app/db#password',
      ...extraEnv,
    }),
    timeoutMs: HARNESS_MS,
  });
  const observedS = (performance.now() - started) / 1000;
  expect(run.exitCode, run.stderr).toBe(69);
  const match = /gave up after (\d+(?:\.\d+)?) s/.exec(run.stderr);
  expect(match, run.stderr).not.toBeNull();
  const reported = Number(match?.[1]);
  expect(reported).toBeGreaterThanOrEqual(WAIT_S);
  expect(reported).toBeLessThanOrEqual(observedS);
  expect(run.stderr).not.toContain(FAKE_TOKEN);
  return run;
}

describe('--wait bounds the whole start against broken servers', () => {
  it('a server that accepts the connection and never answers', async () => {
    const sockets = holdSockets();
    const addr = await listen(net.createServer(sockets.hold));
    const run = await expectGivesUp(addr);
    expect(run.stderr).toMatch(/ETIMEDOUT/);
    expect(sockets.count()).toBeGreaterThan(0);
  });

  it('a server that sends the headers, then the body a byte a second, never the end', async () => {
    const timers: NodeJS.Timeout[] = [];
    closers.push(() => {
      for (const t of timers) clearInterval(t);
    });
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      res.write('{');
      timers.push(setInterval(() => res.write(' '), 1000));
    });
    const run = await expectGivesUp(await listen(server));
    expect(run.stderr).toMatch(/ETIMEDOUT/);
  });

  it('a server that answers 503 with Retry-After: 3600 (no sleep past the deadline, no claim of a wait not done)', async () => {
    let requests = 0;
    const server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '3600' });
      res.end('{"errors":["busy"]}');
    });
    const run = await expectGivesUp(await listen(server));
    expect(run.stderr).toMatch(/HTTP 503 \(busy\)/);
    expect(requests).toBeGreaterThan(0);
  });

  it('an address whose listen queue is full (the connection is never accepted)', async () => {
    // A listening socket in a process whose event loop is blocked for good: the kernel completes as many
    // connections as the backlog holds, and drops every SYN after that.
    const holder: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer();
         s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           process.stdout.write(String(s.address().port) + '\\n', () =>
             Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    closers.push(() => holder.kill('SIGKILL'));
    const port = await new Promise<number>((resolve, reject) => {
      holder.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      holder.once('exit', () => reject(new Error('the listener exited')));
    });
    // Fill the queue (these connections are completed by the kernel, never accepted).
    const fillers: net.Socket[] = [];
    closers.push(() => {
      for (const s of fillers) s.destroy();
    });
    for (let i = 0; i < 4; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      fillers.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    const run = await expectGivesUp(`http://127.0.0.1:${port}`);
    expect(run.stderr).toMatch(/ETIMEDOUT/);
  });
});

describe('--wait is one deadline for all the requests of a start, not one per request', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.kvPut('app/db', { password: 'pw-in-openbao' });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('a proxy that slows every request down: each alone fits in --wait, together they do not', async () => {
    // Each request (token lookup, mount lookup, read) is forwarded to the real OpenBao after 1.2 s: every one
    // of them ends well within 2 s, but the three together take 3.6 s.
    const target = new URL(bao.addr);
    let forwarded = 0;
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const timer = setTimeout(() => {
          forwarded++;
          const upstream = http.request(
            {
              host: target.hostname,
              port: target.port,
              path: req.url,
              method: req.method,
              headers: req.headers,
            },
            (answer) => {
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              answer.pipe(res);
            },
          );
          upstream.on('error', () => res.destroy());
          upstream.end(Buffer.concat(chunks));
        }, 1200);
        closers.push(() => clearTimeout(timer));
      });
    });
    const addr = await listen(proxy);
    const run = await expectGivesUp(addr, { VAULT_TOKEN: bao.rootToken });
    expect(run.stderr).not.toContain(bao.rootToken);
    expect(forwarded).toBeGreaterThanOrEqual(1);
    // Without the proxy, the same start succeeds (the proxy's delay is what made it fail).
    const direct = await runVaultrun(['--wait', `${WAIT_S}s`, '--', process.execPath, PROBE], {
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        DB_PASSWORD: 'vault:secret/app/db#password',
      }),
      timeoutMs: HARNESS_MS,
    });
    expect(direct.exitCode, direct.stderr).toBe(0);
  });
});
