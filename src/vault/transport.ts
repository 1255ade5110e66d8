import type * as Net from 'node:net';
import type * as Tls from 'node:tls';
import { basicCredentials } from './address.js';

/**
 * The HTTP transport under the Vault client: HTTP/1.1 over kept-alive connections, written for what a Vault
 * client needs (one request at a time per connection, JSON bodies), with a per-request timeout and our TLS
 * settings; a failure never becomes an object that carries request headers or bodies.
 *
 * Not node:http: its client (ClientRequest, IncomingMessage streams, the Agent) costs about 0.45 ms of CPU per
 * request in a fresh process, against about 0.15 ms here (100 reads: 50 ms against 17 ms, measured), and
 * loading it is a part of every start. What a server may send is parsed strictly: a malformed status line or
 * header, an oversized head, a bad chunk, conflicting lengths or bytes after the answer end the connection
 * with a TransportError (EBADANSWER), never a guess.
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
  /** Connections kept open for reuse at most (the client never has more requests in flight). */
  maxSockets: number;
}

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

/** A failure below HTTP (refused, reset, timeout, TLS, a malformed answer). Carries a code, never headers. */
export class TransportError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}

const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME|^EPROTO$/;

/**
 * Our code for an answer that is not HTTP as we accept it (a malformed head, a bad chunk): not a TLS failure,
 * whatever the server is.
 */
export const BAD_ANSWER = 'EBADANSWER';

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

/** The longest status line and headers we read (node:http's default is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header values: visible ASCII, space, tab and obs-text; never CR, LF or NUL (no header injection). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Pure: the bytes of a request head. Throws (not a TransportError: a bug, never retried) on a bad header. */
export function requestHead(method: string, url: URL, headers: Record<string, string>): string {
  if (!TOKEN.test(method)) throw new TypeError('invalid HTTP method');
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new TypeError(
        `a request header (${TOKEN.test(name) ? name : 'its name'}) holds a character HTTP does not allow`,
      );
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/** Pure: the headers of a request, ours added to the caller's. */
export function requestHeaders(
  method: string,
  url: URL,
  given: Record<string, string> | undefined,
  bodyLength: number | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { Accept: 'application/json', ...given };
  // user:password@ in the address: Basic authentication, as node:http sends it (a proxy in front of Vault).
  // The password is a credential: see address.ts (masked, never printed, concealed from /proc).
  const basic = basicCredentials(url);
  if (basic !== undefined) headers.Authorization = `Basic ${basic}`;
  if (bodyLength !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(bodyLength);
  } else if (method !== 'GET' && method !== 'LIST' && method !== 'HEAD') {
    headers['Content-Length'] = '0';
  }
  return headers;
}

export interface ResponseHead {
  statusCode: number;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Map<string, string>;
  /** Where the body starts in the buffer. */
  bodyStart: number;
  /** The connection may carry another request after this answer. */
  keepAlive: boolean;
  body: { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };
}

function protocolError(what: string): TransportError {
  return new TransportError(BAD_ANSWER, `malformed answer from the server: ${what}`);
}

/**
 * Pure: parses a response head at the start of `buf`. Undefined while incomplete; throws a TransportError
 * (EBADANSWER) on anything malformed. `method` matters for the body of a HEAD (none).
 */
export function parseResponseHead(buf: Buffer, method: string): ResponseHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD_BYTES) throw protocolError('head too large');
    return undefined;
  }
  if (end > MAX_HEAD_BYTES) throw protocolError('head too large');
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/.exec(lines[0] ?? '');
  if (!status) throw protocolError('status line');
  const minor = status[1];
  const statusCode = Number(status[2]);
  const headers = new Map<string, string>();
  const lengths: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw protocolError('header line');
    const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw protocolError('header value');
    const key = name.toLowerCase();
    if (key === 'content-length') lengths.push(...value.split(',').map((v) => v.trim()));
    const prior = headers.get(key);
    headers.set(key, prior === undefined ? value : `${prior}, ${value}`);
  }
  const connection = (headers.get('connection') ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  let keepAlive = minor === '1' ? !connection.includes('close') : connection.includes('keep-alive');
  const bodyStart = end + 4;
  let body: ResponseHead['body'];
  const te = headers.get('transfer-encoding');
  if (statusCode < 200 || statusCode === 204 || statusCode === 304 || method === 'HEAD') {
    body = { kind: 'none' };
  } else if (te !== undefined) {
    // Chunked must be the last coding; anything else is read to the end of the connection. Content-Length is
    // then ignored (RFC 9112 6.3), and the connection not reused.
    const codings = te
      .toLowerCase()
      .split(',')
      .map((t) => t.trim());
    if (codings.at(-1) === 'chunked' && codings.length === 1) body = { kind: 'chunked' };
    else {
      body = { kind: 'close' };
      keepAlive = false;
    }
    if (lengths.length > 0) keepAlive = false;
  } else if (lengths.length > 0) {
    if (!lengths.every((l) => /^\d{1,15}$/.test(l) && l === lengths[0]))
      throw protocolError('Content-Length');
    body = { kind: 'length', length: Number(lengths[0]) };
  } else {
    body = { kind: 'close' };
    keepAlive = false;
  }
  return { statusCode, headers, bodyStart, keepAlive, body };
}

/**
 * Pure: decodes a chunked body at `from`. Undefined while incomplete; else the body and where the answer ends.
 * Chunk extensions and trailers are read and dropped.
 */
export function parseChunked(buf: Buffer, from: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let pos = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) {
      if (buf.length - pos > 4096) throw protocolError('chunk size line');
      return undefined;
    }
    const sizeText = buf.toString('latin1', pos, eol).split(';')[0]?.trim() ?? '';
    if (!/^[0-9A-Fa-f]{1,12}$/.test(sizeText)) throw protocolError('chunk size');
    const size = Number.parseInt(sizeText, 16);
    pos = eol + 2;
    if (size === 0) {
      // Trailers, up to an empty line.
      for (;;) {
        const t = buf.indexOf('\r\n', pos);
        if (t < 0) {
          if (buf.length - pos > MAX_HEAD_BYTES) throw protocolError('trailers too large');
          return undefined;
        }
        if (t === pos) return { body: Buffer.concat(parts), end: t + 2 };
        pos = t + 2;
      }
    }
    if (buf.length < pos + size + 2) return undefined;
    if (buf[pos + size] !== 0x0d || buf[pos + size + 1] !== 0x0a) throw protocolError('chunk end');
    parts.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

type Socket = Net.Socket;

export function createTransport(options: TransportOptions): Transport {
  /** Idle kept-alive connections, per origin (scheme://host:port). */
  const idle = new Map<string, Socket[]>();
  const all = new Set<Socket>();
  /** The listener that drops an idle connection (removed again when it is taken). */
  const dropper = new WeakMap<Socket, () => void>();
  let closed = false;

  const connect = (url: URL): Socket => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    let socket: Socket;
    if (url.protocol === 'https:') {
      const tls = process.getBuiltinModule('node:tls') as typeof Tls;
      const net = process.getBuiltinModule('node:net') as typeof Net;
      const servername = options.tls.servername ?? (net.isIP(host) ? undefined : host);
      socket = tls.connect({
        host,
        port,
        rejectUnauthorized: options.tls.rejectUnauthorized,
        ...(servername ? { servername } : {}),
        ...(options.tls.ca ? { ca: options.tls.ca } : {}),
        ...(options.tls.cert ? { cert: options.tls.cert } : {}),
        ...(options.tls.key ? { key: options.tls.key } : {}),
      });
    } else {
      socket = (process.getBuiltinModule('node:net') as typeof Net).connect({ host, port });
    }
    socket.setNoDelay(true);
    all.add(socket);
    socket.once('close', () => all.delete(socket));
    return socket;
  };

  /** An idle connection to the origin, or a new one. */
  const take = (url: URL, origin: string): Socket => {
    const list = idle.get(origin);
    while (list?.length) {
      const socket = list.pop() as Socket;
      const drop = dropper.get(socket);
      if (drop) {
        socket.off('data', drop);
        socket.off('error', drop);
        socket.off('end', drop);
        dropper.delete(socket);
      }
      if (socket.destroyed || !socket.writable) continue;
      socket.ref();
      return socket;
    }
    return connect(url);
  };

  /** Keeps a connection for the next request; an idle one the server closes, or talks on, goes. */
  const release = (socket: Socket, origin: string): void => {
    let list = idle.get(origin);
    if (!list) {
      list = [];
      idle.set(origin, list);
    }
    if (closed || list.length >= options.maxSockets) {
      socket.destroy();
      return;
    }
    const drop = () => {
      socket.destroy();
      const at = list.indexOf(socket);
      if (at >= 0) list.splice(at, 1);
    };
    dropper.set(socket, drop);
    socket.on('data', drop);
    socket.on('error', drop);
    socket.on('end', drop);
    socket.unref();
    list.push(socket);
  };

  const send = (req: TransportRequest): Promise<TransportResponse> =>
    new Promise((resolve, reject) => {
      const url = new URL(req.uri);
      const origin = `${url.protocol}//${url.host}`;
      const payload = req.json === undefined ? undefined : Buffer.from(JSON.stringify(req.json));
      const head = requestHead(
        req.method,
        url,
        requestHeaders(req.method, url, req.headers, payload?.length),
      );
      const socket = take(url, origin);
      let buf: Buffer = Buffer.alloc(0);
      let parsed: ResponseHead | undefined;
      let settled = false;
      const finish = (error: TransportError | undefined, response?: TransportResponse, reuse = false) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        if (error) {
          socket.destroy();
          reject(error);
          return;
        }
        if (reuse) release(socket, origin);
        else socket.destroy();
        resolve(response as TransportResponse);
      };
      const answer = (body: Buffer, reuse: boolean) => {
        const head = parsed as ResponseHead;
        const retryAfter = head.headers.get('retry-after');
        if (retryAfter !== undefined) req.retryAfter = retryAfter;
        const index = head.headers.get('x-vault-index');
        if (index !== undefined) req.vaultIndex = index;
        // Go's TLS listener answers a plain HTTP request with this text and a 400: not Vault's answer.
        if (
          url.protocol === 'http:' &&
          head.statusCode === 400 &&
          body.subarray(0, 64).toString('latin1').startsWith('Client sent an HTTP request to an HTTPS server')
        ) {
          finish(new TransportError(PLAIN_HTTP_TO_TLS, 'the server expects TLS'));
          return;
        }
        let json: unknown;
        try {
          json = body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined; // not JSON (a proxy's HTML page, say): the status code is what counts
        }
        finish(
          undefined,
          { statusCode: head.statusCode, body: json, request: { path: url.pathname } },
          reuse,
        );
      };
      /** Tries to complete the answer from what was read; `ended`: the server closed its side. */
      const progress = (ended: boolean) => {
        try {
          while (!parsed) {
            const h = parseResponseHead(buf, req.method);
            if (!h) break;
            if (h.statusCode >= 100 && h.statusCode < 200) {
              buf = buf.subarray(h.bodyStart); // an interim answer (100 Continue): the real one follows
              continue;
            }
            parsed = h;
          }
          if (!parsed) {
            if (ended) finish(new TransportError('ECONNRESET', 'connection closed before the answer'));
            return;
          }
          const { body, bodyStart, keepAlive } = parsed;
          if (body.kind === 'none' || body.kind === 'length') {
            const length = body.kind === 'none' ? 0 : body.length;
            if (buf.length < bodyStart + length) {
              if (ended)
                finish(new TransportError('ECONNRESET', 'connection closed in the middle of the answer'));
              return;
            }
            // Bytes after the answer we did not ask for: the connection is not trusted again.
            answer(
              buf.subarray(bodyStart, bodyStart + length),
              keepAlive && buf.length === bodyStart + length && !ended,
            );
          } else if (body.kind === 'chunked') {
            const done = parseChunked(buf, bodyStart);
            if (!done) {
              if (ended)
                finish(new TransportError('ECONNRESET', 'connection closed in the middle of the answer'));
              return;
            }
            answer(done.body, keepAlive && buf.length === done.end && !ended);
          } else if (ended) {
            answer(buf.subarray(bodyStart), false);
          }
        } catch (error) {
          finish(error instanceof TransportError ? error : protocolError('unreadable'));
        }
      };
      const onData = (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        progress(false);
      };
      const onEnd = () => progress(true);
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'EUNKNOWN';
        // Only the errno code and Node's own short message: nothing of the request is in it.
        finish(new TransportError(code, err.message.split('\n')[0] ?? code));
      };
      // A limit on the whole exchange, not on idle time: a server that accepts and never answers, or drips the
      // body a byte at a time, or a connection that is never accepted, all end here.
      const timeoutMs = req.timeoutMs ?? options.timeoutMs;
      const timer = setTimeout(() => {
        finish(new TransportError('ETIMEDOUT', `no complete answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      socket.write(
        payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1'),
      );
    });

  return Object.assign(send, {
    close: () => {
      closed = true;
      for (const socket of all) socket.destroy();
      all.clear();
      idle.clear();
    },
  });
}
