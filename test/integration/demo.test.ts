import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/openbao.js';

// The README's quick start is `npm ci && npm run demo`: the demo script must keep working.
describe('npm run demo (scripts/demo.mjs)', () => {
  it('starts OpenBao, resolves the sample Dify secrets through AppRole files, and the app gets no credential', () => {
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/demo.mjs')], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/resolved 11 references from 8 paths in \d+ ms via approle/);
    expect(run.stdout).toMatch(/DB_PASSWORD\s+•+ \(24 chars\)/);
    expect(run.stdout).toMatch(/CELERY_BROKER_URL\s+redis:\/\/:••••@redis:6379\/1/);
    expect(run.stdout).toMatch(/S3_SECRET_KEY_FILE\s+\/\S+\/S3_SECRET_KEY/);
    expect(run.stdout).toContain("Vault credentials/settings in the app's environment: none");
  });
});
