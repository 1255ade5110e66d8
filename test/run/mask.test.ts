// --mask's streaming replacer: however the output is cut into chunks, the result is the same as masking the
// whole output at once, no value ever passes whole, and output that cannot be the start of a value is emitted
// at once.
import { PassThrough, Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MASK, Masker } from '../../src/log.js';
import { pumpMasked, StreamMasker } from '../../src/run/mask.js';

/** Reference: leftmost-longest replacement over the whole text, written independently of StreamMasker. */
function maskAll(text: Buffer, values: readonly string[]): Buffer {
  const needles = values.map((v) => Buffer.from(v)).filter((n) => n.length > 0);
  const out: Buffer[] = [];
  let i = 0;
  let plainFrom = 0;
  while (i < text.length) {
    let longest = 0;
    for (const n of needles) {
      if (n.length > longest && text.subarray(i, i + n.length).equals(n)) longest = n.length;
    }
    if (longest === 0) {
      i++;
      continue;
    }
    out.push(text.subarray(plainFrom, i), Buffer.from(MASK));
    i += longest;
    plainFrom = i;
  }
  out.push(text.subarray(plainFrom));
  return Buffer.concat(out);
}

/** Feeds the chunks, collecting what comes out after each push and at the end. */
function run(values: readonly string[], chunks: readonly Buffer[]): { out: Buffer; perChunk: Buffer[] } {
  const masker = new StreamMasker(() => values);
  const perChunk = chunks.map((c) => masker.push(c));
  return { out: Buffer.concat([...perChunk, masker.end()]), perChunk };
}

/** Cuts a buffer at the given (sorted, deduplicated) offsets. */
function cut(buf: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(buf.subarray(from, p));
    from = p;
  }
  parts.push(buf.subarray(from));
  return parts;
}

const secretArb = fc.oneof(
  fc.stringMatching(/^[a-c]{4,9}$/), // a small alphabet: overlaps, shared prefixes, repeats
  fc.constantFrom('pässwörd-€', 'abab', 'aaaa', 'line1', 'κλειδί-🔑'),
);
const textArb = (secrets: string[]) =>
  fc
    .array(fc.oneof(fc.constantFrom(...secrets), fc.stringMatching(/^[a-c x\n]{0,6}$/), fc.constant('é🔑')), {
      maxLength: 12,
    })
    .map((parts) => Buffer.from(parts.join('')));

describe('StreamMasker', () => {
  it('gives the same result for every chunking as masking the whole output, and no value survives', () => {
    let cutWithSecret = 0;
    fc.assert(
      fc.property(
        fc
          .array(secretArb, { minLength: 1, maxLength: 4 })
          .chain((secrets) =>
            fc.tuple(fc.constant(secrets), textArb(secrets), fc.array(fc.nat(), { maxLength: 10 })),
          ),
        ([secrets, text, offsets]) => {
          if (offsets.length > 0 && secrets.some((s) => text.includes(Buffer.from(s)))) cutWithSecret++;
          const { out } = run(secrets, cut(text, offsets));
          expect(out.equals(maskAll(text, secrets))).toBe(true);
          for (const s of secrets) expect(out.includes(Buffer.from(s))).toBe(false);
        },
      ),
      { numRuns: 3000 },
    );
    // Count guard: most runs had a value in an output cut in several chunks.
    expect(cutWithSecret).toBeGreaterThan(1000);
  });

  it('masks a value written one byte at a time', () => {
    const text = Buffer.from('token=hunter22-secret;');
    const { out } = run(
      ['hunter22-secret'],
      [...text].map((b) => Buffer.from([b])),
    );
    expect(out.toString()).toBe(`token=${MASK};`);
  });

  it('masks a multi-byte value split inside a character', () => {
    const value = 'pässwörd-€';
    const bytes = Buffer.from(`[${value}]`);
    const { out } = run([value], [bytes.subarray(0, 3), bytes.subarray(3)]); // 'ä' is bytes 2-3
    expect(out.toString()).toBe(`[${MASK}]`);
  });

  it('emits at once what cannot be the start of a value, and holds only a possible start', () => {
    const { perChunk } = run(
      ['password123'],
      [Buffer.from('hello\n'), Buffer.from('pass: pass'), Buffer.from('word123!\n')],
    );
    expect(perChunk.map(String)).toEqual(['hello\n', 'pass: ', `${MASK}!\n`]);
  });

  it('at the end, a held start of a value is written as it is (it was not the value)', () => {
    const { perChunk, out } = run(['password123'], [Buffer.from('login: passw')]);
    expect(perChunk.map(String)).toEqual(['login: ']);
    expect(out.toString()).toBe('login: passw');
  });

  it('passes everything through untouched when there are no values', () => {
    const { perChunk } = run([], [Buffer.from('a'), Buffer.from('b\n')]);
    expect(perChunk.map(String)).toEqual(['a', 'b\n']);
  });

  it('masks values added after it started (a rotation), from the next chunk on', () => {
    const masker = new Masker();
    masker.add('first-secret');
    const stream = new StreamMasker(() => masker.list());
    expect(String(stream.push(Buffer.from('first-secret second-secret\n')))).toBe(`${MASK} second-secret\n`);
    masker.add('second-secret');
    expect(String(stream.push(Buffer.from('second-secret\n')))).toBe(`${MASK}\n`);
  });

  it('masks each line of a multi-line value as the Masker holds it', () => {
    const masker = new Masker();
    masker.add('-----BEGIN-----\nMIIEabcdef\n-----END-----');
    const stream = new StreamMasker(() => masker.list());
    const out = Buffer.concat([
      stream.push(Buffer.from('key line: MIIEab')),
      stream.push(Buffer.from('cdef\n')),
      stream.end(),
    ]);
    expect(String(out)).toBe(`key line: ${MASK}\n`);
  });
});

describe('pumpMasked', () => {
  function sink(): Writable & { text: () => string } {
    const chunks: Buffer[] = [];
    const w = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    return Object.assign(w, { text: () => Buffer.concat(chunks).toString() });
  }

  it('pipes a stream through the masker, flushing at the end', async () => {
    const input = new PassThrough();
    const target = sink();
    const done = pumpMasked(input, target, () => ['s3cret-value']);
    input.write('a s3cr');
    input.write('et-value b s3c');
    input.end();
    await done;
    expect(target.text()).toBe(`a ${MASK} b s3c`);
  });

  it('keeps reading (and drops) the output when our own output is gone, so the command never blocks', async () => {
    const input = new PassThrough();
    const target = new Writable({
      write(_chunk, _enc, done) {
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const done = pumpMasked(input, target, () => ['s3cret-value']);
    for (let i = 0; i < 100; i++) input.write(Buffer.alloc(64 * 1024, 120));
    input.end();
    await done;
    expect(input.readableEnded).toBe(true);
  });
});
