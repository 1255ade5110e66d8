import type * as Http from 'node:http';
import type * as Https from 'node:https';

/**
 * The HTTP transport under node-vault. node-vault accepts a `request-promise`-style function; ours uses Node's
 * http/https with kept-alive connections, a per-request timeout and our TLS settings, and it never turns a
 * failure into an object that carries request headers (axios errors carry X-Vault-Token when printed).
 */
export interface TlsSettings {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

export interface TransportOptions {
  tls: TlsSettings;
  /** Default time limit of one request, from start to the last byte of the body. */
  timeoutMs: number;
  maxSockets: number;
}

/** The request options node-vault hands over (after it adds uri and headers). */
export interface TransportRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  /** The whole request at most (connecting, sending, headers, body); default: the transport's timeoutMs. */
  timeoutMs?: number;
  /** Filled in by the transport: the Retry-After header of the response, if any. */
  retryAfter?: string;
}

export interface TransportResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

/** A failure below HTTP (refused, reset, timeout, TLS). Carries the errno code, never headers or bodies. */
export class TransportError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/;

export function isTlsFailure(error: TransportError): boolean {
  return TLS_CODES.test(error.code);
}

export type Transport = ((req: TransportRequest) => Promise<TransportResponse>) & { close(): void };

export function createTransport(options: TransportOptions): Transport {
  // Loaded here, not at module load: the single executable's start-up snapshot cannot hold node:http (its
  // parser is a native object), and a start without references never needs it. node:https: see secureAgent.
  const http = process.getBuiltinModule('node:http') as typeof Http;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  // Created at the first https request: node:https loads node:tls, which parses Node's bundled certificates.
  let httpsAgent: Https.Agent | undefined;
  const secureAgent = (): Https.Agent => {
    httpsAgent ??= new (process.getBuiltinModule('node:https') as typeof Https).Agent({
      keepAlive: true,
      maxSockets: options.maxSockets,
      rejectUnauthorized: options.tls.rejectUnauthorized,
      ...(options.tls.ca ? { ca: options.tls.ca } : {}),
      ...(options.tls.cert ? { cert: options.tls.cert } : {}),
      ...(options.tls.key ? { key: options.tls.key } : {}),
      ...(options.tls.servername ? { servername: options.tls.servername } : {}),
    });
    return httpsAgent;
  };

  const send = (req: TransportRequest): Promise<TransportResponse> =>
    new Promise((resolve, reject) => {
      const url = new URL(req.uri);
      const isHttps = url.protocol === 'https:';
      const payload = req.json === undefined ? undefined : Buffer.from(JSON.stringify(req.json));
      const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
      if (payload) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const request = (isHttps ? (process.getBuiltinModule('node:https') as typeof Https) : http).request(
        url,
        { method: req.method, headers, agent: isHttps ? secureAgent() : httpAgent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => {
            clearTimeout(timer);
            reject(new TransportError('ECONNRESET', 'connection reset while reading the response'));
          });
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            if (typeof retryAfter === 'string') req.retryAfter = retryAfter;
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = text === '' ? undefined : JSON.parse(text);
            } catch {
              body = undefined; // not JSON (a proxy's HTML page, say): the status code is what counts
            }
            clearTimeout(timer);
            resolve({ statusCode: res.statusCode ?? 0, body, request: { path: url.pathname } });
          });
        },
      );
      // A limit on the whole exchange, not on idle time: a server that accepts and never answers, or drips the
      // body a byte at a time, or a connection that is never accepted, all end here.
      const timeoutMs = req.timeoutMs ?? options.timeoutMs;
      const timer = setTimeout(() => {
        reject(new TransportError('ETIMEDOUT', `no complete answer within ${timeoutMs} ms`));
        request.destroy();
      }, timeoutMs);
      request.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err instanceof TransportError) return reject(err);
        const code = err.code ?? 'EUNKNOWN';
        // Only the errno code and Node's own short message: nothing of the request is in it.
        reject(new TransportError(code, err.message.split('\n')[0] ?? code));
      });
      if (payload) request.end(payload);
      else request.end();
    });

  return Object.assign(send, {
    close: () => {
      httpAgent.destroy();
      httpsAgent?.destroy();
    },
  });
}
