// Network pieces for cluster tests: a TCP relay that can be cut (a network partition of one node's cluster
// port) and an HTTP load balancer that sends each request to the next node in turn (as a round-robin load
// balancer in front of a cluster does). Both pass bytes through untouched; neither knows the Vault API.
import http from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Relay {
  port: number;
  /** Drops every connection and refuses new ones until heal(). */
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

const closeServer = (server: Server | http.Server) => new Promise<void>((r) => server.close(() => r()));

/** A TCP relay from 127.0.0.1:`port` (0: any free port) to 127.0.0.1:`target`. */
export async function startRelay(target: number, port = 0): Promise<Relay> {
  const sockets = new Set<Socket>();
  let isCut = false;
  const server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen({ port, host: '127.0.0.1' }, () => r()));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : 0;
  const drop = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port: bound,
    cut() {
      isCut = true;
      drop();
    },
    heal() {
      isCut = false;
    },
    async close() {
      drop();
      await closeServer(server);
    },
  };
}

export interface Balancer {
  addr: string;
  /** Requests passed on, per target address. */
  counts: Map<string, number>;
  /** Each request passed on: the target, the URL path, when, and the answer's status once it came. */
  log: BalancedRequest[];
  close(): Promise<void>;
}

export interface BalancedRequest {
  target: string;
  path: string;
  at: string;
  status?: number;
  /** For a KV v2 metadata answer: the current_version it gave (the body is read as it passes through). */
  version?: number;
}

/** The last `n` requests a balancer passed on, a line each (target, path, status, KV version): for failure messages. */
export function describeRequests(log: readonly BalancedRequest[], n = 30): string {
  return log
    .slice(-n)
    .map((r) => `${r.at} ${r.target} ${r.path} ${r.status ?? '(no answer)'} v${r.version ?? '-'}`)
    .join('\n');
}

/** An HTTP round-robin load balancer on 127.0.0.1 over `targets` (http://127.0.0.1:PORT each). */
export async function startBalancer(targets: readonly string[]): Promise<Balancer> {
  let next = 0;
  const counts = new Map<string, number>();
  const log: BalancedRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const target = targets[next++ % targets.length] as string;
    counts.set(target, (counts.get(target) ?? 0) + 1);
    const entry: BalancedRequest = {
      target,
      path: (req.url ?? '/').split('?')[0] ?? '/',
      at: new Date().toISOString(),
    };
    log.push(entry);
    const upstream = http.request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers, agent },
      (answer) => {
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (entry.path.includes('/metadata/')) {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.on('end', () => {
            try {
              const v = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.data?.current_version;
              if (typeof v === 'number') entry.version = v;
            } catch {
              // not JSON: no version
            }
          });
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      entry.status = 502;
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
    counts,
    log,
    async close() {
      server.closeAllConnections();
      agent.destroy();
      await closeServer(server);
    },
  };
}
