// Bundles src/cli.ts into one CommonJS file, dist/vaultrun.cjs, runnable as `node dist/vaultrun.cjs`
// and the input of the single executable (scripts/build-exe.mjs). The esbuild options are shared with
// scripts/build-action.mjs (the GitHub Action's committed bundle).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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
 * Built-in modules loaded when first used, not when the bundle starts: node:crypto (about 6 ms to load, for a
 * random file name or a digest that most starts never need) and node:child_process (commander loads it for
 * executable subcommands, which vaultrun has none of; supervise mode uses it). Their exports are read
 * through a Proxy at the time of use; esbuild reads a named import's property at each call.
 */
const LAZY_BUILTINS = /^(node:)?(crypto|child_process)$/;
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: LAZY_BUILTINS }, (args) =>
      args.namespace === 'lazy-builtins'
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtins' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtins' }, (args) => ({
      loader: 'js',
      // The names are those of this Node's module, known without loading it at run time (esbuild's interop
      // lists them when the bundle starts).
      contents: `let m;
const load = () => (m ??= process.getBuiltinModule('node:${args.path}'));
const names = ${JSON.stringify(Object.keys(process.getBuiltinModule(`node:${args.path}`)))};
module.exports = new Proxy({}, {
  get: (_, key) => load()[key],
  has: (_, key) => names.includes(key) || key in load(),
  ownKeys: () => names,
  getOwnPropertyDescriptor: (_, key) =>
    names.includes(key) ? { configurable: true, enumerable: true, get: () => load()[key] } : undefined,
});`,
    }));
  },
};

/** The options both bundles share. */
export const common = {
  plugins: [lazyBuiltins],
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
  const out = outfile ?? (coverage ? 'dist/vaultrun.cov.cjs' : 'dist/vaultrun.cjs');
  await build({
    ...common,
    entryPoints: ['src/main.ts'],
    outfile: out,
    // ASCII only: V8 keeps a script's source one byte a character only when every character is ASCII, else
    // two. The single executable's start-up snapshot holds the bundle's source (docs/performance.md).
    charset: 'ascii',
    sourcemap: coverage ? 'linked' : false,
    // Started as a program (npm's bin, ./vaultrun.cjs), the bundle is a shell script for its first two lines:
    // `node -- <itself>`. The `--` ends Node's own options, so Node does not read vaultrun's --env-file (which
    // it would, anywhere before a --, taking NODE_OPTIONS from the file: src/run/node-env.ts). For Node the
    // second line is a comment.
    banner: { js: '#!/bin/sh\n//bin/true; exec node -- "$0" "$@"' },
    define: {
      __VAULTRUN_VERSION__: JSON.stringify(pkg.version),
      __VAULTRUN_COMMIT__: JSON.stringify(commit()),
      __VAULTRUN_COVERAGE__: JSON.stringify(coverage),
    },
  });
  // charset 'ascii' escapes strings, templates and regular expressions, not comments: the comments' few
  // non-ASCII characters (…, —) are written as \uXXXX, which in a comment is only text. (Not with
  // --coverage: its source map counts columns.)
  if (!coverage) {
    const text = readFileSync(out, 'utf8');
    const ascii = text.replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    if (ascii !== text) writeFileSync(out, ascii);
  }
}
