import { describe, expect, it } from 'vitest';
import { warmUp } from '../src/warmup.js';

// warmUp runs while the single executable's start-up snapshot is made: whatever it leaves behind would be in
// every start. It must not touch the process (environment, working directory, exit code) nor leave a handle or
// a timer open (a snapshot cannot hold one), and it must finish: its asynchronous part fails the build if it
// rejects.
describe("warmUp (the start-up snapshot's warm-up)", () => {
  it('leaves the process as it found it: environment, directory, exit code, no handle or timer left', async () => {
    const env = { ...process.env };
    const cwd = process.cwd();
    const exitCode = process.exitCode;
    const resources = process.getActiveResourcesInfo().sort();
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      warmUp();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
    expect(process.env).toEqual(env);
    expect(process.cwd()).toBe(cwd);
    expect(process.exitCode).toBe(exitCode);
    expect(process.getActiveResourcesInfo().sort()).toEqual(resources);
  });
});
