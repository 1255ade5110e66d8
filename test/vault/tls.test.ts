import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { type Config, loadConfig } from '../../src/config.js';
import { loadTls } from '../../src/vault/tls.js';

const config = (env: Record<string, string>): Config => loadConfig({}, env);
const dir = mkdtempSync(join(tmpdir(), 'vaultrun-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadTls (the CA list and client certificate a connection uses)', () => {
  it("an https address without VAULT_CACERT / VAULT_CAPATH: Node's bundled list, explicitly", async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'https://vault.example.com:8200' }));
    expect(tls.ca?.map((b) => b.toString())).toEqual([...rootCertificates]);
    expect(tls.rejectUnauthorized).toBe(true);
  });

  it('the scheme in capitals is https too (the address is kept as given)', async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'HTTPS://vault:8200' }));
    expect(tls.ca).toHaveLength(rootCertificates.length);
  });

  it('a plain-http address: no CA list (node:tls is not even loaded for it)', async () => {
    const tls = await loadTls(config({ VAULT_ADDR: 'http://127.0.0.1:8200' }));
    expect(tls.ca).toBeUndefined();
  });

  it('VAULT_CACERT replaces the bundled list; VAULT_SKIP_VERIFY turns verification off', async () => {
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, 'not really a certificate\n');
    const tls = await loadTls(
      config({ VAULT_ADDR: 'https://vault:8200', VAULT_CACERT: pem, VAULT_SKIP_VERIFY: 'true' }),
    );
    expect(tls.ca?.map((b) => b.toString())).toEqual(['not really a certificate\n']);
    expect(tls.rejectUnauthorized).toBe(false);
  });

  it('a CA file that cannot be read: IO error naming the variable and the path', async () => {
    const missing = join(dir, 'missing.pem');
    await expect(
      loadTls(config({ VAULT_ADDR: 'https://vault:8200', VAULT_CACERT: missing })),
    ).rejects.toMatchObject({
      code: 'IO',
      message: `VAULT_CACERT: cannot read ${missing}: ENOENT`,
    });
  });
});
