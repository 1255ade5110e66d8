// Servers the tests start (OpenBao, PostgreSQL) and their temp dirs: killed and removed after each test file
// and on process 'exit', even when a test crashed. Vitest's fork workers are killed without an 'exit' event,
// hence afterAll too.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll } from 'vitest';

export interface Leftovers {
  children: Set<ChildProcess>;
  dirs: Set<string>;
}

/** A registry whose dirs are kept when the environment variable `keepEnv` is set (for debugging). */
export function leftovers(keepEnv: string): Leftovers {
  const children = new Set<ChildProcess>();
  const dirs = new Set<string>();
  const cleanup = (): void => {
    for (const child of children) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    children.clear();
    if (!process.env[keepEnv]) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    dirs.clear();
  };
  process.on('exit', cleanup);
  if (process.env.VITEST) afterAll(cleanup);
  return { children, dirs };
}
