// Runs the CLI under test (the built dist/vaultrun.cjs, or the single executable named by env VAULTRUN_BIN)
// as a subprocess, without a shell.
//
// The CLI is started in its own process group (detached: setsid), so a timeout can SIGKILL it together with
// the app it started; any group still running after the test file (or at process exit) is killed too.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * `npm run coverage` (scripts/coverage.mjs) sets VAULTRUN_COVERAGE_DIR: the CLI is then the coverage bundle
 * (dist/vaultrun.cov.cjs), started with NODE_V8_COVERAGE=that directory and the mark its src/coverage.ts looks
 * for (only that bundle keeps NODE_V8_COVERAGE; it removes both from the environment the command sees).
 */
const COVERAGE_DIR = process.env.VAULTRUN_COVERAGE_DIR
  ? resolve(REPO_ROOT, process.env.VAULTRUN_COVERAGE_DIR)
  : undefined;

export const VAULTRUN_BIN: string[] = process.env.VAULTRUN_BIN
  ? [resolve(REPO_ROOT, process.env.VAULTRUN_BIN)]
  : // `--`: Node's own options end before the script, as users are told (Node would read vaultrun's --env-file).
    [process.execPath, '--', join(REPO_ROOT, COVERAGE_DIR ? 'dist/vaultrun.cov.cjs' : 'dist/vaultrun.cjs')];

/** The environment a run gets: with the coverage variables added when coverage is on (and the test set none). */
export function withCoverage(env: Record<string, string>): Record<string, string> {
  if (COVERAGE_DIR === undefined || process.env.VAULTRUN_BIN || env.NODE_V8_COVERAGE !== undefined)
    return env;
  return { ...env, NODE_V8_COVERAGE: COVERAGE_DIR, VAULTRUN_COVERAGE_RUN: '1' };
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface RunOptions {
  /** The complete environment of the CLI; default baseEnv(). Nothing of the parent env is added. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  input?: string;
  /** Default 60 s; then the process group is SIGKILLed and the result rejects. */
  timeoutMs?: number;
  /**
   * The command line of the CLI instead of VAULTRUN_BIN, e.g. `setpriv --reuid=… -- <VAULTRUN_BIN>` (a command
   * that execs the CLI: `pid` and the group kill still apply to it).
   */
  bin?: string[];
  /**
   * 'ignore': stdin is /dev/null instead of a pipe. Node's pipes are socketpairs, and bash started with a
   * socket on stdin reads ~/.bashrc (its "remote shell" rule): scripts run through bash want /dev/null.
   */
  stdin?: 'pipe' | 'ignore';
}

const running = new Set<ChildProcess>();
const tempDirs: string[] = [];

/** Kill (the process groups of) CLIs still running and remove the HOME dirs made by baseEnv(). */
function cleanup(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
// Vitest's fork workers are killed without an 'exit' event: clean up after each test file instead.
if (process.env.VITEST) afterAll(cleanup);

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * A clean environment: PATH (Node 26's dir first), a fresh empty HOME, LANG; nothing else (but the two coverage
 * variables while `npm run coverage` runs: the coverage bundle removes them before anything else looks).
 */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = mkdtempSync(join(tmpdir(), 'vaultrun-home-'));
  tempDirs.push(home);
  const path = [dirname(process.execPath), process.env.PATH || '/usr/local/bin:/usr/bin:/bin'].join(':');
  // Coverage on: tests that start the CLI themselves (through tini, script, a PID namespace…) are measured too.
  return withCoverage({ PATH: path, HOME: home, LANG: 'C.UTF-8', ...extra });
}

export function spawnVaultrun(
  args: string[],
  opts: RunOptions = {},
): { child: ChildProcess; result: Promise<RunResult> } {
  const bin = opts.bin ?? VAULTRUN_BIN;
  const [cmd, ...pre] = bin;
  if (cmd === undefined) throw new Error('the CLI command line is empty');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const child = spawn(cmd, [...pre, ...args], {
    env: withCoverage(opts.env ?? baseEnv()),
    cwd: opts.cwd ?? REPO_ROOT,
    stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);

  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  // The CLI may exit (or exec) before reading its input: ignore EPIPE on stdin.
  child.stdin?.on('error', () => {});
  child.stdin?.end(opts.input ?? '');

  const result = new Promise<RunResult>((res, rej) => {
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      rej(
        new Error(
          `vaultrun ${JSON.stringify(args)} timed out after ${timeoutMs} ms (killed).\n` +
            `stdout:\n${stdout.slice(-4000)}\nstderr:\n${stderr.slice(-4000)}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      rej(new Error(`could not start ${bin.join(' ')}: ${err.message}`));
    });
    // 'close': the process exited AND its stdout/stderr are closed (the app it ran holds them too).
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      res({ exitCode: code, signal, stdout, stderr, pid: child.pid ?? -1 });
    });
  });
  // Avoid an unhandled rejection if the caller only uses `child` before awaiting.
  result.catch(() => {});
  return { child, result };
}

export function runVaultrun(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return spawnVaultrun(args, opts).result;
}
