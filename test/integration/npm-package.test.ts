// The npm package: `npm pack` ships only what a user needs (the bundle, README, LICENSE, package.json; no
// sources, tests or dependencies: the bundle has them all), `prepack` builds the bundle, and the tarball
// installs offline into an empty directory and runs with `npx vaultrun` on the project's Node.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { REPO_ROOT } from '../support/openbao.js';
import { tempDir } from '../support/resolution.js';

const SHIPPED = ['LICENSE', 'README.md', 'dist/vaultrun.cjs', 'package.json'];

/** npm with a clean environment: the project's Node first on PATH, a private cache, no user config. */
function npm(args: string[], cwd: string, cache: string): string {
  const env = baseEnv({
    npm_config_cache: cache,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  });
  env.PATH = `${dirname(process.execPath)}:${env.PATH}`;
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

describe('npm package', () => {
  it('the repository packs exactly LICENSE, README.md, dist/vaultrun.cjs and package.json', () => {
    const cache = tempDir('vaultrun-npm-cache-');
    // --ignore-scripts: no rebuild of dist/vaultrun.cjs while other test files run it.
    const [pack] = JSON.parse(
      npm(['pack', '--dry-run', '--json', '--ignore-scripts'], REPO_ROOT, cache),
    ) as PackResult[];
    expect(pack?.files.map((f) => f.path).sort()).toEqual(SHIPPED);
  });

  it('packed from a clean tree (prepack builds), installed offline in an empty directory, `npx vaultrun` runs', () => {
    const work = tempDir('vaultrun-npm-');
    const cache = join(work, 'cache');
    // What a fresh checkout has: sources and scripts, no dist/.
    const tree = join(work, 'tree');
    mkdirSync(tree);
    for (const entry of ['package.json', 'package-lock.json', 'README.md', 'LICENSE', 'scripts', 'src']) {
      cpSync(join(REPO_ROOT, entry), join(tree, entry), { recursive: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(tree, 'node_modules'));
    const [pack] = JSON.parse(
      npm(['pack', '--json', '--pack-destination', work], tree, cache),
    ) as PackResult[];
    expect(pack?.files.map((f) => f.path).sort()).toEqual(SHIPPED);

    const app = join(work, 'app');
    mkdirSync(app);
    npm(
      ['install', '--offline', '--no-package-lock', join(work, pack?.filename ?? '')],
      app,
      join(work, 'empty-cache'),
    );
    // Nothing but vaultrun itself was installed: the bundle needs no dependency.
    expect(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['vaultrun']);
    expect(readdirSync(join(app, 'node_modules/vaultrun'), { recursive: true }).sort()).toEqual([
      'LICENSE',
      'README.md',
      'dist',
      'dist/vaultrun.cjs',
      'package.json',
    ]);

    const version = npm(['exec', '--offline', '--no', '--', 'vaultrun', '--version'], app, cache);
    expect(version).toBe(`vaultrun 0.1.0 (node ${process.version}, commit unknown)\n`);
    // Exec mode (process.execve) through the installed bin; no references, so no Vault.
    const ran = npm(
      ['exec', '--offline', '--no', '--', 'vaultrun', '--', 'node', '-p', '"ran " + process.pid'],
      app,
      cache,
    );
    expect(ran).toMatch(/^ran \d+\n$/);
  });
});
