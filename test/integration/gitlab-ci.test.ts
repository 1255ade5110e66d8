// The GitLab CI/CD template (ci/gitlab/vaultrun.gitlab-ci.yml) run as a runner runs a job that extends it:
// the hidden job's before_script, then the job's script, in one bash (`set -eo pipefail`, as GitLab's shell
// executor), with GitLab's predefined variables, the job's variables over the template's, and the ID token
// GitLab would issue for `id_tokens: VAULTRUN_JWT: aud: $VAULT_ADDR` — a JWT with GitLab's claims signed by a
// test key. The real OpenBao verifies it (jwt auth) against a role bound to project_path, ref and ref_type.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { baseEnv, VAULTRUN_BIN } from '../support/cli.js';
import { signingKey, signJwt } from '../support/identity.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

interface Job {
  id_tokens?: Record<string, { aud: string | string[] }>;
  variables?: Record<string, string>;
  before_script?: string[];
  script?: string[];
}

const template = parse(readFileSync(join(REPO_ROOT, 'ci/gitlab/vaultrun.gitlab-ci.yml'), 'utf8')) as Record<
  string,
  Job
>;
const hidden = template['.vaultrun'] as Job;

/** GitLab's variable expansion of $NAME / ${NAME} (enough for id_tokens:aud). */
function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => vars[name] ?? '');
}

/** GitLab's ID token claims for a pipeline of `project` on branch `ref`. */
function gitlabClaims(project: string, ref: string, aud: string): Record<string, unknown> {
  return {
    iss: 'https://gitlab.example.test',
    aud,
    sub: `project_path:${project}:ref_type:branch:ref:${ref}`,
    namespace_path: project.split('/')[0],
    project_path: project,
    ref,
    ref_type: 'branch',
    ref_protected: 'true',
    pipeline_source: 'push',
    job_id: '4242',
    user_login: 'dev',
  };
}

describe('GitLab CI template', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const key = signingKey('RS256');
  const deployKey = sensitive.add('deploy key', unique('deploykey'));
  const tricky = `${unique("it's")}\n$(touch pwned) \`x\` "q" \\ %s`;
  sensitive.add('tricky value', tricky.split('\n')[0] ?? '');

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('ci/deploy', { key: deployKey, tricky });
    await bao.writePolicy('read-ci', 'path "secret/data/ci/*" { capabilities = ["read"] }');
    await bao.api('POST', 'sys/auth/jwt', { type: 'jwt' });
    await bao.api('POST', 'auth/jwt/config', {
      jwt_validation_pubkeys: [key.publicPem],
      bound_issuer: 'https://gitlab.example.test',
    });
    await bao.api('POST', 'auth/jwt/role/deploy', {
      role_type: 'jwt',
      user_claim: 'sub',
      bound_audiences: [bao.addr],
      bound_claims: { project_path: 'acme/app', ref: 'main', ref_type: 'branch' },
      token_policies: ['read-ci'],
      token_ttl: '10m',
    });
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /**
   * Runs a job `extends: .vaultrun` with `variables` and `script`, as GitLab would: predefined variables, the
   * template's variables under the job's, the ID token for the project and ref (unless `token` is false).
   */
  function runJob(
    variables: Record<string, string>,
    script: string[],
    opts: { project?: string; ref?: string; token?: boolean } = {},
  ) {
    const dir = tempDir('vaultrun-gitlab-');
    const project = opts.project ?? 'acme/app';
    const ref = opts.ref ?? 'main';
    const vars: Record<string, string> = {
      CI: 'true',
      GITLAB_CI: 'true',
      CI_PROJECT_PATH: project,
      CI_PROJECT_DIR: dir,
      CI_COMMIT_REF_NAME: ref,
      CI_COMMIT_BRANCH: ref,
      CI_JOB_ID: '4242',
      CI_SERVER_URL: 'https://gitlab.example.test',
      ...hidden.variables,
      // The runner's image would have vaultrun on PATH; here it is the CLI under test.
      VAULTRUN: VAULTRUN_BIN.join(' '),
      ...variables,
    };
    for (const [name, spec] of Object.entries(hidden.id_tokens ?? {})) {
      if (opts.token === false) continue;
      const aud = expand(String(spec.aud), vars);
      vars[name] = sensitive.add('ID token', signJwt(key, gitlabClaims(project, ref, aud)));
    }
    const lines = [...(hidden.before_script ?? []), ...script];
    const res = spawnSync('bash', ['-eo', 'pipefail', '-c', lines.join('\n')], {
      cwd: dir,
      env: baseEnv(vars),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    return { ...res, dir };
  }

  it('declares the ID token in VAULTRUN_JWT with the Vault address as audience', () => {
    expect(hidden.id_tokens).toEqual({ VAULTRUN_JWT: { aud: '$VAULT_ADDR' } });
  });

  it("the job's script sees the secrets, exactly; other variables are untouched", () => {
    const out = 'env.json';
    const job = runJob(
      {
        VAULT_ADDR: bao.addr,
        VAULTRUN_JWT_ROLE: 'deploy',
        DEPLOY_KEY: 'vault:secret/ci/deploy#key',
        TRICKY: 'vault:secret/ci/deploy#tricky',
        URL: 'https://deploy:${vault:secret/ci/deploy#key}@example.test',
        PLAIN: 'just text',
      },
      [`node -e 'require("fs").writeFileSync("${out}", JSON.stringify(process.env))'`],
    );
    expect(job.status, `${job.stdout}${job.stderr}`).toBe(0);
    const env = JSON.parse(readFileSync(join(job.dir, out), 'utf8')) as Record<string, string>;
    expect(env.DEPLOY_KEY).toBe(deployKey);
    expect(env.TRICKY).toBe(tricky);
    expect(env.URL).toBe(`https://deploy:${deployKey}@example.test`);
    expect(env.PLAIN).toBe('just text');
    expect(env.vaultrun_exports).toBeUndefined();
    // The value's $(…) was data, never run.
    expect(existsSync(join(job.dir, 'pwned'))).toBe(false);
    expectNoLeaks(`${job.stdout}${job.stderr}`, sensitive);
    expect(job.stderr).toMatch(/resolved 3 references from 1 path in \d+ ms via jwt/);
  });

  it("GitLab's own variables are never resolved (a commit or merge request title that looks like a reference); the user's VAULTRUN_PASSTHROUGH still counts", () => {
    const out = 'env.json';
    const title = 'vault: retry logins on 503';
    const mrTitle = 'Draft: see ${vault:secret/ci/deploy#key}';
    const job = runJob(
      {
        VAULT_ADDR: bao.addr,
        VAULTRUN_JWT_ROLE: 'deploy',
        DEPLOY_KEY: 'vault:secret/ci/deploy#key',
        CI_COMMIT_TITLE: title,
        CI_COMMIT_MESSAGE: `${title}\n\nvault:secret/ci/deploy#key`,
        CI_MERGE_REQUEST_TITLE: mrTitle,
        GITLAB_USER_NAME: 'vault:secret/ci/deploy#key',
        CHAT_INPUT: '${vault:secret/ci/deploy#key}',
        MINE: 'vault:secret/ci/deploy#key',
        VAULTRUN_PASSTHROUGH: 'MINE',
      },
      [`node -e 'require("fs").writeFileSync("${out}", JSON.stringify(process.env))'`],
    );
    expect(job.status, `${job.stdout}${job.stderr}`).toBe(0);
    const env = JSON.parse(readFileSync(join(job.dir, out), 'utf8')) as Record<string, string>;
    expect(env.DEPLOY_KEY).toBe(deployKey);
    expect(env.CI_COMMIT_TITLE).toBe(title);
    expect(env.CI_COMMIT_MESSAGE).toBe(`${title}\n\nvault:secret/ci/deploy#key`);
    expect(env.CI_MERGE_REQUEST_TITLE).toBe(mrTitle);
    expect(env.GITLAB_USER_NAME).toBe('vault:secret/ci/deploy#key');
    expect(env.CHAT_INPUT).toBe('${vault:secret/ci/deploy#key}');
    expect(env.MINE).toBe('vault:secret/ci/deploy#key');
    expect(Object.values(env).filter((v) => v.includes(deployKey))).toEqual([deployKey]);
    expectNoLeaks(`${job.stdout}${job.stderr}`, sensitive);
    expect(job.stderr).toMatch(/resolved 1 reference from 1 path in \d+ ms via jwt/);
  });

  it('a job of another project: login refused, the job fails before its script', () => {
    const job = runJob(
      { VAULT_ADDR: bao.addr, VAULTRUN_JWT_ROLE: 'deploy', DEPLOY_KEY: 'vault:secret/ci/deploy#key' },
      ['echo script-ran'],
      { project: 'evil/fork' },
    );
    expect(job.status).toBe(67);
    expect(job.stdout).not.toContain('script-ran');
    expect(job.stderr).toMatch(/login refused.*claim "project_path" does not match/);
    expectNoLeaks(`${job.stdout}${job.stderr}`, sensitive);
  });

  it('a job on another branch: login refused (67)', () => {
    const job = runJob(
      { VAULT_ADDR: bao.addr, VAULTRUN_JWT_ROLE: 'deploy', DEPLOY_KEY: 'vault:secret/ci/deploy#key' },
      ['echo script-ran'],
      { ref: 'feature' },
    );
    expect(job.status).toBe(67);
    expect(job.stderr).toMatch(/claim "ref" does not match/);
  });

  it.each<[string, Record<string, string>, { token?: boolean }, number, RegExp]>([
    ['no VAULT_ADDR', { VAULTRUN_JWT_ROLE: 'deploy' }, {}, 64, /VAULT_ADDR is not set/],
    [
      'no ID token',
      { VAULT_ADDR: 'http://127.0.0.1:1' },
      { token: false },
      67,
      /no ID token in VAULTRUN_JWT/,
    ],
  ])('%s: says what to add', (_, variables, opts, status, pattern) => {
    const job = runJob({ ...variables, DEPLOY_KEY: 'vault:secret/ci/deploy#key' }, ['echo script-ran'], opts);
    expect(job.status).toBe(status);
    expect(job.stdout).not.toContain('script-ran');
    expect(job.stderr).toMatch(pattern);
  });
});
