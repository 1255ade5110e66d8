import { writeSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createLogger,
  FRAGMENT_LENGTH,
  type LogFormat,
  type Logger,
  type LogLevel,
  MASK,
  Masker,
  sanitizeServerText,
} from '../src/log.js';

// The default writer is a synchronous write to fd 2: replace it, to prove it is the only other way out.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, writeSync: vi.fn() };
});

function capture(options: { level?: LogLevel; format?: LogFormat; masker?: Masker } = {}) {
  const lines: string[] = [];
  const log = createLogger({ ...options, write: (line) => lines.push(line) });
  return { log, lines };
}

describe('Masker', () => {
  it('masks every occurrence of a value', () => {
    const masker = new Masker();
    masker.add('s3cr3t-value');
    expect(masker.mask('a s3cr3t-value b s3cr3t-value s3cr3t-values')).toBe(`a ${MASK} b ${MASK} ${MASK}s`);
  });

  it('masks several values, including one that is part of another, whatever the order they came in', () => {
    const masker = new Masker();
    masker.add('abcd');
    masker.add('abcdefgh');
    expect(masker.mask('abcdefgh abcd')).toBe(`${MASK} ${MASK}`);
    const other = new Masker();
    other.add('abcdefgh');
    other.add('abcd');
    expect(other.mask('abcdefgh abcd')).toBe(`${MASK} ${MASK}`);
  });

  it('leaves no character of overlapping values', () => {
    const masker = new Masker();
    masker.add('abcdef12');
    masker.add('ef123456');
    const masked = masker.mask('xx abcdef123456 yy');
    for (const part of ['abc', 'def', '123', '456']) expect(masked).not.toContain(part);
    expect(masked.startsWith('xx ')).toBe(true);
    expect(masked.endsWith(' yy')).toBe(true);
  });

  it('leaves no character of any value, however values overlap or touch (property)', () => {
    // A lower-case string covered by overlapping windows (the values); filler is upper-case. Every lower-case
    // character of the text then belongs to an occurrence of a value and must be masked.
    const scenario = fc
      .record({
        base: fc.stringMatching(/^[a-z0-9]{8,24}$/),
        step: fc.integer({ min: 1, max: 4 }),
        width: fc.integer({ min: 4, max: 8 }),
        order: fc.array(fc.nat()),
      })
      .map(({ base, step, width, order }) => {
        const values = [base.slice(-width)];
        for (let at = 0; at + width <= base.length; at += step) values.push(base.slice(at, at + width));
        // Values come in any order: masking must not depend on it.
        for (const [i, n] of order.entries()) {
          const j = n % values.length;
          const k = i % values.length;
          [values[j], values[k]] = [values[k] as string, values[j] as string];
        }
        return { base, values };
      });
    const filler = fc.stringMatching(/^[A-Z ]{0,3}$/);
    fc.assert(
      fc.property(
        scenario,
        fc.array(fc.oneof(filler, fc.constant(null)), { maxLength: 6 }),
        ({ base, values }, parts) => {
          const masker = new Masker();
          for (const v of values) masker.add(v);
          const text = [base, ...parts.map((p) => p ?? base)].join('');
          const masked = masker.mask(text);
          const kept = masked.split(MASK).join('');
          expect(kept).toBe(text.replace(/[a-z0-9]/g, ''));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('masks each line of a multi-line value on its own (and the whole value)', () => {
    const masker = new Masker();
    masker.add('-----BEGIN KEY-----\nMIIEfirstline\r\nMIIEsecondline\n-----END KEY-----\n');
    expect(masker.mask('got MIIEsecondline here')).toBe(`got ${MASK} here`);
    expect(masker.mask('-----BEGIN KEY-----')).toBe(MASK);
    expect(masker.mask('MIIEfirstline\r\nMIIEsecondline')).not.toMatch(/MIIE/);
  });

  it('masks values trimmed of surrounding whitespace', () => {
    const masker = new Masker();
    masker.add('  padded-secret \n');
    expect(masker.mask('[padded-secret]')).toBe(`[${MASK}]`);
  });

  it('ignores values shorter than 4 characters, and undefined', () => {
    const masker = new Masker();
    masker.add('abc');
    masker.add('');
    masker.add(undefined);
    masker.add('ab\nxyzw');
    expect(masker.mask('abc ab xyzw')).toBe(`abc ab ${MASK}`);
    masker.add('abcd');
    expect(masker.mask('abc abcd')).toBe(`abc ${MASK}`);
  });

  it('treats values literally, not as patterns', () => {
    const masker = new Masker();
    masker.add('a.b*c$1(d)');
    expect(masker.mask('a.b*c$1(d) axbbbc$1(d)')).toBe(`${MASK} axbbbc$1(d)`);
  });

  it('returns text unchanged when it holds no value', () => {
    const masker = new Masker();
    masker.add('secret-value');
    expect(masker.mask('nothing to see')).toBe('nothing to see');
    expect(new Masker().mask('empty masker')).toBe('empty masker');
  });
});

describe('createLogger: text format', () => {
  it('writes one line per message, with fields as key=value, quoting where needed', () => {
    const { log, lines } = capture();
    log.info('resolved', {
      count: 3,
      ok: true,
      path: 'secret/db',
      url: 'https://v:8200/x',
      note: 'two words',
      empty: '',
      quote: 'say "hi"',
      missing: undefined,
    });
    expect(lines).toEqual([
      'vaultrun info: resolved count=3 ok=true path=secret/db url=https://v:8200/x note="two words" empty="" quote="say \\"hi\\""\n',
    ]);
  });

  it('writes messages without fields without a trailing space', () => {
    const { log, lines } = capture();
    log.warn('careful');
    log.error('broken', { x: undefined });
    expect(lines).toEqual(['vaultrun warn: careful\n', 'vaultrun error: broken\n']);
  });
});

describe('createLogger: JSON format', () => {
  it('writes one JSON object per line with time, level, msg and fields', () => {
    const { log, lines } = capture({ format: 'json' });
    const before = Date.now();
    log.warn('slow "Vault"\nreally', { ms: 1500, ok: false, path: 'secret/db', missing: undefined });
    expect(lines).toHaveLength(1);
    const line = lines[0] as string;
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    const entry = JSON.parse(line);
    expect(entry).toEqual({
      time: expect.any(String),
      level: 'warn',
      msg: 'slow "Vault"\nreally',
      ms: 1500,
      ok: false,
      path: 'secret/db',
    });
    expect(Object.keys(entry).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    expect(new Date(entry.time).toISOString()).toBe(entry.time);
    expect(Date.parse(entry.time)).toBeGreaterThanOrEqual(before - 1);
  });
});

describe('createLogger: levels', () => {
  const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
  it.each<[LogLevel, string[]]>([
    ['debug', ['debug', 'info', 'warn', 'error']],
    ['info', ['info', 'warn', 'error']],
    ['warn', ['warn', 'error']],
    ['error', ['error']],
    ['silent', []],
  ])('at %s, writes %j', (level, expected) => {
    const { log, lines } = capture({ level });
    for (const l of LEVELS) log[l](`message at ${l}`);
    expect(lines.map((line) => line.split(':')[0]?.replace('vaultrun ', ''))).toEqual(expected);
  });

  it('defaults to info, and follows changes of the level', () => {
    const { log, lines } = capture();
    expect(log.level).toBe('info');
    log.debug('hidden');
    log.level = 'debug';
    log.debug('shown');
    log.level = 'silent';
    log.error('hidden too');
    expect(lines).toEqual(['vaultrun debug: shown\n']);
  });
});

describe('createLogger: masking', () => {
  const logWith = (format: LogFormat, secret: string, emit: (log: Logger) => void) => {
    const masker = new Masker();
    masker.add(secret);
    const { log, lines } = capture({ format, masker });
    emit(log);
    expect(log.masker).toBe(masker);
    return lines.join('');
  };

  it.each<LogFormat>(['text', 'json'])('masks the message and fields (%s)', (format) => {
    const out = logWith(format, 'hvs.ABCDEFGH', (log) =>
      log.info('token hvs.ABCDEFGH used', { token: 'hvs.ABCDEFGH' }),
    );
    expect(out).not.toContain('ABCDEFGH');
    expect(out).toContain(MASK);
  });

  it.each<[LogFormat, string]>([
    ['json', 'pa"ss\\word'],
    ['json', 'tab\there'],
    ['text', 'has "quotes"'],
    ['text', 'back\\slash'],
  ])('masks values that the %s format would escape: %j', (format, secret) => {
    const out = logWith(format, secret, (log) => {
      log.info(`message ${secret}`, { field: secret });
    });
    // Whatever the escaping, the distinctive parts of the secret must not appear.
    for (const part of secret.split(/["\\\t]/).filter((p) => p.length >= 3)) {
      expect(out).not.toContain(part);
    }
  });

  it('masks values added after the logger was made', () => {
    const { log, lines } = capture();
    log.masker.add('late-secret');
    log.info('now late-secret');
    expect(lines).toEqual([`vaultrun info: now ${MASK}\n`]);
  });
});

describe('createLogger: output', () => {
  beforeEach(() => {
    vi.mocked(writeSync).mockClear();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes only through the given function', () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const console_ = vi.spyOn(console, 'log').mockImplementation(() => {});
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {});
    const { log, lines } = capture({ level: 'debug' });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines).toHaveLength(4);
    for (const spy of [stdout, stderr, console_, consoleError]) expect(spy).not.toHaveBeenCalled();
    expect(writeSync).not.toHaveBeenCalled();
  });

  it('by default writes synchronously to fd 2', () => {
    const log = createLogger();
    log.info('to stderr');
    expect(writeSync).toHaveBeenCalledTimes(1);
    expect(writeSync).toHaveBeenCalledWith(2, 'vaultrun info: to stderr\n');
  });

  it('never throws when writing fails', () => {
    const log = createLogger({
      write: () => {
        throw new Error('EPIPE');
      },
    });
    expect(() => log.error('lost')).not.toThrow();
  });
});

describe('text from a server, and lines that stay lines', () => {
  it('maskUntrusted masks every word holding 6 characters or more of a value, before any cut', () => {
    const masker = new Masker();
    masker.add('hvs.CAESIabcdefghijklmnop');
    const text = 'bad hvs.CAESI token, prefix=hvs.CAE end ...ijklmnop! mid efghij, short hvs.C ok';
    expect(masker.maskUntrusted(text)).toBe(
      `bad ${MASK} token, ${MASK} end ${MASK} mid ${MASK} short hvs.C ok`,
    );
    // mask() alone would leave the pieces: this is what truncation used to expose.
    expect(masker.mask(text)).toContain('hvs.CAE');
  });

  it('maskUntrusted leaves no piece of FRAGMENT_LENGTH characters of any value (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9.]{8,40}$/),
        fc.nat(),
        fc.integer({ min: FRAGMENT_LENGTH, max: 40 }),
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (value, start, length, before, after) => {
          const masker = new Masker();
          masker.add(value);
          const from = start % (value.length - FRAGMENT_LENGTH + 1);
          const out = masker.maskUntrusted(`${before}${value.slice(from, from + length)}${after}`);
          for (let i = 0; i + FRAGMENT_LENGTH <= value.length; i++) {
            expect(out).not.toContain(value.slice(i, i + FRAGMENT_LENGTH));
          }
        },
      ),
    );
  });

  it('sanitizeServerText drops escape sequences and turns control characters and breaks into spaces', () => {
    expect(
      sanitizeServerText('\u001b[31mred\u001b[0m\r\nnext\u2028x\u202ey\u0085z\u001b]0;t\u0007 ok\t!'),
    ).toBe('red next x y z ok !');
  });

  it('text format: every line of a message is its own record line; control characters are escaped', () => {
    const { log, lines } = capture();
    log.error('2 failed:\n  A: x\r\u001b[2Jy\u202e', { hint: 'a\u0085b\u2028c' });
    expect(lines).toHaveLength(1);
    const out = lines[0] as string;
    expect(out.split('\n').filter((l) => l !== '')).toEqual([
      'vaultrun error: 2 failed:',
      'vaultrun error:   A: x\\u000d\\u001b[2Jy\\u202e hint="a\\u0085b\\u2028c"',
    ]);
  });

  it('json format: one line per record, DEL/C1/U+2028/bidi escaped, and it parses back', () => {
    const { log, lines } = capture({ format: 'json' });
    log.error('x\ny\u2028z\u0085\u202e\u007f', { hint: 'h\u2029' });
    const out = lines[0] as string;
    expect(out.endsWith('\n')).toBe(true);
    expect(out.slice(0, -1)).not.toMatch(/[\n\u2028\u2029\u0085\u202e\u007f]/);
    const parsed = JSON.parse(out) as { msg: string; hint: string };
    expect(parsed.msg).toBe('x\ny\u2028z\u0085\u202e\u007f');
    expect(parsed.hint).toBe('h\u2029');
  });
});
