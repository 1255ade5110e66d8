// vaultrun's own HTTP/1.1 client (src/vault/transport.ts) against a real OpenBao: a large answer (which
// OpenBao sends chunked), and many reads over a few kept-alive connections, each read sent once.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { runProbe, Sensitive } from '../support/resolution.js';

describe('the HTTP client against OpenBao', () => {
  let bao: OpenBao;

  beforeAll(async () => {
    bao = await startOpenBao();
  });

  const token = () => {
    const sensitive = new Sensitive();
    sensitive.add('token', bao.rootToken);
    return sensitive;
  };

  afterAll(async () => {
    await bao?.stop();
  });

  it('reads a 100 KB value whole (a chunked answer)', async () => {
    const big = randomBytes(50_000).toString('hex');
    await bao.kvPut('transport/big', { value: big });
    const res = await fetch(`${bao.addr}/v1/secret/data/transport/big`, {
      headers: { 'X-Vault-Token': bao.rootToken },
    });
    await res.arrayBuffer();
    // The premise: the server does send this one chunked.
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const run = await runProbe(token(), {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: bao.rootToken,
      BIG: 'vault:secret/transport/big#value',
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.probe?.env.BIG).toBe(big);
  });

  it('200 references over 100 paths: every value right, one read per path', async () => {
    const env: Record<string, string> = { VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken };
    const want: Record<string, string> = {};
    for (let p = 0; p < 100; p++) {
      const data: Record<string, string> = {};
      for (let k = 0; k < 2; k++) {
        const name = `T${p}_${k}`;
        data[name] = randomBytes(8).toString('hex');
        want[name] = data[name];
        env[name] = `vault:secret/transport/many/p${p}#${name}`;
      }
      await bao.kvPut(`transport/many/p${p}`, data);
    }
    const before = (await bao.auditEntries()).length;
    const run = await runProbe(token(), env, { debug: false });
    expect(run.exitCode, run.stderr).toBe(0);
    for (const [name, value] of Object.entries(want)) expect(run.probe?.env[name], name).toBe(value);
    const reads = (await bao.auditEntries())
      .slice(before)
      .filter((e) => e.type === 'request' && e.path.startsWith('secret/data/transport/many/'));
    expect(reads).toHaveLength(100);
    expect(new Set(reads.map((e) => e.path)).size).toBe(100);
    expect(run.stderr).toContain('requests=102');
  });
});
