// An answer has a size limit (MAX_ANSWER_BYTES, 32 MiB as received: head, body and chunk framing). A server
// that streams an endless body — with a Content-Length, without one, chunked in 1-byte chunks — or that
// declares a body above the limit, makes vaultrun fail at once with exit 69 and a message that names the
// request and the limit; the request is not retried (one connection), and vaultrun closes the connection.
// The servers here are NOT Vault: they play a hostile server, written with node:net to send exactly these
// bytes. Nothing is timed: --wait is far above what reading 32 MiB takes, the harness timeout catches a hang,
// and the message says which limit ended the run (not "gave up after", which a time-out would say).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_ANSWER_BYTES } from '../../src/vault/transport.js';
import { baseEnv, runVaultrun } from '../support/cli.js';

const FAKE_TOKEN = 's.answer-size-test-token-0123456789';
/** A server never sends more than this, whatever happens (a guard for the test itself). */
const SERVER_CAP = 1024 * 1024 * 1024;

interface Hostile {
  addr: string;
  /** The request line of each connection (one request each: the server never ends an answer). */
  requests: string[];
  /** Bytes written to each connection after the head, when it closed. */
  closedAfter: number[];
}

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/**
 * A server that reads the request head, writes `head`, then `piece` again and again (none: nothing more)
 * while the connection is open, and records how much it wrote when the connection closed.
 */
async function hostile(head: string, piece?: Buffer): Promise<Hostile> {
  const state: Hostile = { addr: '', requests: [], closedAfter: [] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let written = 0;
    let started = false;
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      state.closedAfter.push(written);
    });
    const pump = () => {
      while (piece && !socket.destroyed && written < SERVER_CAP) {
        written += piece.length;
        if (!socket.write(piece)) return; // wait for 'drain'
      }
    };
    socket.on('drain', pump);
    let request = '';
    socket.on('data', (d: Buffer) => {
      request += d.toString('latin1');
      if (started || !request.includes('\r\n\r\n')) return;
      started = true;
      state.requests.push(request.slice(0, request.indexOf('\r\n')));
      socket.write(head);
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  state.addr = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

async function run(addr: string) {
  return runVaultrun(['--wait', '60s', '--', process.execPath, '-e', 'process.exit(0)'], {
    env: baseEnv({
      VAULT_ADDR: addr,
      VAULT_TOKEN: FAKE_TOKEN,
      VAULTRUN_LOG_LEVEL: 'debug',
      DB_PASSWORD: 'vault:secret/app/db#password',
    }),
    timeoutMs: 120_000,
  });
}

/**
 * Exit 69 at the first answer, naming the request and the limit; no request sent twice (not retried); every
 * connection closed. (A start with a token sends the token check and the first mount look-up together.)
 */
function expectRefused(result: Awaited<ReturnType<typeof run>>, server: Hostile): void {
  expect(result.exitCode, result.stderr).toBe(69);
  expect(result.stderr).toMatch(
    /vaultrun error: Vault at http:\/\/127\.0\.0\.1:\d+ sent an answer larger than 32 MiB \(the most vaultrun reads\) to (GET auth\/token\/lookup-self while checking the token|GET sys\/internal\/ui\/mounts\/secret\/app\/db while looking up the mount of secret\/app\/db).* code=UNREACHABLE exit=69/,
  );
  expect(result.stderr).not.toMatch(/gave up after|ETIMEDOUT|retrying Vault request/);
  expect(result.stderr).not.toContain(FAKE_TOKEN);
  expect(server.requests.length).toBeGreaterThan(0);
  expect(new Set(server.requests).size, server.requests.join('\n')).toBe(server.requests.length);
  expect(server.closedAfter).toHaveLength(server.requests.length);
}

describe('an answer larger than the limit', () => {
  it('an endless body with a Content-Length above the limit: refused at the head, no body byte read', async () => {
    const server = await hostile(
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${MAX_ANSWER_BYTES + 1}\r\n\r\n`,
    );
    const result = await run(server.addr);
    expectRefused(result, server);
    // The server sent no body at all: vaultrun refused the length itself, and closed the connection.
    expect(server.closedAfter.every((n) => n === 0)).toBe(true);
  });

  it('an endless body with a huge Content-Length, streamed', async () => {
    const server = await hostile(
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n',
      Buffer.alloc(64 * 1024, 'a'),
    );
    expectRefused(await run(server.addr), server);
  });

  it('an endless body without a length (to the end of the connection)', async () => {
    const server = await hostile(
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"data":"',
      Buffer.alloc(64 * 1024, 'a'),
    );
    const result = await run(server.addr);
    expectRefused(result, server);
    // What vaultrun read stopped at the limit: the server wrote at most that plus what the kernel's socket
    // buffers hold (a few MiB), far from the gigabyte it would have sent.
    expect(Math.max(...server.closedAfter)).toBeGreaterThan(MAX_ANSWER_BYTES - 64 * 1024);
    for (const n of server.closedAfter) expect(n).toBeLessThan(4 * MAX_ANSWER_BYTES);
  });

  it('an endless chunked body in 1-byte chunks', async () => {
    const server = await hostile(
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      Buffer.from('1\r\na\r\n'.repeat(10_000), 'latin1'),
    );
    const result = await run(server.addr);
    expectRefused(result, server);
    for (const n of server.closedAfter) expect(n).toBeLessThan(4 * MAX_ANSWER_BYTES);
  });

  it('a chunk whose declared size is above the limit: refused before its bytes', async () => {
    const size = (MAX_ANSWER_BYTES + 1).toString(16);
    const server = await hostile(
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n`,
    );
    const result = await run(server.addr);
    expectRefused(result, server);
    expect(server.closedAfter.every((n) => n === 0)).toBe(true);
  });
});
