import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The soak runs on its own (vitest.soak.config.ts: `npm run soak`, a step of .ci/run).
    exclude: [...configDefaults.exclude, 'test/soak/**'],
    // Integration tests start real OpenBao servers and processes: give them room, keep output readable.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
