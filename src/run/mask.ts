import type { Readable } from 'node:stream';
import { MASK } from '../log.js';

/**
 * `--mask`: the command's stdout and stderr go through a streaming replacer on their way to ours, and every
 * value the masker holds (resolved secrets of 4 characters or more, each line of a multi-line one, and our
 * credentials) becomes `<redacted>`.
 *
 * Streaming without leaking a value split across writes: a chunk is emitted at once up to the first position
 * from which the rest of the buffered output could still be the beginning of a value; only that tail (shorter
 * than the longest value) waits for the next chunk or the end of the stream. Output that cannot be part of a
 * value is never delayed. Matching is byte-wise on UTF-8 (a chunk may end inside a character) and
 * leftmost-longest, so the result does not depend on how the output was chunked.
 */
export class StreamMasker {
  private pending: Buffer = Buffer.alloc(0);
  private seen: readonly string[] | undefined;
  private needles: Buffer[] = [];
  private firstBytes = new Set<number>();
  private readonly marker: Buffer;

  /** `values` is asked again at every chunk (the supervisor adds values when secrets rotate). */
  constructor(
    private readonly values: () => readonly string[],
    marker: string = MASK,
  ) {
    this.marker = Buffer.from(marker, 'utf8');
  }

  private refresh(): void {
    const current = this.values();
    if (current === this.seen) return;
    this.seen = current;
    const unique = [...new Set(current.filter((v) => v.length > 0))];
    this.needles = unique.map((v) => Buffer.from(v, 'utf8')).sort((a, b) => b.length - a.length);
    this.firstBytes = new Set(this.needles.map((n) => n[0] as number));
  }

  /** Bytes safe to emit now. */
  push(chunk: Buffer): Buffer {
    this.refresh();
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const { out, rest } = this.scan(data, false);
    this.pending = rest;
    return out;
  }

  /** The rest, at the end of the stream. */
  end(): Buffer {
    this.refresh();
    const { out } = this.scan(this.pending, true);
    this.pending = Buffer.alloc(0);
    return out;
  }

  private scan(data: Buffer, final: boolean): { out: Buffer; rest: Buffer } {
    if (this.needles.length === 0) return { out: data, rest: Buffer.alloc(0) };
    const parts: Buffer[] = [];
    // Next occurrence of each value at or after the scan position (-1: none), found lazily.
    const next = this.needles.map(() => -2);
    const partials = final ? [] : this.partials(data);
    let pos = 0;
    for (;;) {
      const match = this.firstMatch(data, pos, next);
      const hold = partials.find((p) => p >= pos) ?? data.length;
      // A value that may continue past the end, starting at or before the match, wins (leftmost-longest).
      if (match && match.at < hold) {
        if (match.at > pos) parts.push(data.subarray(pos, match.at));
        parts.push(this.marker);
        pos = match.at + match.length;
        continue;
      }
      if (hold > pos) parts.push(data.subarray(pos, hold));
      return { out: Buffer.concat(parts), rest: Buffer.from(data.subarray(hold)) };
    }
  }

  /** The leftmost complete occurrence at or after `from`; the longest value on a tie. */
  private firstMatch(data: Buffer, from: number, next: number[]): { at: number; length: number } | undefined {
    let best: { at: number; length: number } | undefined;
    this.needles.forEach((needle, k) => {
      let at = next[k] as number;
      if (at === -2 || (at >= 0 && at < from)) {
        at = data.indexOf(needle, from);
        next[k] = at;
      }
      // needles are sorted longest first: on a tie the first found (the longest) stays
      if (at >= 0 && (best === undefined || at < best.at)) best = { at, length: needle.length };
    });
    return best;
  }

  /** Positions from which the rest of the data is a proper beginning of a value (more bytes could complete it). */
  private partials(data: Buffer): number[] {
    const longest = this.needles[0]?.length ?? 0;
    const found: number[] = [];
    for (let i = Math.max(0, data.length - longest + 1); i < data.length; i++) {
      if (!this.firstBytes.has(data[i] as number)) continue;
      const tail = data.subarray(i);
      if (this.needles.some((n) => n.length > tail.length && n.subarray(0, tail.length).equals(tail))) {
        found.push(i);
      }
    }
    return found;
  }
}

/** Where masked output goes: our own stdout / stderr. */
export interface MaskTargets {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Pumps one stream of the command through a StreamMasker into `target`, with backpressure. If our own output
 * is gone (EPIPE: nobody reads it), the command's output is still read and dropped, so the command never
 * blocks on a full pipe. Resolves when the stream has ended and the rest is written.
 */
export function pumpMasked(
  input: Readable,
  target: NodeJS.WritableStream,
  values: () => readonly string[],
): Promise<void> {
  const masker = new StreamMasker(values);
  let broken = false;
  const onError = () => {
    broken = true;
    input.resume();
  };
  target.on('error', onError);
  const write = (bytes: Buffer) => {
    if (broken || bytes.length === 0) return;
    if (!target.write(bytes)) {
      input.pause();
      target.once('drain', () => input.resume());
    }
  };
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      write(masker.end());
      target.off('error', onError);
      resolve();
    };
    input.on('data', (chunk: Buffer) => write(masker.push(chunk)));
    input.once('end', finish);
    input.once('error', finish);
  });
}
