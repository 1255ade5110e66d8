// Property: a malformed 200 answer to a login (not JSON, JSON without auth.client_token, fields of the wrong
// type) is a clear error — exit 69 when what answers is not Vault at all, 67 when the login gave no usable
// token — never "internal error" (70), and never an echo of the credentials. The server here plays a broken
// or hostile Vault (allowed in test/security/): it answers every request with HTTP 200 and a chosen body.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { expectNoLeaks, Sensitive, unique } from '../support/resolution.js';

describe('a malformed 200 answer at login', () => {
  let server: Server;
  let addr: string;
  let body = '';
  const sensitive = new Sensitive();
  const roleId = sensitive.add('role_id', unique('role'));
  const secretId = sensitive.add('secret_id', unique('secret'));
  const token = sensitive.add('token', unique('hvs'));

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    addr = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function start(answer: string, credentials: Record<string, string>) {
    body = answer;
    const res = await runVaultrun(['--wait', '2s', '--', 'true'], {
      env: baseEnv({
        VAULT_ADDR: addr,
        X: 'vault:secret/app#key',
        VAULTRUN_LOG_LEVEL: 'debug',
        ...credentials,
      }),
    });
    const output = `${res.stdout}${res.stderr}`;
    expectNoLeaks(output, sensitive);
    expect(output).not.toMatch(/internal error/);
    return { status: res.exitCode, output };
  }

  const approle = { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId };
  const echo = JSON.stringify({ auth: { role_id: roleId, secret_id: secretId } });

  it.each([
    ['an HTML page', '<html><body>Welcome to the proxy</body></html>', 69, /not a JSON object/],
    ['an empty body', '', 69, /not a JSON object/],
    ['a JSON array', '[]', 69, /not a JSON object/],
    ['a JSON string', '"hvs.x"', 69, /not a JSON object/],
    ['JSON without auth', '{}', 67, /holds no client token/],
    ['auth: null', '{"auth":null}', 67, /holds no client token/],
    ['a numeric client_token', '{"auth":{"client_token":123}}', 67, /holds no client token/],
    ['an empty client_token', '{"auth":{"client_token":""}}', 67, /holds no client token/],
    ['a client_token with a newline', '{"auth":{"client_token":"a\\nb"}}', 67, /holds no client token/],
    [
      'a string lease_duration',
      '{"auth":{"client_token":"hvs.abcdefgh","lease_duration":"long"}}',
      67,
      /malformed auth.lease_duration/,
    ],
    [
      'a string renewable',
      '{"auth":{"client_token":"hvs.abcdefgh","renewable":"yes"}}',
      67,
      /malformed auth.renewable/,
    ],
    ['the credentials echoed back', echo, 67, /holds no client token/],
  ])('AppRole login answered with %s (%j): exit %i', async (_name, answer, status, message) => {
    const run = await start(answer, approle);
    expect(run.status, run.output).toBe(status);
    expect(run.output).toMatch(message);
    expect(run.output).toMatch(/auth\/approle\/login/);
  });

  it.each([
    ['an HTML page', '<html></html>', 69, /not a JSON object/],
    ['JSON without data', '{}', 67, /holds no data/],
    ['a string ttl', '{"data":{"ttl":"1h"}}', 67, /malformed data.ttl/],
  ])('token lookup answered with %s (%j): exit %i', async (_name, answer, status, message) => {
    const run = await start(answer, { VAULT_TOKEN: token });
    expect(run.status, run.output).toBe(status);
    expect(run.output).toMatch(message);
    expect(run.output).toMatch(/lookup-self/);
  });
});
