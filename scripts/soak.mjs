// npm run soak [-- --soak-minutes N] [vitest options…]: builds, then runs test/soak/ for N minutes (default
// VAULTRUN_SOAK_MINUTES, else 10).
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const env = { ...process.env };
const at = args.indexOf('--soak-minutes');
if (at >= 0) {
  const minutes = args[at + 1];
  if (!minutes || !(Number(minutes) > 0)) {
    console.error('--soak-minutes wants a positive number of minutes');
    process.exit(64);
  }
  env.VAULTRUN_SOAK_MINUTES = minutes;
  args.splice(at, 2);
}
const run = (cmd, argv) => {
  const res = spawnSync(cmd, argv, { stdio: 'inherit', env });
  if (res.status !== 0) process.exit(res.status ?? 1);
};
run(process.execPath, ['scripts/build.mjs']);
run('npx', ['vitest', 'run', '--config', 'vitest.soak.config.ts', ...args]);
