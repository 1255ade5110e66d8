import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The GitHub Actions OIDC token, fetched as @actions/core's getIDToken does: GET $ACTIONS_ID_TOKEN_REQUEST_URL
 * (which already has a query) plus &audience=AUD, with `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`;
 * the answer is {"value": "<JWT>"}. Both the request token and the JWT go into the masker first; neither is
 * ever printed. The runner sets the two variables only in jobs with `permissions: id-token: write`.
 */
export async function fetchGithubIdToken(
  env: Readonly<Record<string, string | undefined>>,
  audience: string | undefined,
  log: Logger,
  timeoutMs = 10_000,
): Promise<string> {
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!requestUrl || !requestToken) {
    throw new VaultrunError(
      'LOGIN_FAILED',
      'method jwt: no GitHub OIDC token can be requested ($ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN are not set)',
      {
        hint: 'give the job `permissions: id-token: write` (pull requests from forks never get one), or use another method',
      },
    );
  }
  log.masker.add(requestToken);
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    throw new VaultrunError('LOGIN_FAILED', '$ACTIONS_ID_TOKEN_REQUEST_URL is not a URL');
  }
  if (audience !== undefined) url.searchParams.set('audience', audience);
  const what = `the GitHub OIDC token (audience ${audience ?? "GitHub's default"})`;
  let lastProblem = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        headers: { Authorization: `bearer ${requestToken}`, Accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (error) {
      lastProblem = (error as Error).name === 'TimeoutError' ? 'timed out' : 'could not connect';
      log.debug(`requesting ${what}: ${lastProblem}`, { attempt });
      await new Promise((r) => setTimeout(r, 500 * attempt));
      continue;
    }
    if (status >= 500) {
      lastProblem = `HTTP ${status}`;
      log.debug(`requesting ${what}: ${lastProblem}`, { attempt });
      await new Promise((r) => setTimeout(r, 500 * attempt));
      continue;
    }
    if (status !== 200) {
      // The body is not shown: it is the runner service's, and this one is not ours to print.
      throw new VaultrunError('LOGIN_FAILED', `requesting ${what}: HTTP ${status}`, {
        hint: 'the job needs `permissions: id-token: write`',
        status,
      });
    }
    let value: unknown;
    try {
      value = (JSON.parse(text) as { value?: unknown }).value;
    } catch {
      value = undefined;
    }
    if (typeof value !== 'string' || value.split('.').length !== 3) {
      throw new VaultrunError('LOGIN_FAILED', `requesting ${what}: the answer holds no token`);
    }
    log.masker.add(value);
    log.debug(`got ${what}`);
    return value;
  }
  throw new VaultrunError('UNREACHABLE', `requesting ${what}: ${lastProblem}, 3 times`, {
    hint: 'the runner service did not answer; run the job again',
  });
}
