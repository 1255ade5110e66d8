// The single executable (dist/vaultrun, built by `npm run build:exe`) for the tests that are about it
// (its --version, NODE_OPTIONS, running in a slim Debian root), whatever VAULTRUN_BIN says.
//
// It must embed the current dist/vaultrun.cjs: an executable left over from an older build would test old code.
// The SEA blob holds a V8 start-up snapshot (not the bundle's text) and an asset with the bundle's SHA-256
// (scripts/build-exe.mjs), so the check is a byte search for that digest.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './openbao.js';

export const EXE = join(REPO_ROOT, 'dist/vaultrun');
export const BUNDLE = join(REPO_ROOT, 'dist/vaultrun.cjs');

let checked = false;

/** The path of dist/vaultrun; throws with what to run when it is missing or not built from dist/vaultrun.cjs. */
export function singleExecutable(): string {
  if (checked) return EXE;
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} not found: run \`npm run build:exe\``);
  if (!existsSync(EXE)) throw new Error(`${EXE} not found: run \`npm run build:exe\``);
  const digest = createHash('sha256').update(readFileSync(BUNDLE)).digest('hex');
  if (!readFileSync(EXE).includes(`vaultrun.cjs sha256 ${digest}`)) {
    throw new Error(`${EXE} was not built from the current ${BUNDLE}: run \`npm run build:exe\``);
  }
  checked = true;
  return EXE;
}
