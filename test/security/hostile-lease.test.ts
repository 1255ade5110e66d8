// A server in front of a REAL OpenBao (a proxy that passes everything on and rewrites one answer) that puts
// malformed lease fields in the answer to a read: a duration that is a word, or negative. Such a duration used
// to become a timer of NaN, which Node fires at once: a lease "renewed" or a secret re-read again and again, a
// request storm started by whoever sits between vaultrun and Vault. vaultrun now refuses the answer: the start
// fails (76) naming the request and the field, never the value, and the command never runs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';

interface Rewriter {
  addr: string;
  /** How the next KV reads of secret/data/app are rewritten. */
  lease: Record<string, unknown>;
  /** Requests passed on, by path. */
  seen: string[];
  close(): Promise<void>;
}

function startRewriter(target: string): Promise<Rewriter> {
  const upstream = new URL(target);
  const rewriter = { lease: {}, seen: [] as string[] } as unknown as Rewriter;
  const server = http.createServer((req, res) => {
    rewriter.seen.push(req.url ?? '');
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          let body = Buffer.concat(chunks);
          if (req.method === 'GET' && req.url === '/v1/secret/data/app' && answer.statusCode === 200) {
            body = Buffer.from(JSON.stringify({ ...JSON.parse(body.toString('utf8')), ...rewriter.lease }));
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    req.pipe(forward);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      rewriter.addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      rewriter.close = () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        });
      resolve(rewriter);
    });
  });
}

describe('a server that sends malformed lease fields', () => {
  let bao: OpenBao;
  let rewriter: Rewriter;

  beforeAll(async () => {
    bao = await startOpenBao();
    await bao.kvPut('app', { password: 'lease-test-value' });
    rewriter = await startRewriter(bao.addr);
  });

  afterAll(async () => {
    await rewriter?.close();
    await bao?.stop();
  });

  it.each([
    [
      'a word',
      { lease_id: 'secret/data/app/hostile1', lease_duration: 'soon', renewable: true },
      'lease_duration',
    ],
    [
      'negative',
      { lease_id: 'secret/data/app/hostile2', lease_duration: -30, renewable: true },
      'lease_duration',
    ],
    [
      'renewable as text',
      { lease_id: 'secret/data/app/hostile3', lease_duration: 30, renewable: 'yes' },
      'renewable',
    ],
  ])(
    'a read answered with a lease duration that is %s: refused (76), the command never runs',
    async (_what, lease, field) => {
      rewriter.lease = lease;
      const before = rewriter.seen.length;
      const result = await runVaultrun(['--', 'sh', '-c', 'echo the-command-ran'], {
        env: baseEnv({
          VAULT_ADDR: rewriter.addr,
          VAULT_TOKEN: bao.rootToken,
          VAULTRUN_WAIT: '5s',
          DB_PASSWORD: 'vault:secret/app#password',
        }),
      });
      expect(result.exitCode, result.stderr).toBe(76);
      expect(result.stdout).not.toContain('the-command-ran');
      expect(result.stderr).toContain(
        `DB_PASSWORD: the answer to reading secret/app has a malformed ${field} (not `,
      );
      expect(result.stderr).not.toContain(String(lease[field as keyof typeof lease]));
      expect(result.stderr).not.toContain('lease-test-value');
      // One read: nothing was retried or re-read.
      expect(rewriter.seen.slice(before).filter((p) => p === '/v1/secret/data/app')).toHaveLength(1);
    },
  );
});
