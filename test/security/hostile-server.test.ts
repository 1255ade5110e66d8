// Errors never carry part of a credential (issue 8, item 9). The server here is NOT Vault: it plays a broken
// or hostile server (or proxy) that echoes the request — the X-Vault-Token header, the AppRole login body —
// in its error messages, whole, in pieces and after long padding that our truncation would cut, with terminal
// escapes, carriage returns and newlines that would forge or split log lines. Whatever it says, vaultrun's
// output holds no piece of 6 characters or more of a credential, no raw control character, and every line
// is one log record (text: starts with "vaultrun LEVEL:", json: one object) — at debug level, in both formats.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';

/** A credential-looking random string (base62-ish, like Vault's tokens and AppRole UUIDs). */
function credential(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url').replace(/[-_]/g, 'x')}`;
}

/**
 * Everything a hostile server might say back, built from what it received. vaultrun shows the first three
 * messages at most, so those three carry the worst: a credential after padding that a cut at 200 characters
 * would leave a prefix of, pieces of every credential, and escapes and line breaks forging records.
 */
function echoes(req: IncomingMessage, body: string): string[] {
  const token = String(req.headers['x-vault-token'] ?? '');
  let login: { role_id?: string; secret_id?: string } = {};
  try {
    login = JSON.parse(body) as typeof login;
  } catch {
    // not a login
  }
  const credentials = [token, login.role_id ?? '', login.secret_id ?? ''].filter((c) => c !== '');
  return [
    credentials.map((c) => `${'p'.repeat(190)}${c}`).join(' '),
    credentials
      .map(
        (c) =>
          `starts ${c.slice(0, 10)} ends ${c.slice(-9)} middle ${c.slice(5, 17)} glued=${c.slice(0, 12)}!`,
      )
      .join(' '),
    `\u001b[2J\u001b]0;owned\u0007\u001b[31mred\u001b[0m\rvaultrun info: forged record\nvaultrun error: second forged line\u2028x\u202eevil\u0085\u009b31m`,
    `invalid token ${token}`,
    `headers: ${JSON.stringify(req.headers)}`,
    `body was: ${body}`,
  ];
}

interface Hostile {
  server: Server;
  addr: string;
  status: number;
}

function startHostile(status: number): Promise<Hostile> {
  const hostile = { status } as Hostile;
  hostile.server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      res.writeHead(hostile.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: echoes(req, body) }));
    });
  });
  return new Promise((resolve) => {
    hostile.server.listen(0, '127.0.0.1', () => {
      hostile.addr = `http://127.0.0.1:${(hostile.server.address() as AddressInfo).port}`;
      resolve(hostile);
    });
  });
}

/** Every piece of `length` characters of `value`. */
function pieces(value: string, length = 6): string[] {
  const out: string[] = [];
  for (let i = 0; i + length <= value.length; i++) out.push(value.slice(i, i + length));
  return out;
}

function expectClean(output: string, credentials: string[], format: 'text' | 'json'): void {
  for (const c of credentials) {
    const leaked = pieces(c).filter((p) => output.includes(p));
    expect(leaked, `pieces of a credential in the output:\n${output}`).toEqual([]);
  }
  // No raw control character but the line ends, no bidi override, no C1.
  expect(output).not.toMatch(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
  );
  const lines = output.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    if (format === 'text') expect(line).toMatch(/^vaultrun (debug|info|warn|error): /);
    else expect(() => JSON.parse(line), line).not.toThrow();
  }
  // The forged records stay inside one record.
  const forged = lines.filter((l) => l.includes('forged'));
  for (const l of forged) {
    if (format === 'text') expect(l).not.toMatch(/^vaultrun (info|error): (forged|second forged)/);
    else expect((JSON.parse(l) as { msg: string }).msg).not.toMatch(/^(vaultrun|forged)/);
  }
}

describe.each(['text', 'json'] as const)(
  'a server echoing our request in its errors (log format %s)',
  (format) => {
    let refusing: Hostile;
    let failing: Hostile;

    beforeAll(async () => {
      refusing = await startHostile(400);
      failing = await startHostile(500);
    });

    afterAll(async () => {
      for (const h of [refusing, failing]) await new Promise((r) => h?.server.close(r));
    });

    const run = (addr: string, vars: Record<string, string>) =>
      runVaultrun(['--', process.execPath, '-e', 'process.exit(0)'], {
        env: baseEnv({
          VAULT_ADDR: addr,
          VAULTRUN_LOG_LEVEL: 'debug',
          VAULTRUN_LOG_FORMAT: format,
          VAULTRUN_WAIT: '1s',
          DB_PASSWORD: 'vault:secret/app/db#password',
          ...vars,
        }),
      });

    it('a token: no piece of it on stderr (login refused, 67)', async () => {
      const token = credential('hvs.');
      const result = await run(refusing.addr, { VAULT_TOKEN: token });
      expect(result.exitCode).toBe(67);
      expect(result.stdout).toBe('');
      expectClean(result.stderr, [token], format);
      // The server's words that are not credentials still come through (cleaned).
      expect(result.stderr).toMatch(/starts <redacted> ends <redacted> middle <redacted>/);
      expect(result.stderr).toMatch(/red vaultrun info: forged record/);
    });

    it('an AppRole role_id and secret_id: no piece of either (login refused, 67)', async () => {
      const roleId = credential('role-');
      const secretId = credential('sid-');
      const result = await run(refusing.addr, { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId });
      expect(result.exitCode).toBe(67);
      expectClean(result.stderr, [roleId, secretId], format);
    });

    it('retried 500s, logged at debug while retrying: no piece of the token, one record per line (69)', async () => {
      const token = credential('s.');
      const result = await run(failing.addr, { VAULT_TOKEN: token });
      expect(result.exitCode).toBe(69);
      expect(result.stderr).toMatch(/retrying Vault request/);
      expectClean(result.stderr, [token], format);
    });
  },
);
