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
 * with a TransportError (EBADANSWER), never a guess; an answer above MAX_ANSWER_BYTES ends it with
 * ANSWER_TOO_LARGE. What is received is read in linear time (no piece is copied or parsed twice).
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

/**
 * The most bytes one answer may take as it is received: status line, headers and body with its chunk framing
 * (32 MiB, Vault's own default max_request_size). A Vault answer is far smaller: a KV secret is at most 1 MiB
 * with integrated storage's default max_entry_size, and an environment variable at most 128 KiB. Beyond it the
 * request fails (ANSWER_TOO_LARGE) and the connection is closed: a server that streams an endless body cannot
 * grow our memory or hold a start past --wait.
 */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** Our code for an answer above MAX_ANSWER_BYTES: not retried (the same server would send it again). */
export const ANSWER_TOO_LARGE = 'EANSWERTOOLARGE';

/** MAX_ANSWER_BYTES in words, for messages. */
export const MAX_ANSWER_TEXT = `${MAX_ANSWER_BYTES / (1024 * 1024)} MiB`;

function tooLarge(): TransportError {
  return new TransportError(ANSWER_TOO_LARGE, `answer larger than ${MAX_ANSWER_TEXT}`);
}

/** Bytes appended at the end, in amortised linear time (the capacity doubles), read as one Buffer. */
export class ByteBuffer {
  private buf: Buffer = Buffer.alloc(0);
  length = 0;

  append(chunk: Buffer, from = 0, to = chunk.length): void {
    const need = this.length + (to - from);
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2, 1024));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    if (to - from <= 16) {
      for (let i = from, at = this.length; i < to; i++, at++) this.buf[at] = chunk[i] as number;
    } else {
      chunk.copy(this.buf, this.length, from, to);
    }
    this.length = need;
  }

  clear(): void {
    this.length = 0;
  }

  /** The bytes so far (a view: valid until the next append). */
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

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

/** Byte → its value as a hex digit, or -1. */
const HEX_VALUE = Int8Array.from({ length: 256 }, (_, byte) => {
  const c = String.fromCharCode(byte);
  return /^[0-9A-Fa-f]$/.test(c) ? Number.parseInt(c, 16) : -1;
});

/**
 * Decodes a chunked body incrementally: each byte is looked at once, whatever the pieces the body arrives in.
 * Chunk extensions and trailers are read and dropped. Throws a TransportError: EBADANSWER on anything
 * malformed, ANSWER_TOO_LARGE for a chunk that would take the body past `limit` (before reading it).
 */
export class ChunkedDecoder {
  readonly body = new ByteBuffer();
  private state: 'size' | 'data' | 'cr' | 'lf' | 'trailer' = 'size';
  /** The size or trailer line read so far (CR included). */
  private line = new ByteBuffer();
  private remaining = 0;
  private trailerBytes = 0;
  private readonly limit: number;

  constructor(limit = MAX_ANSWER_BYTES) {
    this.limit = limit;
  }

  /** Reads `chunk` from `from`: the offset just after the answer once it is complete, else undefined. */
  push(chunk: Buffer, from = 0): number | undefined {
    let pos = from;
    while (pos < chunk.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, chunk.length - pos);
        this.body.append(chunk, pos, pos + n);
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) {
          if (chunk[pos] === 0x0d && chunk[pos + 1] === 0x0a) {
            pos += 2; // the chunk's CR LF, when both are here
            this.state = 'size';
          } else this.state = 'cr';
        }
      } else if (this.state === 'cr' || this.state === 'lf') {
        if (chunk[pos] !== (this.state === 'cr' ? 0x0d : 0x0a)) throw protocolError('chunk end');
        this.state = this.state === 'cr' ? 'lf' : 'size';
        pos++;
      } else if (this.state === 'size' && this.line.length === 0 && this.sizeAt(chunk, pos) > 0) {
        pos = this.sizeEnd; // the usual size line, "HEX\r\n", read fast: one chunk of 1 byte each is 6 bytes
      } else {
        // A line (size or trailer) ends at CR LF; a lone LF is a character of the line.
        let eol = -1;
        for (let lf = chunk.indexOf(0x0a, pos); lf >= 0; lf = chunk.indexOf(0x0a, lf + 1)) {
          const cr =
            lf > pos ? chunk[lf - 1] === 0x0d : this.line.length > 0 && this.line.view().at(-1) === 0x0d;
          if (cr) {
            eol = lf;
            break;
          }
        }
        let text: string;
        if (eol >= 0 && this.line.length === 0) {
          // The whole line is in this piece (the usual case): no copy.
          if (eol - pos > 4096 + 1) throw protocolError('chunk size line');
          text = chunk.toString('latin1', pos, eol - 1); // without the CR
        } else {
          const to = eol < 0 ? chunk.length : eol;
          this.line.append(chunk, pos, to);
          if (this.line.length > 4096 + 1) throw protocolError('chunk size line');
          if (eol < 0) break;
          text = this.line.view().toString('latin1', 0, this.line.length - 1);
          this.line.clear();
        }
        pos = eol + 1;
        if (this.state === 'trailer' && this.trailerBytes + text.length > MAX_HEAD_BYTES)
          throw protocolError('trailers too large');
        if (this.state === 'trailer') {
          if (text === '') return pos;
          this.trailerBytes += text.length + 2;
          continue;
        }
        const sizeText = text.split(';')[0]?.trim() ?? '';
        if (!/^[0-9A-Fa-f]{1,12}$/.test(sizeText)) throw protocolError('chunk size');
        this.startChunk(Number.parseInt(sizeText, 16));
      }
    }
    return undefined;
  }

  private sizeEnd = 0;

  /**
   * A size line of 1 to 12 hex digits and CR LF, whole at `pos`: starts its chunk and returns its length (the
   * end in `sizeEnd`); 0 for anything else (extensions, spaces, a line cut by the piece), read the slow way.
   */
  private sizeAt(chunk: Buffer, pos: number): number {
    let size = 0;
    let i = pos;
    for (; i < chunk.length && i - pos < 12; i++) {
      const digit = HEX_VALUE[chunk[i] as number] as number;
      if (digit < 0) break;
      size = size * 16 + digit;
    }
    if (i === pos || i + 1 >= chunk.length || chunk[i] !== 0x0d || chunk[i + 1] !== 0x0a) return 0;
    this.startChunk(size);
    this.sizeEnd = i + 2;
    return i + 2 - pos;
  }

  private startChunk(size: number): void {
    if (size === 0) {
      this.state = 'trailer';
      return;
    }
    if (this.body.length + size > this.limit) throw tooLarge();
    this.remaining = size;
    this.state = 'data';
  }
}

/**
 * Pure: decodes a chunked body at `from`. Undefined while incomplete; else the body and where the answer ends.
 * Chunk extensions and trailers are read and dropped.
 */
export function parseChunked(buf: Buffer, from: number): { body: Buffer; end: number } | undefined {
  const decoder = new ChunkedDecoder();
  const end = decoder.push(buf, from);
  return end === undefined ? undefined : { body: decoder.body.view(), end };
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
      let parsed: ResponseHead | undefined;
      let settled = false;
      /** Every byte received for this request (interim answers included): at most MAX_ANSWER_BYTES. */
      let received = 0;
      /** The head so far; `headStart`: where the current head starts in it (after interim answers). */
      const headBytes = new ByteBuffer();
      let headStart = 0;
      /** How far headBytes was searched for the end of the head (each byte is searched once). */
      let searched = 0;
      const bodyBytes = new ByteBuffer();
      let chunked: ChunkedDecoder | undefined;
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
      /**
       * Reads body bytes from `chunk` at `from`; answers once the body is complete. Bytes after the answer that
       * we did not ask for: the connection is not trusted again.
       */
      const readBody = (chunk: Buffer, from: number) => {
        const { body, keepAlive } = parsed as ResponseHead;
        if (body.kind === 'none') {
          answer(Buffer.alloc(0), keepAlive && from === chunk.length);
        } else if (body.kind === 'length') {
          const to = from + Math.min(body.length - bodyBytes.length, chunk.length - from);
          bodyBytes.append(chunk, from, to);
          if (bodyBytes.length === body.length) answer(bodyBytes.view(), keepAlive && to === chunk.length);
        } else if (body.kind === 'chunked') {
          const end = (chunked as ChunkedDecoder).push(chunk, from);
          if (end !== undefined)
            answer((chunked as ChunkedDecoder).body.view(), keepAlive && end === chunk.length);
        } else {
          bodyBytes.append(chunk, from); // to the end of the connection
        }
      };
      /** Reads the head (after any interim answers), then hands what follows to readBody. */
      const readHead = (chunk: Buffer) => {
        headBytes.append(chunk);
        for (;;) {
          const view = headBytes.view();
          const end = view.indexOf('\r\n\r\n', Math.max(headStart, searched - 3));
          if (end < 0) {
            if (view.length - headStart > MAX_HEAD_BYTES) throw protocolError('head too large');
            searched = view.length;
            return;
          }
          const head = parseResponseHead(view.subarray(headStart, end + 4), req.method) as ResponseHead;
          const bodyAt = headStart + head.bodyStart;
          if (head.statusCode < 200) {
            headStart = bodyAt; // an interim answer (100 Continue): the real one follows
            searched = bodyAt;
            continue;
          }
          parsed = head;
          // A declared length past the limit is refused before its first byte is read.
          if (head.body.kind === 'length' && bodyAt + head.body.length > MAX_ANSWER_BYTES) throw tooLarge();
          if (head.body.kind === 'chunked') chunked = new ChunkedDecoder(MAX_ANSWER_BYTES - bodyAt);
          readBody(view, bodyAt);
          return;
        }
      };
      const onData = (chunk: Buffer) => {
        try {
          received += chunk.length;
          if (received > MAX_ANSWER_BYTES) throw tooLarge();
          if (parsed) readBody(chunk, 0);
          else readHead(chunk);
        } catch (error) {
          finish(error instanceof TransportError ? error : protocolError('unreadable'));
        }
      };
      /** The server closed its side: the end of a body read to the end of the connection, else too early. */
      const onEnd = () => {
        if (settled) return;
        if (parsed?.body.kind === 'close') answer(bodyBytes.view(), false);
        else
          finish(
            new TransportError(
              'ECONNRESET',
              parsed
                ? 'connection closed in the middle of the answer'
                : 'connection closed before the answer',
            ),
          );
      };
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
