// The project's benchmark (`npm run bench`): vaultrun against its Go peers, side by side, in one run.
//
//   node scripts/bench/bench.mjs [--runs 25] [--warmup 3] [--idle 10] [--json FILE] [--only cjs,exe,...]
//   VAULTRUN_BENCH_VAULT_ENV=/path/to/vault-env VAULTRUN_BENCH_ENVCONSUL=/path/to/envconsul npm run bench
//   VAULTRUN_BENCH_BASELINE=/path/to/older/vaultrun [VAULTRUN_BENCH_BASELINE_LABEL=text]: one more row
//
// What it does (reported, never asserted; the numbers go to docs/performance.md):
// - starts its own OpenBao dev server (test/support/openbao.ts, with a file audit device) and seeds KV v2:
//   one path with one key, and 100 paths with 2 keys each (200 references over 100 paths);
// - compiles scripts/bench/runner.c with cc: `runner time` forks and execs a tool and reports wall time and
//   the CPU time (user + sys) of the whole tree from wait4(); `runner check` is the child every tool runs, and
//   exits 0 only when it received every expected value. A run whose check failed is reported as failed, not
//   timed;
// - runs the tools interleaved (each round runs every tool once per case, in a rotating order), so that the
//   machine's drift hits all of them alike, and prints medians, and ratios to vault-env (or, without it, to
//   the single executable) as the median of the per-round ratios;
// - counts the Vault requests of one run of each tool and case from the audit log;
// - measures the resident mode (vaultrun --supervise, envconsul, vault-env with VAULT_ENV_DAEMON) with 200
//   references: VmRSS after --idle seconds, the anonymous part of it (RssAnon: the rest is the executable's
//   pages, clean and shared), and VmHWM (the peak). As root it first empties the page cache (sync, then
//   /proc/sys/vm/drop_caches): how many of an executable's pages a process maps depends on how the cache holds
//   the file — right after the build wrote dist/vaultrun (one large write) the kernel keeps it in large folios
//   and maps them whole, +36 MiB of VmRSS that a copy of the same file, or the same file after a drop, does
//   not show (measured on Linux 6.18, ext4). Not root: a note says the file part may be inflated;
// - prints the size of the single executable and what a registry layer of it costs (gzip, zstd).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { startOpenBao } from '../../test/support/openbao.ts';

const root = new URL('../..', import.meta.url).pathname;
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '25' },
    warmup: { type: 'string', default: '3' },
    idle: { type: 'string', default: '10' },
    json: { type: 'string' },
    only: { type: 'string' },
    'no-resident': { type: 'boolean', default: false },
    'no-size': { type: 'boolean', default: false },
  },
});
const runs = Number(opts.runs);
const warmup = Number(opts.warmup);
const idleSeconds = Number(opts.idle);
const say = (text) => process.stderr.write(`bench: ${text}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const node = process.execPath;
const cjs = join(root, 'dist/vaultrun.cjs');
const exe = join(root, 'dist/vaultrun');
for (const f of [cjs, exe]) {
  if (!existsSync(f)) {
    say(`${f} not found: run npm run build:exe first`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'vaultrun-bench-'));
const runner = join(work, 'runner');
{
  const cc = spawnSync('cc', ['-O2', '-o', runner, join(root, 'scripts/bench/runner.c')], {
    encoding: 'utf8',
  });
  if (cc.error || cc.status !== 0) {
    say(
      `cannot compile scripts/bench/runner.c with cc (apt-get install gcc): ${cc.error?.message ?? cc.stderr}`,
    );
    process.exit(1);
  }
}

// --- the secrets ---------------------------------------------------------------------------------------
const value = () => randomBytes(12).toString('hex');
/** case name → [{ name, path, key, value }] */
const cases = {
  1: [{ name: 'ONE_0', path: 'bench/one', key: 'ONE_0', value: value() }],
  200: [],
};
for (let p = 0; p < 100; p++) {
  const path = `bench/p${String(p).padStart(3, '0')}`;
  for (let k = 0; k < 2; k++) {
    const name = `S${String(p).padStart(3, '0')}_${k}`;
    cases[200].push({ name, path, key: name, value: value() });
  }
}
const caseNames = ['1', '200'];
const byPath = (refs) => {
  const m = new Map();
  for (const r of refs) m.set(r.path, { ...m.get(r.path), [r.key]: r.value });
  return m;
};

// --- the tools -------------------------------------------------------------------------------------------
const basicEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: work };

/** Each tool: how to run it for a case with a child argv (exec form), and in the resident form. */
function tools(bao) {
  const vaultEnv = { VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken };
  const list = [];
  const vaultrunEnv = (refs) => {
    const env = { ...basicEnv, ...vaultEnv };
    for (const r of refs) env[r.name] = `vault:secret/${r.path}#${r.key}`;
    return env;
  };
  list.push({
    id: 'exe',
    label: 'vaultrun single executable',
    argv: (child) => [exe, '--', ...child],
    resident: (child) => [exe, '--supervise', '--', ...child],
    env: vaultrunEnv,
  });
  list.push({
    id: 'cjs',
    label: 'vaultrun `node dist/vaultrun.cjs`',
    argv: (child) => [node, cjs, '--', ...child],
    resident: (child) => [node, cjs, '--supervise', '--', ...child],
    env: vaultrunEnv,
  });
  // An older vaultrun single executable, to compare a change with what came before it in the same run.
  const baseline = process.env.VAULTRUN_BENCH_BASELINE;
  if (baseline) {
    list.push({
      id: 'baseline',
      label: `vaultrun single executable, baseline (${process.env.VAULTRUN_BENCH_BASELINE_LABEL ?? baseline})`,
      argv: (child) => [baseline, '--', ...child],
      resident: (child) => [baseline, '--supervise', '--', ...child],
      env: vaultrunEnv,
    });
  }
  const ve = process.env.VAULTRUN_BENCH_VAULT_ENV;
  if (ve) {
    list.push({
      id: 'vault-env',
      label: `bank-vaults vault-env${version(ve, ['--version'])}`,
      argv: (child) => [ve, ...child],
      resident: (child) => [ve, ...child],
      residentEnv: { VAULT_ENV_DAEMON: 'true' },
      env: (refs) => {
        const env = { ...basicEnv, ...vaultEnv };
        for (const r of refs) env[r.name] = `vault:secret/data/${r.path}#${r.key}`;
        return env;
      },
    });
  }
  const ec = process.env.VAULTRUN_BENCH_ENVCONSUL;
  if (ec) {
    const config = (refs) => {
      const file = join(work, `envconsul-${refs.length}.hcl`);
      const blocks = [...byPath(refs).keys()].map(
        (p) => `secret {\n  path = "secret/data/${p}"\n  no_prefix = true\n}\n`,
      );
      writeFileSync(file, `vault {\n  address = "${bao.addr}"\n  renew_token = false\n}\n${blocks.join('')}`);
      return file;
    };
    const files = { 1: config(cases[1]), 200: config(cases[200]) };
    list.push({
      id: 'envconsul',
      label: `envconsul${version(ec, ['-v'])}`,
      argv: (child, refs) => [ec, '-config', files[refs.length], ...child],
      resident: (child, refs) => [ec, '-config', files[refs.length], ...child],
      env: () => ({ ...basicEnv, VAULT_TOKEN: bao.rootToken }),
    });
  }
  list.push({
    id: 'node',
    label: '`node -e 0` (the Node floor, no Vault)',
    baseline: true,
    argv: () => [node, '-e', '0'],
    resident: () => [node, '-e', 'setInterval(() => {}, 1 << 30)'],
    env: () => ({ ...basicEnv }),
  });
  const only = opts.only?.split(',');
  return only ? list.filter((t) => only.includes(t.id)) : list;
}

function version(bin, args) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  const v = /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`)?.[1];
  return v ? ` ${v}` : '';
}

const checkArgs = (refs) => refs.map((r) => `${r.name}=${r.value}`);

/** One timed run: { wallMs, cpuMs, ok, stderr }. */
function timedRun(tool, refs) {
  const argv = tool.argv([runner, 'check', ...(tool.baseline ? [] : checkArgs(refs))], refs);
  const r = spawnSync(runner, ['time', ...argv], {
    env: tool.env(refs),
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  const [wall, user, sys, status] = last.split(' ').map(Number);
  if (r.status !== 0 || status !== 0 || !Number.isFinite(wall)) {
    return { ok: false, stderr: `${r.stderr}`.slice(-2000), status };
  }
  return { ok: true, wallMs: wall / 1e6, cpuMs: (user + sys) / 1000 };
}

function auditRequests(file, from) {
  let text = '';
  try {
    text = readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return 0;
  }
  return text.split('\n').filter((l) => l.includes('"type":"request"')).length;
}

function auditSize(file) {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(text)?.[1]);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024, anon: kib('RssAnon') / 1024 };
}

/** The children of any thread of pid (a Go program forks from whichever thread). */
function childrenOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
    );
  } catch {
    return [];
  }
}

/** Resident form with 200 references: RSS after idleSeconds, and the peak. */
async function resident(tool) {
  const refs = cases[200];
  const argv = tool.resident([runner, 'hold', ...(tool.baseline ? [] : checkArgs(refs))], refs);
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...tool.env(refs), ...tool.residentEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = `${stderr}${d}`.slice(-4000);
  });
  try {
    // Up when the held child exists (the baseline has none).
    for (let i = 0; !tool.baseline && childrenOf(child.pid).length === 0; i++) {
      if (child.exitCode !== null || i > 300) return { ok: false, stderr };
      await sleep(100);
    }
    await sleep(idleSeconds * 1000);
    if (child.exitCode !== null) return { ok: false, stderr };
    return { ok: true, ...procStatus(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const kernel = spawnSync('uname', ['-sr'], { encoding: 'utf8' }).stdout.trim();
  const os = /^PRETTY_NAME="?(.*?)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  return `${cpu}, ${cpus().length} vCPU, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${os}, ${kernel}`;
}

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function sizes() {
  const out = [];
  for (const f of [exe, cjs]) {
    const raw = readFileSync(f);
    out.push({
      file: f.slice(root.length),
      bytes: raw.length,
      gzip: gzipSync(raw, { level: 6 }).length,
      zstd: zstdCompressSync(raw).length,
    });
  }
  return out;
}

// --- main ------------------------------------------------------------------------------------------------
const loadBefore = loadavg()[0];
const bao = await startOpenBao();
try {
  for (const c of caseNames) {
    for (const [path, data] of byPath(cases[c])) await bao.kvPut(path, data);
  }
  const list = tools(bao);
  const results = {};
  // Check each tool once per case, and count its requests on that run.
  for (const tool of list) {
    results[tool.id] = {};
    for (const c of caseNames) {
      const before = auditSize(bao.auditFile);
      const r = timedRun(tool, cases[c]);
      const requests = tool.baseline ? undefined : auditRequests(bao.auditFile, before);
      results[tool.id][c] = { ok: r.ok, requests, wall: [], cpu: [], failures: r.ok ? 0 : 1 };
      if (!r.ok) say(`${tool.label}, ${c} reference(s): FAILED (exit ${r.status})\n${r.stderr}`);
    }
  }
  say(`${warmup} warm-up + ${runs} interleaved rounds`);
  for (let round = 0; round < warmup + runs; round++) {
    for (const c of caseNames) {
      const order = list.map((_, i) => list[(i + round) % list.length]);
      for (const tool of order) {
        const res = results[tool.id][c];
        if (!res.ok) continue;
        const r = timedRun(tool, cases[c]);
        if (!r.ok) {
          res.failures++;
          continue;
        }
        if (round >= warmup) {
          res.wall.push(r.wallMs);
          res.cpu.push(r.cpuMs);
        }
      }
    }
  }
  const rss = {};
  if (!opts['no-resident']) {
    if (process.getuid?.() === 0) {
      spawnSync('sync');
      writeFileSync('/proc/sys/vm/drop_caches', '3\n');
      say('resident: page cache emptied first (the executables are read anew from disk)');
    } else {
      say('resident: not root, page cache left as it is: the non-anonymous part of VmRSS may be inflated');
    }
    for (const tool of list) {
      say(`resident: ${tool.label} (${idleSeconds} s idle)`);
      rss[tool.id] = await resident(tool);
      if (!rss[tool.id].ok) say(`resident ${tool.label}: FAILED\n${rss[tool.id].stderr}`);
    }
  }

  const ref = list.find((t) => t.id === 'vault-env') ?? list.find((t) => t.id === 'exe');
  /** Median of the per-round ratios (paired): tool / reference. */
  const ratio = (tool, c, key) => {
    const a = results[tool.id][c][key];
    const b = results[ref.id][c][key];
    const n = Math.min(a.length, b.length);
    if (n === 0 || tool === ref) return undefined;
    return median(Array.from({ length: n }, (_, i) => a[i] / b[i]));
  };
  const cell = (tool, c) => {
    const res = results[tool.id][c];
    if (!res.ok) return 'failed';
    if (tool.baseline && c !== '1') return '';
    const r = ratio(tool, c, 'wall');
    const fails = res.failures ? ` (${res.failures} failed)` : '';
    return `${median(res.wall).toFixed(0)} ms${r === undefined ? '' : ` (${r.toFixed(2)}×)`}${fails}`;
  };
  const cpuCell = (tool) => {
    const parts = caseNames.map((c) =>
      results[tool.id][c].ok && !(tool.baseline && c !== '1')
        ? median(results[tool.id][c].cpu).toFixed(0)
        : '–',
    );
    return parts.join(' · ');
  };
  const reqCell = (tool) =>
    tool.baseline ? '' : caseNames.map((c) => results[tool.id][c].requests ?? '–').join(' · ');
  const rssCell = (tool) => {
    const r = rss[tool.id];
    if (!r) return '';
    if (!r.ok) return 'failed';
    return `${r.rss.toFixed(0)} MiB (anon ${r.anon.toFixed(0)}, peak ${r.hwm.toFixed(0)})`;
  };
  const date = new Date().toISOString().slice(0, 10);
  const lines = [
    `Measured ${date} on ${machine()} (load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after: other work on the machine inflates wall times, less so CPU times); Node ${process.version}; OpenBao dev server on 127.0.0.1 with a file audit device, token login; ${runs} interleaved rounds after ${warmup} warm-up; medians, (×) = median of the per-round ratios to ${ref.label}.`,
    '',
    `| | 1 reference | 200 references / 100 paths | CPU ms (1 · 200) | requests (1 · 200) | resident RSS idle ${idleSeconds} s (200 refs) |`,
    '|---|---:|---:|---:|---:|---:|',
    ...list.map(
      (t) =>
        `| ${t.label} | ${cell(t, '1')} | ${cell(t, '200')} | ${cpuCell(t)} | ${reqCell(t)} | ${rssCell(t)} |`,
    ),
  ];
  if (!opts['no-size']) {
    const s = sizes();
    lines.push(
      '',
      '| artifact | size | gzip -6 (a registry layer) | zstd -3 |',
      '|---|---:|---:|---:|',
      ...s.map((x) => `| \`${x.file}\` | ${mib(x.bytes)} | ${mib(x.gzip)} | ${mib(x.zstd)} |`),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (opts.json)
    writeFileSync(opts.json, `${JSON.stringify({ date, machine: machine(), results, rss }, null, 2)}\n`);
} finally {
  await bao.stop();
  rmSync(work, { recursive: true, force: true });
}
