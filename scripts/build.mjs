// Bundles src/cli.ts into one CommonJS file, dist/vaultrun.cjs, runnable as `node dist/vaultrun.cjs`
// and the input of the single executable (scripts/build-exe.mjs). The esbuild options are shared with
// scripts/build-action.mjs (the GitHub Action's committed bundle).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

export const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

function commit() {
  if (process.env.VAULTRUN_BUILD_COMMIT) return process.env.VAULTRUN_BUILD_COMMIT;
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/**
 * node-vault requires axios at load time but uses it only when it is not given a transport; vaultrun always
 * gives it its own (src/vault/transport.ts). So axios (and form-data, mime-db…) stays out of the bundle: a
 * smaller, faster start, and no HTTP client whose errors would carry the X-Vault-Token header.
 */
export const withoutAxios = {
  name: 'without-axios',
  setup(b) {
    b.onResolve({ filter: /^axios$/ }, () => ({ path: 'axios', namespace: 'without-axios' }));
    b.onLoad({ filter: /.*/, namespace: 'without-axios' }, () => ({
      loader: 'js',
      contents:
        'module.exports = { create() { throw new Error("axios is not in the vaultrun bundle: node-vault must use vaultrun\'s transport"); } };',
    }));
  },
};

/** The options both bundles share. */
export const common = {
  plugins: [withoutAxios],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
};

if (import.meta.url === `file://${process.argv[1]}`) {
  // --coverage: dist/vaultrun.cov.cjs for `npm run coverage` (scripts/coverage.mjs), with a source map and
  // __VAULTRUN_COVERAGE__ true (src/coverage.ts). Never shipped: dist/vaultrun.cjs always has it false.
  // --outfile FILE: somewhere else (test/integration/coverage-build.test.ts builds its own).
  const coverage = process.argv.includes('--coverage');
  const at = process.argv.indexOf('--outfile');
  const outfile = at > 0 ? process.argv[at + 1] : undefined;
  if (at > 0 && !outfile) throw new Error('--outfile needs a file name');
  await build({
    ...common,
    entryPoints: ['src/main.ts'],
    outfile: outfile ?? (coverage ? 'dist/vaultrun.cov.cjs' : 'dist/vaultrun.cjs'),
    sourcemap: coverage ? 'linked' : false,
    banner: { js: '#!/usr/bin/env node' },
    define: {
      __VAULTRUN_VERSION__: JSON.stringify(pkg.version),
      __VAULTRUN_COMMIT__: JSON.stringify(commit()),
      __VAULTRUN_COVERAGE__: JSON.stringify(coverage),
    },
  });
}
