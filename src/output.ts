import { writeSync } from 'node:fs';

/**
 * Synchronous writes to stdout (fd 1) that never throw on a closed reader (`vaultrun --help | head`) and wait
 * out EAGAIN when the pipe is non-blocking. Logs use fd 2 the same way (log.ts).
 */
export function writeStdout(text: string): void {
  let buf = Buffer.from(text, 'utf8');
  while (buf.length > 0) {
    try {
      const n = writeSync(1, buf);
      buf = buf.subarray(n);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      return; // EPIPE and the like: nobody is reading
    }
  }
}
