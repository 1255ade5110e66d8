import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ANSWER_TOO_LARGE,
  ByteBuffer,
  ChunkedDecoder,
  MAX_ANSWER_BYTES,
  MAX_HEAD_BYTES,
  parseChunked,
  parseResponseHead,
  requestHead,
  requestHeaders,
  TransportError,
} from '../../src/vault/transport.js';

const b = (text: string) => Buffer.from(text, 'latin1');

describe('requestHead', () => {
  it('writes the request line, Host and the headers', () => {
    const url = new URL('http://127.0.0.1:8200/v1/secret/data/app?version=2');
    expect(requestHead('GET', url, { Accept: 'application/json', 'X-Vault-Token': 't' })).toBe(
      'GET /v1/secret/data/app?version=2 HTTP/1.1\r\nHost: 127.0.0.1:8200\r\nAccept: application/json\r\nX-Vault-Token: t\r\n\r\n',
    );
  });

  it.each([
    ['a CR LF in a value (header injection)', { 'X-Vault-Token': 'sekrit\r\nX-Evil: 1' }],
    ['a LF in a value', { 'X-Vault-Namespace': 'sekrit\nb' }],
    ['a NUL in a value', { 'X-Vault-Token': 'sekrit\u0000b' }],
    ['a character above U+00FF', { 'X-Vault-Token': 'sekrit\u0100' }],
    ['a space in a name', { 'X Vault': 'sekrit' }],
    ['a colon in a name', { 'X:Vault': 'sekrit' }],
  ])('refuses %s, naming no value', (_, headers) => {
    const url = new URL('http://127.0.0.1:8200/v1/x');
    expect(() => requestHead('GET', url, headers)).toThrow(TypeError);
    try {
      requestHead('GET', url, headers);
    } catch (error) {
      expect(error).not.toBeInstanceOf(TransportError); // a bug to report, never a reason to retry
      expect(String((error as Error).message)).not.toMatch(/sekrit|Evil/);
    }
  });

  it('refuses a method that is not a token', () => {
    expect(() => requestHead('GET /x', new URL('http://h/v1/x'), {})).toThrow(TypeError);
  });
});

describe('requestHeaders', () => {
  it('adds Accept, and the body headers of a JSON body', () => {
    expect(requestHeaders('POST', new URL('http://h:1/v1/x'), { 'X-Vault-Token': 't' }, 12)).toEqual({
      Accept: 'application/json',
      'X-Vault-Token': 't',
      'Content-Type': 'application/json',
      'Content-Length': '12',
    });
    expect(requestHeaders('GET', new URL('http://h:1/v1/x'), undefined, undefined)).toEqual({
      Accept: 'application/json',
    });
    expect(requestHeaders('PUT', new URL('http://h:1/v1/x'), undefined, undefined)).toEqual({
      Accept: 'application/json',
      'Content-Length': '0',
    });
  });

  it('sends user:password@ of the address as Basic authentication (as node:http did)', () => {
    const headers = requestHeaders('GET', new URL('http://us%40er:p%3Ass@h:1/v1/x'), undefined, undefined);
    expect(headers.Authorization).toBe(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
  });
});

describe('parseResponseHead', () => {
  it('is undefined while the head is incomplete', () => {
    expect(parseResponseHead(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n'), 'GET')).toBeUndefined();
  });

  it.each<[string, string, { status: number; kind: string; length?: number; keepAlive: boolean }]>([
    [
      'a length',
      'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n',
      { status: 200, kind: 'length', length: 12, keepAlive: true },
    ],
    [
      'chunked',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      { status: 200, kind: 'chunked', keepAlive: true },
    ],
    [
      'Connection: close',
      'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      { status: 404, kind: 'length', length: 0, keepAlive: false },
    ],
    [
      'no length: to the end of the connection',
      'HTTP/1.1 200 OK\r\n\r\n',
      { status: 200, kind: 'close', keepAlive: false },
    ],
    ['204: no body', 'HTTP/1.1 204 No Content\r\n\r\n', { status: 204, kind: 'none', keepAlive: true }],
    [
      'HTTP/1.0 without keep-alive',
      'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n',
      { status: 200, kind: 'length', length: 1, keepAlive: false },
    ],
    [
      'no reason phrase',
      'HTTP/1.1 503\r\nContent-Length: 1\r\n\r\n',
      { status: 503, kind: 'length', length: 1, keepAlive: true },
    ],
    [
      'equal repeated lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n',
      { status: 200, kind: 'length', length: 3, keepAlive: true },
    ],
    [
      'chunked and a length: chunked, not reused',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      { status: 200, kind: 'chunked', keepAlive: false },
    ],
    [
      'another coding: to the end',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      { status: 200, kind: 'close', keepAlive: false },
    ],
  ])('%s', (_, text, want) => {
    const head = parseResponseHead(b(`${text}body`), 'GET');
    expect(head?.statusCode).toBe(want.status);
    expect(head?.body.kind).toBe(want.kind);
    if (want.length !== undefined) expect(head?.body).toEqual({ kind: 'length', length: want.length });
    expect(head?.keepAlive).toBe(want.keepAlive);
    expect(head?.bodyStart).toBe(text.length);
  });

  it('reads Retry-After, and joins a repeated header', () => {
    const head = parseResponseHead(
      b('HTTP/1.1 429 Too Many\r\nRetry-After:  7 \r\nX-A: 1\r\nx-a: 2\r\n\r\n'),
      'GET',
    );
    expect(head?.headers.get('retry-after')).toBe('7');
    expect(head?.headers.get('x-a')).toBe('1, 2');
  });

  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
    ['HTTP/2 text', 'HTTP/2 200\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['a header without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n'],
    ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n'],
    ['a negative length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n'],
    ['differing lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n'],
    ['differing lengths in one field', 'HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n'],
  ])('refuses %s (EBADANSWER)', (_, text) => {
    expect(() => parseResponseHead(b(text), 'GET')).toThrow(expect.objectContaining({ code: 'EBADANSWER' }));
  });

  it('refuses a head larger than MAX_HEAD_BYTES, complete or not', () => {
    const big = `HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n`;
    expect(() => parseResponseHead(b(big), 'GET')).toThrow(expect.objectContaining({ code: 'EBADANSWER' }));
    expect(() => parseResponseHead(b(`${big}\r\n`), 'GET')).toThrow(
      expect.objectContaining({ code: 'EBADANSWER' }),
    );
  });
});

describe('parseChunked', () => {
  it('decodes chunks, extensions and trailers, and says where the answer ends', () => {
    const text = 'XX5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT';
    const done = parseChunked(b(text), 2);
    expect(done?.body.toString()).toBe('hello, world');
    expect(done?.end).toBe(text.length - 4);
  });

  it.each(['5\r\nhel', '5\r\nhello\r\n', '5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\nTrailer: x\r\n', '1'])(
    'is undefined while incomplete: %j',
    (text) => {
      expect(parseChunked(b(text), 0)).toBeUndefined();
    },
  );

  it.each([
    ['a size that is not hex', 'zz\r\n'],
    ['a negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['a huge size', '1234567890abc\r\n'],
    ['a chunk longer than its size', '3\r\nhello\r\n0\r\n\r\n'],
    ['a size line that never ends', 'a'.repeat(5000)],
  ])('refuses %s (EBADANSWER)', (_, text) => {
    expect(() => parseChunked(b(text), 0)).toThrow(expect.objectContaining({ code: 'EBADANSWER' }));
  });
});

describe('ChunkedDecoder', () => {
  const text = '5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\nTrailer: x\r\nMore: y\r\n\r\nNEXT';

  it('decodes the same body whatever the pieces it arrives in (here: one byte at a time)', () => {
    const decoder = new ChunkedDecoder();
    const bytes = b(text);
    let end: number | undefined;
    let at = 0;
    for (; at < bytes.length && end === undefined; at++) end = decoder.push(bytes.subarray(at, at + 1));
    expect(decoder.body.view().toString()).toBe('hello, world!');
    // The answer ended with the byte just read (the last LF), and NEXT was not read.
    expect(end).toBe(1);
    expect(at).toBe(text.length - 'NEXT'.length);
  });

  it('any split gives the body whole', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: text.length }), { maxLength: 8 }), (cuts) => {
        const bytes = b(text);
        const points = [...new Set(cuts)].sort((x, y) => x - y);
        const decoder = new ChunkedDecoder();
        let from = 0;
        let done = false;
        for (const to of [...points, bytes.length]) {
          if (done || to <= from) continue;
          done = decoder.push(bytes.subarray(from, to)) !== undefined;
          from = to;
        }
        expect(done).toBe(true);
        expect(decoder.body.view().toString()).toBe('hello, world!');
      }),
    );
  });

  it('refuses a chunk that would take the body past its limit, before reading it (ANSWER_TOO_LARGE)', () => {
    const decoder = new ChunkedDecoder(10);
    expect(decoder.push(b('5\r\nhello\r\n'))).toBeUndefined();
    expect(() => decoder.push(b('6\r\n'))).toThrow(expect.objectContaining({ code: ANSWER_TOO_LARGE }));
    expect(() => new ChunkedDecoder().push(b(`${(MAX_ANSWER_BYTES + 1).toString(16)}\r\n`))).toThrow(
      expect.objectContaining({ code: ANSWER_TOO_LARGE, message: 'answer larger than 32 MiB' }),
    );
  });

  it('a CR LF cut between two pieces still ends the line', () => {
    const decoder = new ChunkedDecoder();
    expect(decoder.push(b('3\r'))).toBeUndefined();
    expect(decoder.push(b('\nabc\r'))).toBeUndefined();
    expect(decoder.push(b('\n0\r\n\r'))).toBeUndefined();
    expect(decoder.push(b('\n'))).toBe(1);
    expect(decoder.body.view().toString()).toBe('abc');
  });
});

describe('ByteBuffer', () => {
  it('appends small and large pieces, in order', () => {
    const buffer = new ByteBuffer();
    const want: number[] = [];
    for (let i = 0; i < 300; i++) {
      const piece = Buffer.alloc(i % 40, i & 0xff);
      buffer.append(piece);
      want.push(...piece);
    }
    expect([...buffer.view()]).toEqual(want);
    buffer.clear();
    expect(buffer.length).toBe(0);
    buffer.append(b('xyz'), 1, 2);
    expect(buffer.view().toString()).toBe('y');
  });
});
