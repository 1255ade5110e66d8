// A password in the Vault address (`http://user:password@host:8200`, for a proxy in front of Vault) is a
// credential like a token: vaultrun sends it as a Basic Authorization header and never prints it — not in the
// address its messages show (`http://user:<redacted>@host`), not when a server echoes the header back, at any
// log level. (In /proc/<vaultrun>/environ: test/security/proc-credentials.test.ts.) The servers here are NOT
// Vault: a port nothing listens on, and a hostile server that answers 500 with our request headers.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';

const USER = 'proxyuser';
const FAKE_TOKEN = 's.address-test-token-0123456789';

/** A random password with characters that are percent-encoded in a URL (and one "@"). */
function password(): { raw: string; inUrl: string } {
  const core = randomBytes(12).toString('base64url').replace(/[-_]/g, 'x');
  const raw = `${core}@!`;
  return { raw, inUrl: `${core}%40!` };
}

/** Every piece of 6 characters of a value: none may be printed. */
function pieces(value: string, length = 6): string[] {
  const out: string[] = [];
  for (let i = 0; i + length <= value.length; i++) out.push(value.slice(i, i + length));
  return out;
}

function expectNoPassword(output: string, raw: string, inUrl: string): void {
  const basic = Buffer.from(`${USER}:${raw}`).toString('base64');
  // (The user name alone is not a secret: pieces of the password, of its encoded form and of the base64.)
  for (const secret of [raw, inUrl, basic]) {
    const leaked = pieces(secret).filter((p) => output.includes(p));
    expect(leaked, `pieces of the address's password in the output:\n${output}`).toEqual([]);
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

const run = (env: Record<string, string>, args: string[] = []) =>
  runVaultrun([...args, '--', process.execPath, '-e', 'process.exit(0)'], {
    env: baseEnv({
      VAULT_TOKEN: FAKE_TOKEN,
      VAULTRUN_LOG_LEVEL: 'debug',
      VAULTRUN_WAIT: '1s',
      DB_PASSWORD: 'vault:secret/app/db#password',
      ...env,
    }),
  });

describe('a password in VAULT_ADDR is never printed', () => {
  let echo: Server;
  let echoPort: number;
  /** The Authorization headers the hostile server received. */
  const received: string[] = [];
  let closedPort: number;

  beforeAll(async () => {
    // Echoes every request header back in a 500 (retried, so logged at debug while retrying, then in the error).
    echo = createServer((req, res) => {
      received.push(String(req.headers.authorization));
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            errors: [
              `headers: ${JSON.stringify(req.headers)}`,
              `authorization ${req.headers.authorization}`,
              `credentials ${String(req.headers.authorization).slice('Basic '.length)}`,
            ],
          }),
        );
      });
    });
    echoPort = await listen(echo);
    const unused = createServer();
    closedPort = await listen(unused);
    await new Promise((r) => unused.close(r));
  });

  afterAll(async () => {
    await new Promise((r) => echo?.close(r));
  });

  it.each(['VAULT_ADDR', 'BAO_ADDR'])(
    'unreachable (%s): the error shows the address without the password (69)',
    async (name) => {
      const { raw, inUrl } = password();
      const addr = `http://${USER}:${inUrl}@127.0.0.1:${closedPort}`;
      const result = await run({ [name]: addr });
      expect(result.exitCode, result.stderr).toBe(69);
      expect(result.stderr).toContain(
        `Vault at http://${USER}:<redacted>@127.0.0.1:${closedPort} is unavailable while`,
      );
      expect(result.stderr).toMatch(/ECONNREFUSED/);
      expectNoPassword(result.stderr, raw, inUrl);
    },
  );

  it.each(['text', 'json'])(
    'a server echoing the Basic header in 500s: neither the password nor its base64 (debug, %s)',
    async (format) => {
      const { raw, inUrl } = password();
      received.length = 0;
      const result = await run({
        VAULT_ADDR: `http://${USER}:${inUrl}@127.0.0.1:${echoPort}`,
        VAULTRUN_LOG_FORMAT: format,
      });
      expect(result.exitCode, result.stderr).toBe(69);
      // The premise: the header was sent, and echoed while retrying.
      expect(received.length).toBeGreaterThan(0);
      expect(received[0]).toBe(`Basic ${Buffer.from(`${USER}:${raw}`).toString('base64')}`);
      expect(result.stderr).toMatch(/retrying Vault request/);
      expect(result.stderr).toMatch(/HTTP 500/);
      expect(result.stderr).toContain(`${USER}:<redacted>@127.0.0.1:${echoPort}`);
      expectNoPassword(result.stderr, raw, inUrl);
    },
  );

  it('a TLS failure (https:// to a plain HTTP server) names the address without the password', async () => {
    const { raw, inUrl } = password();
    const result = await run({ VAULT_ADDR: `https://${USER}:${inUrl}@127.0.0.1:${echoPort}` });
    expect(result.exitCode, result.stderr).toBe(69);
    expect(result.stderr).toContain(
      `TLS failure talking to Vault at https://${USER}:<redacted>@127.0.0.1:${echoPort}`,
    );
    expectNoPassword(result.stderr, raw, inUrl);
  });

  it('--addr with a password is refused (a command line is readable by all), the password not printed', async () => {
    const { raw, inUrl } = password();
    const result = await run({}, ['--addr', `http://${USER}:${inUrl}@127.0.0.1:${echoPort}`]);
    expect(result.exitCode, result.stderr).toBe(64);
    expect(result.stderr).toMatch(/--addr: holds a user name or password/);
    expectNoPassword(result.stderr, raw, inUrl);
  });
});
