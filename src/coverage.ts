import { takeCoverage } from 'node:v8';

declare const __VAULTRUN_COVERAGE__: boolean | undefined;

/**
 * `npm run coverage` runs the integration tests against a coverage bundle (dist/vaultrun.cov.cjs, built by
 * `node scripts/build.mjs --coverage` with this constant true and a source map). Every other build has it
 * false, and then nothing here does anything: NODE_V8_COVERAGE stays one of the variables vaultrun re-executes
 * itself without (src/run/node-env.ts).
 */
export const COVERAGE_BUILD = typeof __VAULTRUN_COVERAGE__ === 'boolean' && __VAULTRUN_COVERAGE__;

/** Set (to "1") by the test runner (test/support/cli.ts) next to NODE_V8_COVERAGE: this run is measured. */
export const COVERAGE_MARK = 'VAULTRUN_COVERAGE_RUN';

let directory: string | undefined;

/**
 * First thing in the coverage bundle: when the test runner started us with NODE_V8_COVERAGE and the mark,
 * V8 already collects (Node read the directory at start-up); both leave the environment, so the rest of
 * vaultrun, and the command, see the environment the test gave. Returns the directory, or undefined.
 */
export function detachCoverageEnv(env: Record<string, string | undefined> = process.env): string | undefined {
  if (!COVERAGE_BUILD || env[COVERAGE_MARK] !== '1' || !env.NODE_V8_COVERAGE) return undefined;
  directory = env.NODE_V8_COVERAGE;
  delete env.NODE_V8_COVERAGE;
  delete env[COVERAGE_MARK];
  return directory;
}

/** For a re-exec of vaultrun itself: the variables that keep the new image measured (none outside coverage). */
export function coverageEnv(): Record<string, string> {
  return directory === undefined ? {} : { NODE_V8_COVERAGE: directory, [COVERAGE_MARK]: '1' };
}

/** Right before execve, which replaces the process without Node's exit hook: write what V8 collected so far. */
export function flushCoverage(): void {
  if (directory !== undefined) takeCoverage();
}
