// scripts/prerequisites.sh, the first step of `npm test`: run as a user who is not root, it installs nothing
// and prints exactly what to run. (As root it installs what is missing: that path runs at the start of every
// `npm test` and .ci/run, and was checked on a fresh clone with a package removed.)
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseEnv } from '../support/cli.js';
import { requireRoot, requireTool } from '../support/namespaces.js';
import { REPO_ROOT } from '../support/openbao.js';
import { tempDir } from '../support/resolution.js';

/** Runs a copy of the script as nobody (a copy nobody can read, in a directory laid out as the repo's). */
function runAsNobody(env: Record<string, string> = {}) {
  requireRoot('running scripts/prerequisites.sh as another user');
  const dir = tempDir('vaultrun-prereq-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'scripts'), { mode: 0o755 });
  const script = join(dir, 'scripts/prerequisites.sh');
  copyFileSync(join(REPO_ROOT, 'scripts/prerequisites.sh'), script);
  chmodSync(script, 0o755);
  const setpriv = requireTool('setpriv');
  const res = spawnSync(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'bash', script], {
    env: baseEnv({ HOME: dir, ...env }),
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return res;
}

describe('scripts/prerequisites.sh', () => {
  it('not root, a package missing: prints the apt-get command for exactly the missing ones and fails', () => {
    const res = runAsNobody({ VAULTRUN_PREREQUISITES_EXTRA: 'vaultrun-no-such-package tini' });
    expect(res.status, res.stderr).toBe(1);
    expect(res.stderr).toContain('missing Debian packages: vaultrun-no-such-package\n');
    expect(res.stderr).toContain(
      '  sudo apt-get update && sudo apt-get install -y --no-install-recommends vaultrun-no-such-package\n',
    );
  });

  it('not root, nothing missing: says the suite needs root, and the command for the unit tests', () => {
    const res = runAsNobody();
    expect(res.status, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/Debian packages present: postgresql tini debootstrap/);
    expect(res.stderr).toMatch(/the suite needs root .* uid is 65534/);
    expect(res.stderr).toContain('npm run test:unit');
  });
});
