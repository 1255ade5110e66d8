// The requests of one start with a token given (src/resolve.ts openVault): the token check
// (auth/token/lookup-self) and the first mount look-up go out together, not one after the other — the same
// three requests, one round trip less. Seen in a real OpenBao's audit log: with a token that is not valid, the
// look-up was already on its way when the check was refused (the start still fails as a refused login, 67,
// and reads nothing); with --consistency leader nothing is sent early.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';

let bao: OpenBao;

beforeAll(async () => {
  bao = await startOpenBao();
  await bao.kvPut('early/app', { password: 'early-value-1' });
});

afterAll(async () => {
  await bao?.stop();
});

const PRINT = ['--', 'node', '-e', 'process.stdout.write(process.env.DB_PASSWORD ?? "(unset)")'];

async function requestsOf(run: () => Promise<RunResult>) {
  const before = (await bao.auditEntries()).length;
  const result = await run();
  const requests = (await bao.auditEntries())
    .slice(before)
    .filter((e) => e.type === 'request')
    .map((e) => e.path);
  return { result, requests };
}

describe('a start with a token: the first mount look-up goes out alongside the token check', () => {
  it('a valid token: three requests (check, look-up, read), the value arrives', async () => {
    const { result, requests } = await requestsOf(() =>
      runVaultrun(['--log-level', 'info', ...PRINT], {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: bao.rootToken,
          DB_PASSWORD: 'vault:secret/early/app#password',
        }),
      }),
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('early-value-1');
    expect(result.stderr).toContain('requests=3');
    expect([...requests].sort()).toEqual(
      ['auth/token/lookup-self', 'secret/data/early/app', 'sys/internal/ui/mounts/secret/early/app'].sort(),
    );
  });

  it('a token that is not valid: refused as a login (67); the look-up had already gone out, no read did', async () => {
    const { result, requests } = await requestsOf(() =>
      runVaultrun(PRINT, {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: 's.not-a-valid-token-at-all',
          DB_PASSWORD: 'vault:secret/early/app#password',
        }),
      }),
    );
    expect(result.exitCode, result.stderr).toBe(67);
    expect(result.stderr).toMatch(/is not valid \(expired, revoked or mistyped\)/);
    expect(result.stdout).toBe('');
    expect(requests).toContain('auth/token/lookup-self');
    expect(requests).toContain('sys/internal/ui/mounts/secret/early/app');
    expect(requests).not.toContain('secret/data/early/app');
  });

  it('--consistency leader: nothing early (the look-up would ask sys/leader a second time)', async () => {
    const { result, requests } = await requestsOf(() =>
      runVaultrun(['--consistency', 'leader', ...PRINT], {
        env: baseEnv({
          VAULT_ADDR: bao.addr,
          VAULT_TOKEN: 's.not-a-valid-token-at-all',
          DB_PASSWORD: 'vault:secret/early/app#password',
        }),
      }),
    );
    expect(result.exitCode, result.stderr).toBe(67);
    expect(requests).toContain('auth/token/lookup-self');
    expect(requests.filter((p) => p.startsWith('sys/internal/ui/mounts/'))).toEqual([]);
  });
});
