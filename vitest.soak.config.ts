import { defineConfig } from 'vitest/config';

// The soak (test/soak/): run by `npm run soak` and by its own step in .ci/run, never by `npm test`.
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
