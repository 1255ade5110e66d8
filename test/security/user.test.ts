// --user as root, for real: the command's HOME, USER and LOGNAME follow the user (a uid without a passwd
// entry gets HOME=/ and no USER or LOGNAME), and a malformed value is exit 64 naming --user.
import { describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { PROBE, reportFromStdout } from '../support/processes.js';

describe('--user as root', () => {
  const env = () => baseEnv({ HOME: '/root', USER: 'root', LOGNAME: 'root' });

  it.each([
    ['nobody', { uid: 'nobody', HOME: '/nonexistent', USER: 'nobody', LOGNAME: 'nobody' }],
    ['65534:65534', { uid: 'nobody', HOME: '/nonexistent', USER: 'nobody', LOGNAME: 'nobody' }],
    ['4242:4242', { uid: '4242', HOME: '/', USER: undefined, LOGNAME: undefined }],
  ])('--user %s', async (spec, expected) => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root');
    const res = await runVaultrun(['--user', spec, '--', process.execPath, PROBE], { env: env() });
    expect(res.exitCode, res.stderr).toBe(0);
    const probe = reportFromStdout(res.stdout);
    expect({ HOME: probe.env.HOME, USER: probe.env.USER, LOGNAME: probe.env.LOGNAME }).toEqual({
      HOME: expected.HOME,
      USER: expected.USER,
      LOGNAME: expected.LOGNAME,
    });
  });

  it.each(['1000x', '1000:', '1000:1000:5', '-1:0', '4294967295:0', '0:4294967295'])(
    '--user %s is exit 64 naming --user',
    async (spec) => {
      const res = await runVaultrun(['--user', spec, '--', 'true'], { env: env() });
      expect(res.exitCode, res.stderr).toBe(64);
      expect(res.stderr).toMatch(/--user/);
    },
  );
});
