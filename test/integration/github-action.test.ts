// The GitHub Action (action.yml → action/index.cjs, the committed bundle) run as the runner runs it: `node
// action/index.cjs` with the INPUT_* variables (action.yml's defaults included), $GITHUB_OUTPUT and
// $GITHUB_ENV files, $RUNNER_TEMP, and $ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN pointing at a test server that
// plays GitHub's OIDC endpoint, issuing JWTs signed by a test key. The real OpenBao verifies those JWTs (jwt
// auth with the test key's public key) against roles bound to GitHub's claims: repository, ref, environment.
// No Actions runner runs here: it cannot be downloaded on this machine (only package registries are reachable,
// and none ships it).

import { spawn } from 'node:child_process';
import { openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, type RunResult, spawnVaultrun, withCoverage } from '../support/cli.js';
import {
  ACTION_NODE,
  ACTION_RUN,
  githubClaims,
  inputEnv,
  type OidcServer,
  parseCommandFile,
  startOidcServer,
} from '../support/github.js';
import { signingKey } from '../support/identity.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { auditRequests, expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

describe('GitHub Action', () => {
  let bao: OpenBao;
  let oidc: OidcServer;
  const sensitive = new Sensitive();
  const key = signingKey('RS256');
  const requestToken = sensitive.add('ACTIONS_ID_TOKEN_REQUEST_TOKEN', unique('ghs_request'));
  const deployKey = sensitive.add('deploy key', unique('deploykey'));
  const dbPassword = sensitive.add('db password', unique('pw'));
  // A multi-line value with what could end a heredoc early or look like a workflow command.
  const certLine = unique('MIIBcert');
  const cert = `-----BEGIN CERTIFICATE-----\n${certLine}\nEOF\n::warning::x\n-----END CERTIFICATE-----`;
  sensitive.add('certificate line', certLine);
  let claims = githubClaims('acme/app', 'refs/heads/main', 'production');
  const AUDIENCE = 'https://vault.acme.test';

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('ci/deploy', { key: deployKey, cert });
    await bao.kvPut('ci/db', { password: dbPassword });
    await bao.writePolicy('read-ci', 'path "secret/data/ci/*" { capabilities = ["read"] }');
    await bao.api('POST', 'sys/auth/github', { type: 'jwt' });
    await bao.api('POST', 'auth/github/config', {
      jwt_validation_pubkeys: [key.publicPem],
      bound_issuer: 'https://token.actions.githubusercontent.com',
    });
    const role = (audience: string, bound: Record<string, string>) => ({
      role_type: 'jwt',
      user_claim: 'sub',
      bound_audiences: [audience],
      bound_claims: bound,
      token_policies: ['read-ci'],
      token_ttl: '10m',
    });
    await bao.api(
      'POST',
      'auth/github/role/deploy',
      role(AUDIENCE, { repository: 'acme/app', ref: 'refs/heads/main', environment: 'production' }),
    );
    // GitHub's default audience (no audience asked for): https://github.com/OWNER.
    await bao.api(
      'POST',
      'auth/github/role/default-aud',
      role('https://github.com/acme', { repository: 'acme/app' }),
    );
    oidc = await startOidcServer(key, requestToken, () => claims);
  });

  afterAll(async () => {
    await oidc?.close();
    await bao?.stop();
  });

  interface ActionRun extends RunResult {
    outputs: Record<string, string>;
    envFile: Record<string, string>;
    dir: string;
  }

  /** The runner's environment for one step: inputs, command files, the OIDC variables. */
  function stepEnv(inputs: Record<string, string>, extra: Record<string, string> = {}) {
    const dir = tempDir('vaultrun-action-');
    const outputFile = join(dir, 'github_output');
    const envFile = join(dir, 'github_env');
    writeFileSync(outputFile, '');
    writeFileSync(envFile, '');
    const env = baseEnv({
      GITHUB_ACTIONS: 'true',
      RUNNER_TEMP: dir,
      GITHUB_OUTPUT: outputFile,
      GITHUB_ENV: envFile,
      GITHUB_WORKSPACE: dir,
      ACTIONS_ID_TOKEN_REQUEST_URL: oidc.url,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      ...inputEnv({ url: bao.addr, path: 'github', role: 'deploy', jwtGithubAudience: AUDIENCE, ...inputs }),
      ...extra,
    });
    return { env, dir, outputFile, envFile };
  }

  async function runAction(
    inputs: Record<string, string>,
    extra: Record<string, string> = {},
  ): Promise<ActionRun> {
    const { env, dir, outputFile, envFile } = stepEnv(inputs, extra);
    const issuedBefore = oidc.issued.length;
    const run = await spawnVaultrun([], { bin: [ACTION_NODE, ACTION_RUN], env, cwd: dir }).result;
    for (const jwt of oidc.issued.slice(issuedBefore)) sensitive.add('OIDC JWT', jwt);
    // The secrets appear on stdout only inside ::add-mask:: commands; nothing else may hold a sensitive value.
    const unmasked = run.stdout
      .split('\n')
      .filter((line) => !line.startsWith('::add-mask::'))
      .join('\n');
    expectNoLeaks(`${unmasked}\n${run.stderr}`, sensitive);
    // The JWT and the request token are never printed, not even in a mask.
    for (const jwt of oidc.issued) expect(run.stdout + run.stderr).not.toContain(jwt);
    expect(run.stdout + run.stderr).not.toContain(requestToken);
    return {
      ...run,
      outputs: parseCommandFile(readFileSync(outputFile, 'utf8')),
      envFile: parseCommandFile(readFileSync(envFile, 'utf8')),
      dir,
    };
  }

  function expectSucceeded(run: ActionRun): void {
    expect(run.exitCode, `the action failed:\n${run.stdout}${run.stderr}`).toBe(0);
  }

  it('logs in with the OIDC token it fetched, sets outputs and env, masks every value line first', async () => {
    const before = oidc.requests.length;
    const run = await runAction({
      secrets:
        'secret/ci/deploy#key | DEPLOY_KEY\nsecret/ci/deploy#cert | TLS_CERT\nsecret/ci/db#password | DB_PASSWORD',
    });
    expectSucceeded(run);
    const expected = { DEPLOY_KEY: deployKey, TLS_CERT: cert, DB_PASSWORD: dbPassword };
    expect(run.outputs).toEqual(expected);
    expect(run.envFile).toEqual(expected);
    // One token request, with the audience asked for and the bearer token.
    expect(oidc.requests.slice(before)).toEqual([{ audience: AUDIENCE, authorized: true }]);
    expect((await auditRequests(bao, 'auth/github/login')).length).toBeGreaterThan(0);
    // stdout is the masks, and only them: each line of each value (blank lines need none).
    const masks = run.stdout.split('\n').filter((l) => l !== '');
    expect(masks.every((l) => l.startsWith('::add-mask::'))).toBe(true);
    for (const value of [deployKey, dbPassword, ...cert.split('\n')]) {
      expect(masks).toContain(`::add-mask::${value}`);
    }
    expect(run.stderr).toMatch(/resolved 3 references from 2 paths in \d+ ms via jwt/);
    expect(run.stderr).toMatch(/set 3 outputs and environment variables/);
  });

  it('prints the masks before anything else (stdout and stderr in one stream, at debug level)', async () => {
    const { env, dir } = stepEnv({ secrets: 'secret/ci/deploy#key | DEPLOY_KEY' }, { RUNNER_DEBUG: '1' });
    const out = join(dir, 'combined');
    const fd = openSync(out, 'w');
    const child = spawn(ACTION_NODE, [ACTION_RUN], {
      env: withCoverage(env),
      cwd: dir,
      stdio: ['ignore', fd, fd],
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const text = readFileSync(out, 'utf8');
    expect(code, text).toBe(0);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`::add-mask::${deployKey}`);
    expect(text).toMatch(/vaultrun debug: logged in to Vault method=jwt/);
    expect(text.indexOf('vaultrun debug')).toBeGreaterThan(text.indexOf('::add-mask::'));
    for (const jwt of oidc.issued) expect(text).not.toContain(jwt);
    expect(text).not.toContain(requestToken);
  });

  it("vault-action's lines, vaultrun's own form and a default name; exportEnv false; a 0600 json file", async () => {
    const run = await runAction({
      secrets: [
        'secret/data/ci/deploy key | VA_KEY ;',
        '  secret/ci/db password | DB_PASSWORD;  vault:secret/ci/deploy#key | SECOND',
        'DSN=postgres://app:${vault:secret/ci/db#password}@db:5432/app',
        '# a comment',
        'secret/ci/deploy#key',
      ].join('\n'),
      exportEnv: 'false',
      file: 'secrets.json',
      fileFormat: 'json',
    });
    expectSucceeded(run);
    const expected = {
      VA_KEY: deployKey,
      DB_PASSWORD: dbPassword,
      SECOND: deployKey,
      DSN: `postgres://app:${dbPassword}@db:5432/app`,
      KEY: deployKey,
    };
    expect(run.outputs).toEqual(expected);
    expect(run.envFile).toEqual({});
    const file = join(run.dir, 'secrets.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(expected);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it.each<[string, Record<string, string>, number, RegExp]>([
    [
      'the file cannot be written (its directory does not exist)',
      { secrets: 'secret/ci/deploy#key | K', file: 'nodir/secrets.env' },
      74,
      /nodir\/secrets\.env/,
    ],
    [
      'a value the dotenv file cannot hold (a carriage return)',
      { secrets: 'secret/ci/cr#v | CR', file: 'secrets.env' },
      64,
      /CR: the value cannot be written in dotenv format: it contains a carriage return/,
    ],
    [
      'a name the dotenv file cannot hold (found before anything is requested)',
      { secrets: 'secret/ci/deploy#key | API-KEY', file: 'secrets.env' },
      64,
      /input secrets: API-KEY: not a shell variable name .*cannot be written to the dotenv file/,
    ],
  ])(
    '%s: the step fails, and nothing reaches $GITHUB_OUTPUT or $GITHUB_ENV',
    async (_what, inputs, status, error) => {
      await bao.kvPut('ci/cr', { v: sensitive.add('value with CR', `${unique('cr')}\r${unique('after')}`) });
      const run = await runAction(inputs);
      expect(run.exitCode, `${run.stdout}${run.stderr}`).toBe(status);
      expect(run.stdout).toMatch(new RegExp(`^::error title=vaultrun::.*${error.source}`, 'm'));
      expect(readFileSync(join(run.dir, 'github_output'), 'utf8')).toBe('');
      expect(readFileSync(join(run.dir, 'github_env'), 'utf8')).toBe('');
    },
  );

  it("without jwtGithubAudience the token has GitHub's default audience (https://github.com/OWNER)", async () => {
    const before = oidc.requests.length;
    const run = await runAction({
      jwtGithubAudience: '',
      role: 'default-aud',
      secrets: 'secret/ci/deploy#key | DEPLOY_KEY',
    });
    expectSucceeded(run);
    expect(run.outputs).toEqual({ DEPLOY_KEY: deployKey });
    expect(oidc.requests.slice(before)).toEqual([{ audience: undefined, authorized: true }]);
  });

  describe('refused', () => {
    function expectFailed(run: ActionRun, exit: number, ...patterns: RegExp[]): void {
      expect(run.exitCode, `${run.stdout}${run.stderr}`).toBe(exit);
      expect(run.outputs).toEqual({});
      expect(run.envFile).toEqual({});
      const annotations = run.stdout.split('\n').filter((l) => l.startsWith('::error'));
      expect(annotations).toHaveLength(1);
      for (const p of patterns) expect(annotations[0]).toMatch(p);
    }

    it('a token from another repository: login refused (67) naming the role and the claims', async () => {
      claims = githubClaims('evil/fork', 'refs/heads/main', 'production');
      try {
        const run = await runAction({ secrets: 'secret/ci/deploy#key | DEPLOY_KEY' });
        expectFailed(
          run,
          67,
          /^::error title=vaultrun::login refused/,
          /role deploy/,
          /claim "repository" does not match/,
          /check the GitHub OIDC token .* against the role \(input role=deploy\) and the mount \(input path=github\)/,
        );
        expect(run.stderr).toMatch(/vaultrun error: login refused/);
      } finally {
        claims = githubClaims('acme/app', 'refs/heads/main', 'production');
      }
    });

    it('a token for another branch or environment (67)', async () => {
      for (const c of [
        githubClaims('acme/app', 'refs/heads/feature', 'production'),
        githubClaims('acme/app', 'refs/heads/main', 'staging'),
      ]) {
        claims = c;
        try {
          const run = await runAction({ secrets: 'secret/ci/deploy#key | DEPLOY_KEY' });
          expectFailed(run, 67, /login refused/);
        } finally {
          claims = githubClaims('acme/app', 'refs/heads/main', 'production');
        }
      }
    });

    it('no id-token permission: 67 saying what to add, without contacting Vault', async () => {
      const before = (await auditRequests(bao)).length;
      const run = await runAction(
        { secrets: 'secret/ci/deploy#key | DEPLOY_KEY' },
        { ACTIONS_ID_TOKEN_REQUEST_URL: '', ACTIONS_ID_TOKEN_REQUEST_TOKEN: '' },
      );
      expectFailed(run, 67, /no GitHub OIDC token/, /id-token: write/);
      expect(await auditRequests(bao)).toHaveLength(before);
    });

    it('a request token the endpoint does not accept: 67 with the HTTP status', async () => {
      const run = await runAction(
        { secrets: 'secret/ci/deploy#key | DEPLOY_KEY' },
        { ACTIONS_ID_TOKEN_REQUEST_TOKEN: sensitive.add('bad request token', unique('ghs_bad')) },
      );
      expectFailed(run, 67, /requesting the GitHub OIDC token .*HTTP 401/);
    });

    it.each<[string, Record<string, string>, RegExp]>([
      [
        'tlsSkipVerify',
        { tlsSkipVerify: 'true' },
        /input tlsSkipVerify: vaultrun does not turn TLS verification off/,
      ],
      [
        'an own setting as a name',
        { secrets: 'secret/ci/db#password | VAULT_TOKEN' },
        /VAULT_TOKEN is one of vaultrun's own settings/,
      ],
      [
        'a bad reference',
        { secrets: 'secret/ci/db | DB' },
        /secrets line 1: invalid Vault reference: missing #KEY/,
      ],
      [
        'an unknown method',
        { method: 'github' },
        /input method: expected one of jwt, token, approle, kubernetes/,
      ],
      ['no secrets', { secrets: '\n# nothing\n' }, /input secrets: no secret requested/],
    ])('%s: 64 before anything is requested', async (_, inputs, pattern) => {
      const before = oidc.requests.length;
      const run = await runAction({ secrets: 'secret/ci/deploy#key | DEPLOY_KEY', ...inputs });
      expectFailed(run, 64, pattern);
      expect(oidc.requests.length).toBe(before);
    });

    it('a missing key: 66 naming the output and the keys there', async () => {
      const run = await runAction({ secrets: 'secret/ci/deploy#nope | DEPLOY_KEY' });
      expectFailed(
        run,
        66,
        /DEPLOY_KEY: key "nope" not found at secret\/ci\/deploy/,
        /keys there: cert, key/,
      );
    });
  });

  it('method token with the token input (no OIDC request)', async () => {
    const token = sensitive.add('token', await bao.createToken({ policies: ['read-ci'] }));
    const before = oidc.requests.length;
    const run = await runAction({ method: 'token', token, secrets: 'secret/ci/db#password | DB_PASSWORD' });
    expectSucceeded(run);
    expect(run.outputs).toEqual({ DB_PASSWORD: dbPassword });
    expect(oidc.requests.length).toBe(before);
    expect(run.stdout).not.toContain(token);
  });
});
