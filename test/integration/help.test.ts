// --help, --version and the subcommands' --help, run as a user runs them (the built CLI): exit 0, the text on
// stdout and nothing on stderr, every flag of the settings table and every exit status listed. No Vault.
import { describe, expect, it } from 'vitest';
import { EXIT_TABLE } from '../../src/errors.js';
import { SETTINGS, type Setting } from '../../src/settings.js';
import { baseEnv, runVaultrun, VAULTRUN_BIN } from '../support/cli.js';

describe('help and version', () => {
  it('--help: the usage, every setting flag and every exit status on stdout; exit 0, stderr empty', async () => {
    const res = await runVaultrun(['--help'], { env: baseEnv() });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout.startsWith('Usage: vaultrun [options] [--] COMMAND [ARGS...]\n')).toBe(true);
    for (const setting of SETTINGS as readonly Setting[]) {
      if (setting.flag) expect(res.stdout, setting.flag).toContain(`--${setting.flag}`);
    }
    for (const [code, meaning] of EXIT_TABLE) {
      expect(res.stdout, String(code)).toContain(`${String(code).padStart(5)}  ${meaning.split(' (')[0]}`);
    }
  });

  it('--version: one line with the version, the Node version and the commit; exit 0', async () => {
    const res = await runVaultrun(['--version'], { env: baseEnv() });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    // `npm run test:exe` runs the single executable, which says so.
    const exe = VAULTRUN_BIN.length === 1 && !VAULTRUN_BIN[0]?.endsWith('.cjs');
    expect(res.stdout).toMatch(
      /^vaultrun \d+\.\d+\.\d+\S* \(node v\d+\.\d+\.\d+, commit [0-9a-f]{7,}\S*(, single executable)?\)\n$/,
    );
    expect(res.stdout.includes(', single executable)')).toBe(exe);
  });

  it.each(['check', 'resolve'])('%s --help: its own usage; exit 0, nothing resolved', async (sub) => {
    const res = await runVaultrun([sub, '--help'], {
      env: baseEnv({ VAULT_ADDR: 'http://127.0.0.1:9', X: 'vault:secret/app#x' }),
    });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout.startsWith(`Usage: vaultrun ${sub} [options]\n`)).toBe(true);
  });
});
