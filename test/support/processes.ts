// Helpers for the command-running tests (exec and supervise): the probe app, its signal log, scripts on disk,
// and what /proc says about a process.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './openbao.js';
import { tempDir } from './resolution.js';

export const PROBE = join(REPO_ROOT, 'test/fixtures/probe.mjs');

export interface ProbeReport {
  pid: number;
  ppid: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  sigIgn: string | null;
}

/** A fresh temp dir, removed after the test file. */
export function workDir(prefix = 'vaultrun-run-'): string {
  return tempDir(prefix);
}

/** Writes a file (creating its directory) with the given mode. */
export function writeFile(path: string, text: string, mode: number): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

/** The probe's report from the first line of a run's stdout (when $PROBE_OUT is not set). */
export function reportFromStdout(stdout: string): ProbeReport {
  const line = stdout.split('\n')[0] ?? '';
  try {
    return JSON.parse(line) as ProbeReport;
  } catch {
    throw new Error(`no probe report on stdout:\n${stdout.slice(0, 2000)}`);
  }
}

/** The probe's report from $PROBE_OUT (written atomically). */
export function reportFromFile(file: string): ProbeReport {
  return JSON.parse(readFileSync(file, 'utf8')) as ProbeReport;
}

export function readLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the file's lines satisfy `done` (polling; generous timeout, only to turn a hang into a failure
 * with the file's content). Returns the lines.
 */
export async function waitForLines(
  file: string,
  done: (lines: string[]) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readLines(file);
    if (done(lines)) return lines;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} in ${file}; lines: ${JSON.stringify(lines)}`);
    }
    await sleep(20);
  }
}

/** Waits until `line` occurs `count` times in the file. */
export function waitForLine(file: string, line: string, count = 1): Promise<string[]> {
  return waitForLines(file, (ls) => ls.filter((l) => l === line).length >= count, `${count}× "${line}"`);
}

/** Waits until the file exists (the probe writes $PROBE_OUT atomically). */
export async function waitForFile(file: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    await sleep(20);
  }
}

export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
}

/** Fields of /proc/<pid>/stat (comm may contain spaces and parentheses: parse after the last ')'). */
export function procStat(pid: number): ProcStat {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest: state ppid pgrp session …
  return { pid, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
}

/** Whether signal number n is set in a /proc/<pid>/status signal mask (hex; bit n-1 is signal n). */
export function maskHas(hexMask: string, signal: number): boolean {
  return ((BigInt(`0x${hexMask}`) >> BigInt(signal - 1)) & 1n) === 1n;
}
