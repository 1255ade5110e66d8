import http from 'node:http';
import https from 'node:https';

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
  /** Filled in by the transport: the X-Vault-Index header of the response, if any. */
  vaultIndex?: string;
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

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME|^EPROTO$/;

/** Our code for an http:// request answered by a TLS listener ("Client sent an HTTP request to an HTTPS server"). */
export const PLAIN_HTTP_TO_TLS = 'ERR_PLAIN_HTTP_TO_TLS_SERVER';

export function isTlsFailure(error: TransportError): boolean {
  return TLS_CODES.test(error.code);
}

/** Pure: what a TLS failure (by its code) means and what to do, in the user's words. */
export function tlsAdvice(code: string): { problem: string; hint: string } {
  switch (code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return {
        problem:
          "Vault's certificate is signed by a CA vaultrun does not trust (a private or self-signed CA?)",
        hint: "set VAULT_CACERT=/path/to/ca.pem (the CA that signed Vault's certificate) or VAULT_CAPATH to a directory of CA files",
      };
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'HOSTNAME_MISMATCH':
      return {
        problem:
          "Vault's certificate is not valid for the host name in VAULT_ADDR (or VAULT_TLS_SERVER_NAME)",
        hint: 'use a name the certificate lists in VAULT_ADDR, or set VAULT_TLS_SERVER_NAME to it',
      };
    case 'CERT_HAS_EXPIRED':
      return {
        problem: "Vault's certificate has expired",
        hint: "renew Vault's certificate (and check this machine's clock)",
      };
    case 'CERT_NOT_YET_VALID':
      return {
        problem: "Vault's certificate is not valid yet",
        hint: "check this machine's clock, or the certificate's start date",
      };
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return {
        problem: 'VAULT_ADDR says https://, but the server did not answer with TLS (plain HTTP?)',
        hint: 'if Vault listens without TLS (tls_disable), write VAULT_ADDR with http://',
      };
    case PLAIN_HTTP_TO_TLS:
      return {
        problem:
          'VAULT_ADDR says http://, but the server expects TLS ("Client sent an HTTP request to an HTTPS server")',
        hint: 'write VAULT_ADDR with https:// (and set VAULT_CACERT if its CA is private)',
      };
    default:
      return {
        problem: 'the TLS handshake failed',
        hint: "set VAULT_CACERT / VAULT_CAPATH to the CA that signed Vault's certificate, or VAULT_TLS_SERVER_NAME",
      };
  }
}

export type Transport = ((req: TransportRequest) => Promise<TransportResponse>) & { close(): void };

export function createTransport(options: TransportOptions): Transport {
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: options.maxSockets,
    rejectUnauthorized: options.tls.rejectUnauthorized,
    ...(options.tls.ca ? { ca: options.tls.ca } : {}),
    ...(options.tls.cert ? { cert: options.tls.cert } : {}),
    ...(options.tls.key ? { key: options.tls.key } : {}),
    ...(options.tls.servername ? { servername: options.tls.servername } : {}),
  });

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
      const request = (isHttps ? https : http).request(
        url,
        { method: req.method, headers, agent: isHttps ? httpsAgent : httpAgent },
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
            const index = res.headers['x-vault-index'];
            if (typeof index === 'string') req.vaultIndex = index;
            const text = Buffer.concat(chunks).toString('utf8');
            clearTimeout(timer);
            // Go's TLS listener answers a plain HTTP request with this text and a 400: not Vault's answer.
            if (
              !isHttps &&
              res.statusCode === 400 &&
              text.startsWith('Client sent an HTTP request to an HTTPS server')
            ) {
              reject(new TransportError(PLAIN_HTTP_TO_TLS, 'the server expects TLS'));
              return;
            }
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
      httpsAgent.destroy();
    },
  });
}
