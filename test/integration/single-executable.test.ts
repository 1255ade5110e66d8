// The single executable, dist/vaultrun (Node SEA, `npm run build:exe`), whatever VAULTRUN_BIN says: its version
// line, no warning on stderr, and that NODE_OPTIONS and Node flags cannot inject code into it (they would run
// before vaultrun and see its credentials) while NODE_OPTIONS still reaches the command. Each check on the
// executable has a control with `node dist/vaultrun.cjs`, where the same input does take effect.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { BUNDLE, singleExecutable } from '../support/exe.js';
import { spawnCaptured } from '../support/namespaces.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { workDir, writeFile } from '../support/processes.js';

const SECRET = 'sea-secret-41b7c9d2';
const REF = 'vault:secret/app/sea#password';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function json(path: string): { version: string } {
  return JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as { version: string };
}

/** The app: prints NODE_OPTIONS as it got it and the sha256 of DB_PASSWORD (never the value). */
const APP = [
  '/bin/sh',
  '-c',
  'printf "NODE_OPTIONS=%s\\n" "${NODE_OPTIONS-unset}"; printf %s "$DB_PASSWORD" | sha256sum',
];

describe('the single executable (dist/vaultrun)', () => {
  let exe: string;
  let bao: OpenBao;

  beforeAll(async () => {
    exe = singleExecutable();
    bao = await startOpenBao();
    await bao.kvPut('app/sea', { password: SECRET });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  const run = (argv: string[], env: Record<string, string>) => spawnCaptured(argv, { env }).result;

  it('--version names the version, the pinned Node, the build commit and "single executable"; nothing on stderr', async () => {
    const res = await run([exe, '--version'], baseEnv());
    expect(res.exitCode).toBe(0);
    expect(res.stderr, 'no experimental-feature warning').toBe('');
    const version = json('package.json').version;
    const node = json('node_modules/node/package.json').version;
    expect(res.stdout).toMatch(
      new RegExp(
        `^vaultrun ${version.replaceAll('.', '\\.')} \\(node v${node.replaceAll('.', '\\.')}, commit ([0-9a-f]{12}(-dirty)?|unknown), single executable\\)\\n$`,
      ),
    );
    // The bundle run by Node says the same, without "single executable".
    const bundle = await run([process.execPath, BUNDLE, '--version'], baseEnv());
    expect(bundle.exitCode).toBe(0);
    expect(bundle.stdout).toBe(res.stdout.replace(', single executable', ''));
  });

  describe('NODE_OPTIONS', () => {
    it('--require=/nonexistent does not affect dist/vaultrun, and still reaches the command', async () => {
      const env = baseEnv({
        NODE_OPTIONS: '--require=/nonexistent',
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        DB_PASSWORD: REF,
      });
      const res = await run([exe, '--', ...APP], env);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe(`NODE_OPTIONS=--require=/nonexistent\n${sha256(SECRET)}  -\n`);
      expect(res.stderr).not.toContain(SECRET);

      // Control: Node running the bundle reads NODE_OPTIONS and fails before vaultrun starts.
      const control = await run([process.execPath, BUNDLE, '--', ...APP], env);
      expect(control.exitCode).not.toBe(0);
      expect(control.stderr).toMatch(/Cannot find module '\/nonexistent'/);
      expect(control.stdout).toBe('');
    });

    it('a --require hook never runs inside dist/vaultrun, where it would see the Vault token', async () => {
      const dir = workDir('vaultrun-sea-');
      const marker = join(dir, 'hook-ran');
      const hook = writeFile(
        join(dir, 'hook.cjs'),
        `require('node:fs').writeFileSync(${JSON.stringify(marker)}, process.env.VAULT_TOKEN ? 'saw VAULT_TOKEN' : 'no token');\n`,
        0o644,
      );
      const env = baseEnv({
        NODE_OPTIONS: `--require=${hook}`,
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        DB_PASSWORD: REF,
      });
      const res = await run([exe, '--', ...APP], env);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stdout).toBe(`NODE_OPTIONS=--require=${hook}\n${sha256(SECRET)}  -\n`);
      expect(existsSync(marker)).toBe(false);

      // Control: the same hook runs inside `node dist/vaultrun.cjs`, before vaultrun, with the token in reach.
      const control = await run([process.execPath, BUNDLE, '--', ...APP], env);
      expect(control.exitCode, control.stderr).toBe(0);
      expect(readFileSync(marker, 'utf8')).toBe('saw VAULT_TOKEN');
    });
  });

  it('the bundle is ASCII only, so that V8 keeps its source one byte a character (the start-up snapshot holds it)', () => {
    const text = readFileSync(BUNDLE, 'latin1');
    expect(text.length).toBeGreaterThan(100_000);
    const outside = [...text].filter((c) => c.charCodeAt(0) > 0x7e);
    expect(outside).toEqual([]);
  });

  it('Node flags on the command line are vaultrun arguments, not Node options (unknown option: exit 64)', async () => {
    const res = await run([exe, '--expose-gc', '--', 'true'], baseEnv());
    expect(res.exitCode).toBe(64);
    expect(res.stderr).toMatch(/unknown option '--expose-gc'/);
  });
});
