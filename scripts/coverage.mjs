// npm run coverage [-- vitest filters…]: line and branch coverage of src/, per file, from both sides of the suite.
//
//   1. the unit side: vitest's own V8 coverage (@vitest/coverage-v8) of the src/ modules the test files import;
//   2. the CLI side: the integration and security tests start the CLI as child processes. They run the
//      coverage bundle (dist/vaultrun.cov.cjs, `node scripts/build.mjs --coverage`: a source map, and
//      src/coverage.ts switched on) with NODE_V8_COVERAGE=coverage/raw (test/support/cli.ts does so when
//      VAULTRUN_COVERAGE_DIR is set); the bundle writes its coverage before every execve too. The GitHub
//      Action's tests run its coverage build the same way (dist/action.cov.cjs, `node scripts/build-action.mjs
//      --coverage`), not the committed action/index.cjs.
//
// The CLI's raw V8 coverage is merged (@bcoe/v8-coverage), converted to Istanbul's form through the source map
// with the converter vitest uses (ast-v8-to-istanbul), so both sides count the same statements and branches,
// then merged with the unit side (istanbul-lib-coverage). Output: a per-file table on stdout,
// coverage/coverage-final.json, coverage/coverage-summary.json, coverage/index.html and coverage/table.md.
//
// By hand only (not part of `npm test` or .ci/run): it runs the whole suite but test/containers and test/soak,
// and takes a few minutes longer than `npm test`. The exit status is vitest's (the report is written anyway).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mergeProcessCovs } from '@bcoe/v8-coverage';
import convert from 'ast-v8-to-istanbul';
import libCoverage from 'istanbul-lib-coverage';
import libReport from 'istanbul-lib-report';
import reports from 'istanbul-reports';
import { parseAstAsync } from 'vitest/node';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'coverage');
const RAW = join(OUT, 'raw');
const UNIT = join(OUT, 'unit');
// The bundles the processes run: the CLI's, and the GitHub Action's (its tests run this build instead of the
// committed action/index.cjs under coverage, test/support/github.ts).
const BUNDLES = [join(ROOT, 'dist/vaultrun.cov.cjs'), join(ROOT, 'dist/action.cov.cjs')];
const SRC = `${join(ROOT, 'src')}/`;

const run = (cmd, argv, env = process.env) =>
  spawnSync(cmd, argv, { stdio: 'inherit', cwd: ROOT, env }).status ?? 1;

const onlyReport = process.argv.includes('--report-only');
const filters = process.argv.slice(2).filter((a) => a !== '--report-only');

let status = 0;
if (!onlyReport) {
  if (run(process.execPath, ['scripts/build.mjs']) !== 0) process.exit(1);
  if (run(process.execPath, ['scripts/build.mjs', '--coverage']) !== 0) process.exit(1);
  if (run(process.execPath, ['scripts/build-action.mjs', '--coverage']) !== 0) process.exit(1);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(RAW, { recursive: true });
  // Some tests run the CLI as another user (setpriv): the directory is writable by all, like /tmp.
  chmodSync(RAW, 0o1777);
  status = run(
    process.execPath,
    [
      join(ROOT, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--project',
      'main',
      '--coverage.enabled',
      '--coverage.provider=v8',
      '--coverage.include=src/**',
      '--coverage.reporter=json',
      `--coverage.reportsDirectory=${UNIT}`,
      '--coverage.reportOnFailure',
      ...filters,
    ],
    { ...process.env, VAULTRUN_COVERAGE_DIR: RAW },
  );
}

const map = libCoverage.createCoverageMap({});
const onlySrc = (data) => {
  for (const [file, cov] of Object.entries(data)) if (file.startsWith(SRC)) map.merge({ [file]: cov });
};

// The processes' side: for each bundle, merge every process's coverage of it, a batch at a time (a full run
// writes thousands), and map it to src/ through the bundle's source map.
let processes = 0;
const rawFiles = readdirSync(RAW)
  .filter((name) => name.endsWith('.json'))
  .sort();
for (const bundle of BUNDLES) {
  const bundleUrl = pathToFileURL(bundle).href;
  let merged;
  let batch = [];
  const flush = () => {
    if (batch.length === 0) return;
    merged = mergeProcessCovs(merged ? [merged, ...batch] : batch);
    batch = [];
  };
  for (const name of rawFiles) {
    let raw;
    try {
      raw = JSON.parse(readFileSync(join(RAW, name), 'utf8'));
    } catch {
      continue; // a process killed while writing (SIGKILL by a test's timeout)
    }
    const result = raw.result.filter((script) => script.url === bundleUrl);
    if (result.length === 0) continue;
    processes += 1;
    batch.push({ result });
    if (batch.length >= 50) flush();
  }
  flush();
  if (!merged?.result[0]) continue;
  const code = readFileSync(bundle, 'utf8');
  const converted = await convert({
    code,
    sourceMap: JSON.parse(readFileSync(`${bundle}.map`, 'utf8')),
    ast: parseAstAsync(code),
    coverage: { url: bundleUrl, functions: merged.result[0].functions },
    wrapperLength: 0,
  });
  // Through JSON, as the unit side: an open end column is Infinity in memory and null in JSON, and merging
  // matches items by their location.
  onlySrc(JSON.parse(JSON.stringify(converted)));
}
let unit = {};
try {
  unit = JSON.parse(readFileSync(join(UNIT, 'coverage-final.json'), 'utf8'));
} catch {
  console.error('coverage: no unit coverage (coverage/unit/coverage-final.json); the CLI side only');
}
// A file no test file imports is in the unit side with every count 0 (coverage.include): it would only add
// its items, located through another transform (vite's, not esbuild's bundle), a second time.
for (const [file, cov] of Object.entries(unit)) {
  const untouched = Object.values(cov.s).every((hits) => hits === 0);
  if (untouched && map.files().includes(file)) delete unit[file];
}
onlySrc(unit);

const context = libReport.createContext({ dir: OUT, coverageMap: map, defaultSummarizer: 'flat' });
for (const reporter of ['json', 'json-summary', 'html', 'text']) reports.create(reporter).execute(context);

// The Markdown table of docs/development.md.
const pct = (m) => (m.total === 0 ? '100' : ((100 * m.covered) / m.total).toFixed(1));
const rows = map
  .files()
  .sort()
  .map((file) => {
    const s = map.fileCoverageFor(file).toSummary();
    return `| ${relative(ROOT, file)} | ${pct(s.lines)} | ${pct(s.branches)} (${s.branches.covered}/${s.branches.total}) |`;
  });
const total = map.getCoverageSummary();
writeFileSync(
  join(OUT, 'table.md'),
  [
    '| file | lines % | branches % (covered/total) |',
    '| --- | ---: | ---: |',
    ...rows,
    `| **all of src/** | **${pct(total.lines)}** | **${pct(total.branches)} (${total.branches.covered}/${total.branches.total})** |`,
    '',
  ].join('\n'),
);
console.error(
  `coverage: ${processes} processes measured (CLI and Action); report in coverage/ (index.html, coverage-summary.json, table.md)`,
);
process.exit(status);
