// Servers the tests start (OpenBao, PostgreSQL) and their temp dirs: killed and removed after each test file
// and on process 'exit', even when a test crashed. Vitest's fork workers are killed without an 'exit' event,
// hence afterAll too.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';

export interface Leftovers {
  children: Set<ChildProcess>;
  dirs: Set<string>;
  /** Starts a server with its output appended to `logFile`, tracked until it exits. */
  start(
    cmd: string,
    args: readonly string[],
    options: { cwd: string; env: Record<string, string>; logFile: string },
  ): { child: ChildProcess; exited: Promise<void> };
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
  const start: Leftovers['start'] = (cmd, args, options) => {
    const fd = openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(cmd, [...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    children.add(child);
    const exited = new Promise<void>((resolve) => {
      const done = () => {
        children.delete(child);
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
    return { child, exited };
  };
  return { children, dirs, start };
}
