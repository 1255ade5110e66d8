// Helpers for the resolution / login integration tests: run the real CLI around the probe app (which reports
// its environment to a file, $PROBE_OUT, so that stdout+stderr hold only what vaultrun itself printed), and
// check every run's output against the sensitive values the test knows (secrets, tokens, role_id, secret_id,
// wrapping tokens).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { baseEnv, type RunResult, spawnVaultrun } from './cli.js';
import { type AuditEntry, type OpenBao, REPO_ROOT } from './openbao.js';

export const PROBE = join(REPO_ROOT, 'test/fixtures/probe.mjs');

export interface ProbeReport {
  pid: number;
  ppid: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ProbeRun extends RunResult {
  /** The probe's report; undefined when vaultrun did not run it. */
  probe: ProbeReport | undefined;
  /** stdout + stderr of the run (vaultrun's own output: the probe reports to a file). */
  output: string;
}

const dirs: string[] = [];
if (process.env.VITEST) {
  afterAll(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

/** A fresh temp dir, removed after the test file. */
export function tempDir(prefix = 'vaultrun-it-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A value that cannot appear in any output by accident. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(10).toString('hex')}`;
}

/** Values that must never appear in anything vaultrun prints, with a label for the failure message. */
export class Sensitive {
  private readonly values = new Map<string, string>();

  add(label: string, value: string): string {
    if (value.length < 8) throw new Error(`sensitive value for ${label} is too short to be searched for`);
    this.values.set(value, label);
    return value;
  }

  /** Labels of the sensitive values found in the text. */
  leaks(text: string): string[] {
    return [...this.values].filter(([value]) => text.includes(value)).map(([, label]) => label);
  }

  get size(): number {
    return this.values.size;
  }
}

export function expectNoLeaks(output: string, sensitive: Sensitive): void {
  expect(sensitive.size).toBeGreaterThan(0);
  const found = sensitive.leaks(output);
  expect(found, `sensitive values in vaultrun's output:\n${output}`).toEqual([]);
}

export interface RunOptions {
  /** vaultrun flags, before `--`. */
  args?: string[];
  /** Arguments for the probe. */
  probeArgs?: string[];
  /** Default true: VAULTRUN_LOG_LEVEL=debug (unless env sets it). */
  debug?: boolean;
  /** Default 60 s (see spawnVaultrun). */
  timeoutMs?: number;
}

export interface SpawnedProbe {
  child: ChildProcess;
  /** What vaultrun printed on stderr so far (to wait for a log line while it runs). */
  stderr(): string;
  /** Settles as runProbe's result does, when vaultrun has exited. */
  result: Promise<ProbeRun>;
}

/**
 * Runs `vaultrun [args] -- node probe.mjs [probeArgs]` with baseEnv() + env (env wins, so it may set HOME),
 * at debug log level, and checks the output for leaks of any sensitive value.
 */
export function runProbe(
  sensitive: Sensitive,
  env: Record<string, string>,
  opts: RunOptions = {},
): Promise<ProbeRun> {
  return spawnProbe(sensitive, env, opts).result;
}

/** runProbe, in the background: the test can act while vaultrun runs (e.g. unseal Vault once it retries). */
export function spawnProbe(
  sensitive: Sensitive,
  env: Record<string, string>,
  opts: RunOptions = {},
): SpawnedProbe {
  const out = join(tempDir('vaultrun-probe-'), 'report.json');
  const fullEnv = baseEnv({
    ...(opts.debug === false ? {} : { VAULTRUN_LOG_LEVEL: 'debug' }),
    ...env,
    PROBE_OUT: out,
  });
  const { child, result } = spawnVaultrun(
    [...(opts.args ?? []), '--', process.execPath, PROBE, ...(opts.probeArgs ?? [])],
    { env: fullEnv, ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) },
  );
  let stderr = '';
  child.stderr?.on('data', (d: string) => {
    stderr += d;
  });
  const run = result.then((res) => {
    const probe = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as ProbeReport) : undefined;
    const done: ProbeRun = { ...res, probe, output: `${res.stdout}${res.stderr}` };
    expectNoLeaks(done.output, sensitive);
    return done;
  });
  // Avoid an unhandled rejection if the caller fails before awaiting the result.
  run.catch(() => {});
  return { child, stderr: () => stderr, result: run };
}

/** The run succeeded and the probe ran; returns its environment. */
export function probeEnv(run: ProbeRun): Record<string, string> {
  expect(run.exitCode, `vaultrun failed:\n${run.output}`).toBe(0);
  expect(run.probe, `the probe did not run:\n${run.output}`).toBeDefined();
  return (run.probe as ProbeReport).env;
}

/** The run failed with the exit status, before running the probe; stderr matches every pattern. */
export function expectFailure(run: ProbeRun, exitCode: number, ...patterns: RegExp[]): void {
  expect(run.exitCode, `expected exit ${exitCode}:\n${run.output}`).toBe(exitCode);
  expect(run.probe, 'the probe ran although vaultrun failed').toBeUndefined();
  for (const pattern of patterns) expect(run.stderr).toMatch(pattern);
}

/** Our settings and credentials, which must never reach the command (unless passed through explicitly). */
export const OWN_VARIABLE = /^(VAULT_|VAULTRUN_|BAO_)/;

export function expectScrubbed(env: Record<string, string>): void {
  expect(Object.keys(env).filter((name) => OWN_VARIABLE.test(name))).toEqual([]);
}

/** Audit-log request entries, optionally only those of one path. */
export async function auditRequests(bao: OpenBao, path?: string | RegExp): Promise<AuditEntry[]> {
  const entries = (await bao.auditEntries()).filter((e) => e.type === 'request');
  if (path === undefined) return entries;
  return entries.filter((e) => (typeof path === 'string' ? e.path === path : path.test(e.path)));
}
