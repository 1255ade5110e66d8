// Size and cold start of vaultrun, for docs/performance.md (reported, never asserted):
//
//   node scripts/bench-start.mjs [--runs 30] [--warmup 3] [--json FILE]
//
// - size of dist/vaultrun (single executable) and dist/vaultrun.cjs, and their gzip -9 sizes (what a registry
//   layer roughly costs);
// - wall time of `vaultrun -- true` without references, with one reference (token login) and with one reference
//   via AppRole, against a local OpenBao dev server (test/support/openbao.ts, installed by scripts/tools.sh),
//   for the single executable and for `node dist/vaultrun.cjs`; `true` alone as the floor.
//
// Uses hyperfine (installed with apt-get when missing and running as root), else a plain loop of spawnSync.
// Needs `npm run build:exe` first. Runs on the project's Node, which loads the TypeScript harness directly.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { startOpenBao } from '../test/support/openbao.ts';

const root = new URL('..', import.meta.url).pathname;
const exe = join(root, 'dist/vaultrun');
const bundle = join(root, 'dist/vaultrun.cjs');
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const runs = Number(opts.runs);
const warmup = Number(opts.warmup);
const say = (text) => process.stderr.write(`bench-start: ${text}\n`);

for (const f of [exe, bundle]) {
  if (!existsSync(f)) {
    say(`${f} not found: run npm run build:exe first`);
    process.exit(1);
  }
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function ensureHyperfine() {
  let path = which('hyperfine');
  if (path || process.getuid?.() !== 0) return path;
  say('hyperfine not found: apt-get install hyperfine');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'hyperfine'], {
    stdio: 'ignore',
    env,
  });
  path = which('hyperfine');
  if (!path) say('could not install hyperfine: falling back to a spawnSync loop');
  return path;
}

const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const ms = (s) => `${(s * 1000).toFixed(1)} ms`;

function sizes() {
  const out = [];
  for (const f of [exe, bundle]) {
    const raw = readFileSync(f);
    out.push({ file: f.slice(root.length), bytes: raw.length, gzip: gzipSync(raw, { level: 9 }).length });
  }
  return out;
}

/** Statistics of a loop of spawnSync (seconds), when hyperfine is missing. */
function loop(argv, env) {
  const times = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { env, stdio: 'ignore' });
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
    if (i >= warmup) times.push(t);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const stddev = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / (times.length - 1));
  return { mean, stddev, median: times[Math.floor(times.length / 2)], min: times[0], max: times.at(-1) };
}

function hyperfine(bin, argv, env, work) {
  const out = join(work, `h-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(
    bin,
    ['-N', '--warmup', String(warmup), '--runs', String(runs), '--export-json', out, argv.join(' ')],
    { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`hyperfine ${argv.join(' ')} failed:\n${r.stderr}`);
  const [res] = JSON.parse(readFileSync(out, 'utf8')).results;
  return { mean: res.mean, stddev: res.stddev, median: res.median, min: res.min, max: res.max };
}

function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  const os = /^PRETTY_NAME="?(.*?)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  return `${cpu}, ${cpus().length} vCPU, ${os}, ${kernel}`;
}

const work = mkdtempSync(join(tmpdir(), 'vaultrun-bench-'));
const bao = await startOpenBao();
try {
  await bao.kvPut('bench/app', { password: 'bench-secret-value' });
  await bao.writePolicy('bench', 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n');
  const { roleId } = await bao.setupAppRole({ role: 'bench', policies: ['bench'] });
  // A reusable secret_id (the default role allows unlimited uses).
  const { data } = await bao.api('POST', 'auth/approle/role/bench/secret-id', {});
  writeFileSync(join(work, 'role_id'), roleId);
  writeFileSync(join(work, 'secret_id'), data.secret_id);

  const basic = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: work, VAULTRUN_LOG_LEVEL: 'warn' };
  const token = {
    ...basic,
    VAULT_ADDR: bao.addr,
    VAULT_TOKEN: bao.rootToken,
    DB_PASSWORD: 'vault:secret/bench/app#password',
  };
  const approle = {
    ...basic,
    VAULT_ADDR: bao.addr,
    VAULT_ROLE_ID_FILE: join(work, 'role_id'),
    VAULT_SECRET_ID_FILE: join(work, 'secret_id'),
    DB_PASSWORD: 'vault:secret/bench/app#password',
  };
  const trueBin = which('true') ?? '/bin/true';
  const node = process.execPath;
  const cases = [
    ['true (the floor)', [trueBin], basic],
    ['dist/vaultrun -- true, no reference', [exe, '--', trueBin], basic],
    ['dist/vaultrun -- true, 1 reference (token)', [exe, '--', trueBin], token],
    ['dist/vaultrun -- true, 1 reference (AppRole)', [exe, '--', trueBin], approle],
    ['node dist/vaultrun.cjs -- true, no reference', [node, bundle, '--', trueBin], basic],
    ['node dist/vaultrun.cjs -- true, 1 reference (token)', [node, bundle, '--', trueBin], token],
  ];
  const hf = ensureHyperfine();
  say(`${hf ? `hyperfine (${hf})` : 'spawnSync loop'}, ${warmup} warm-up + ${runs} runs each`);
  const results = [];
  for (const [name, argv, env] of cases) {
    // A failing command would measure an error path: check it once.
    const check = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`${name}: exit ${check.status}\n${check.stderr}`);
    const stats = hf ? hyperfine(hf, argv, env, work) : loop(argv, env);
    results.push({ name, ...stats });
    say(`${name}: ${ms(stats.mean)} ± ${ms(stats.stddev)}`);
  }
  const report = {
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    node: process.version,
    tool: hf ? execFileSync(hf, ['--version'], { encoding: 'utf8' }).trim() : 'spawnSync loop',
    runs,
    sizes: sizes(),
    results,
  };
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);

  const lines = [
    `Measured ${report.date} on ${report.machine}; ${report.tool}, ${runs} runs after ${warmup} warm-up run${warmup === 1 ? '' : 's'}, OpenBao dev server on 127.0.0.1.`,
    '',
    '| artifact | size | gzip -9 |',
    '| --- | ---: | ---: |',
    ...report.sizes.map((s) => `| \`${s.file}\` | ${mib(s.bytes)} | ${mib(s.gzip)} |`),
    '',
    '| command | mean ± σ | min | median |',
    '| --- | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.name} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${ms(r.min)} | ${ms(r.median)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await bao.stop();
  rmSync(work, { recursive: true, force: true });
}
