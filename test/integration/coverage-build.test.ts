// The coverage bundle of `npm run coverage` (scripts/build.mjs --coverage, src/coverage.ts): it keeps
// NODE_V8_COVERAGE when the test runner's mark is set, writes what V8 collected before execve, and hides both
// variables from the command. The shipped bundle ignores the mark: NODE_V8_COVERAGE stays neutralised.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun, VAULTRUN_BIN } from '../support/cli.js';

const work = mkdtempSync(join(tmpdir(), 'vaultrun-covbuild-'));
const covBundle = join(work, 'vaultrun.cov.cjs');
const node = process.execPath;

beforeAll(() => {
  execFileSync(node, ['scripts/build.mjs', '--coverage', '--outfile', covBundle], { stdio: 'inherit' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = join(work, name);
  execFileSync('mkdir', ['-p', dir]);
  return dir;
}

// Always `node <bundle>`, also when VAULTRUN_BIN names the single executable (the coverage bundle has none).
describe('the coverage bundle', () => {
  it('exec mode: writes its coverage before execve; the command sees neither NODE_V8_COVERAGE nor the mark', async () => {
    const dir = freshDir('exec');
    const r = await runVaultrun(['--', 'env'], {
      bin: [node, covBundle],
      env: baseEnv({ NODE_V8_COVERAGE: dir, VAULTRUN_COVERAGE_RUN: '1' }),
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toMatch(/NODE_V8_COVERAGE|VAULTRUN_COVERAGE_RUN/);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    // exec replaced the process: only the flush before execve can have written it.
    expect(files).toHaveLength(1);
    const raw = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8')) as {
      result: { url: string }[];
    };
    expect(raw.result.map((s) => s.url)).toContain(pathToFileURL(covBundle).href);
  });

  it('a re-exec (NODE_OPTIONS set) keeps the measuring, and the command gets NODE_OPTIONS back', async () => {
    const dir = freshDir('reexec');
    const r = await runVaultrun(['--', 'env'], {
      bin: [node, covBundle],
      env: baseEnv({ NODE_V8_COVERAGE: dir, VAULTRUN_COVERAGE_RUN: '1', NODE_OPTIONS: '--no-warnings' }),
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('NODE_OPTIONS=--no-warnings');
    expect(r.stdout).not.toMatch(/NODE_V8_COVERAGE|VAULTRUN_COVERAGE_RUN/);
    // One file from before the re-exec, one from before the exec of the command.
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toHaveLength(2);
  });
});

describe('the shipped bundle', () => {
  it('ignores the mark: vaultrun writes no coverage, and NODE_V8_COVERAGE goes to the command unchanged', async () => {
    const dir = freshDir('shipped');
    const r = await runVaultrun(['--', 'env'], {
      bin: process.env.VAULTRUN_BIN ? VAULTRUN_BIN : [node, join(process.cwd(), 'dist/vaultrun.cjs')],
      env: baseEnv({ NODE_V8_COVERAGE: dir, VAULTRUN_COVERAGE_RUN: '1' }),
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`NODE_V8_COVERAGE=${dir}\n`);
    expect(readdirSync(dir)).toEqual([]);
  });
});
