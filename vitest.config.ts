import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests start real OpenBao servers and processes: give them room, keep output readable.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          // Everything but test/containers/ and test/soak/ (the soak runs on its own: vitest.soak.config.ts, `npm run
          // soak`, a step of .ci/run; an exclude here would replace the one given on the command line).
          include: ['test/*.test.ts', 'test/!(containers|soak)/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // A real Docker engine (test/containers/global-setup.ts starts it if needed). groupOrder 1: these files
        // run after every other one, two at a time, with nothing else competing for the CPU.
        extends: true,
        test: {
          name: 'containers',
          include: ['test/containers/**/*.test.ts'],
          globalSetup: ['test/containers/global-setup.ts'],
          testTimeout: 5 * 60_000,
          hookTimeout: 15 * 60_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
