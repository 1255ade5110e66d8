// Property: the environment variables Node reads by itself never turn vaultrun into a leak. NODE_DEBUG (http,
// net, tls, fetch, undici, child_process…) must not print a secret, token, role_id or secret_id; proxy
// variables must not send our requests anywhere; NODE_TLS_REJECT_UNAUTHORIZED=0 and NODE_EXTRA_CA_CERTS must
// not change whom we trust. The command still gets every one of these variables unchanged. Both forms:
// `node dist/vaultrun.cjs` and the single executable. Real OpenBao (plain and TLS); the proxy is a listener
// that counts connections.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, runVaultrun } from '../support/cli.js';
import { BUNDLE, singleExecutable } from '../support/exe.js';
import { makePki, type Pki } from '../support/identity.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { PROBE, type ProbeReport } from '../support/processes.js';
import { expectNoLeaks, Sensitive, tempDir, unique } from '../support/resolution.js';

const FORMS: Array<[string, () => string[]]> = [
  ['node vaultrun.cjs', () => [process.execPath, BUNDLE]],
  ['single executable', () => [singleExecutable()]],
];

const DEBUG = 'http,http2,net,tls,fetch,undici,child_process,stream,dns,https,module,esm,worker,timer';

describe("Node's own switches", () => {
  let bao: OpenBao;
  let pki: Pki;
  let proxy: Server;
  let proxyAddr: string;
  let proxyConnections = 0;
  const sensitive = new Sensitive();
  const secret = sensitive.add('secret', unique('node-switch-secret'));
  let roleId: string;

  beforeAll(async () => {
    pki = makePki(tempDir('vaultrun-pki-'));
    bao = await startOpenBao({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('node/app', { key: secret });
    await bao.writePolicy('node', 'path "secret/data/node/*" { capabilities = ["read"] }');
    roleId = sensitive.add('role_id', (await bao.setupAppRole({ role: 'node', policies: ['node'] })).roleId);
    proxy = createServer((socket) => {
      proxyConnections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    proxyAddr = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await bao?.stop();
    await new Promise((resolve) => proxy?.close(resolve));
  });

  async function newSecretId(): Promise<string> {
    const res = await bao.api<{ data: { secret_id: string } }>(
      'POST',
      'auth/approle/role/node/secret-id',
      {},
    );
    return sensitive.add('secret_id', res.data.secret_id);
  }

  /** vaultrun [--supervise] -- node probe.mjs, AppRole login, debug log; the probe's environment. */
  async function run(bin: string[], env: Record<string, string>, args: string[] = []) {
    const out = join(tempDir('vaultrun-node-'), 'probe.json');
    const res = await runVaultrun([...args, '--', process.execPath, PROBE], {
      bin,
      env: baseEnv({
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: await newSecretId(),
        VAULTRUN_LOG_LEVEL: 'debug',
        X: 'vault:secret/node/app#key',
        PROBE_OUT: out,
        ...env,
      }),
    });
    const output = `${res.stdout}${res.stderr}`;
    expectNoLeaks(output, sensitive);
    let probe: ProbeReport | undefined;
    try {
      probe = JSON.parse(readFileSync(out, 'utf8')) as ProbeReport;
    } catch {
      probe = undefined;
    }
    return { status: res.exitCode, output, probe };
  }

  describe.each(FORMS)('%s', (_form, bin) => {
    it.each([[[]], [['--supervise']]])(
      'NODE_DEBUG, NODE_DEBUG_NATIVE, NODE_OPTIONS (vaultrun %j): nothing secret printed, the command gets them as given',
      async (args) => {
        const given = {
          NODE_DEBUG: DEBUG,
          NODE_DEBUG_NATIVE: 'INSPECTOR_SERVER,WASI,MKSNAPSHOT',
          NODE_OPTIONS: '--trace-warnings',
        };
        const r = await run(bin(), given, args);
        expect(r.status, r.output).toBe(0);
        expect(r.probe?.env.X === secret, 'the command did not get its secret').toBe(true);
        expect(r.probe?.env.NODE_DEBUG).toBe(DEBUG);
        expect(r.probe?.env.NODE_DEBUG_NATIVE).toBe(given.NODE_DEBUG_NATIVE);
        expect(r.probe?.env.NODE_OPTIONS).toBe(given.NODE_OPTIONS);
        expect(Object.keys(r.probe?.env ?? {}).filter((n) => n.startsWith('VAULTRUN_'))).toEqual([]);
        // No debug line of Node's own in vaultrun's output (the probe reports to a file and prints nothing).
        expect(r.output).not.toMatch(/^(HTTP|NET|TLS|CHILD_PROCESS|FETCH|UNDICI|STREAM) \d+:/m);
      },
    );

    it('proxy variables (with NODE_USE_ENV_PROXY) never see a request; the command gets them', async () => {
      const before = proxyConnections;
      const proxies = {
        HTTP_PROXY: proxyAddr,
        HTTPS_PROXY: proxyAddr,
        http_proxy: proxyAddr,
        https_proxy: proxyAddr,
        NODE_USE_ENV_PROXY: '1',
        NODE_OPTIONS: '--use-env-proxy',
      };
      const r = await run(bin(), proxies, ['--supervise']);
      expect(r.status, r.output).toBe(0);
      expect(proxyConnections - before, 'connections to the proxy').toBe(0);
      expect(r.probe?.env.HTTP_PROXY).toBe(proxyAddr);
      expect(r.probe?.env.NODE_USE_ENV_PROXY).toBe('1');
      // Over TLS too (CONNECT through HTTPS_PROXY).
      const tls = await run(bin(), {
        ...proxies,
        VAULT_ADDR: bao.tlsAddr as string,
        VAULT_CACERT: pki.caFile,
      });
      expect(tls.status, tls.output).toBe(0);
      expect(proxyConnections - before, 'connections to the proxy').toBe(0);
    });

    it('NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn off verification (wrong CA: exit 69)', async () => {
      const r = await run(bin(), {
        VAULT_ADDR: bao.tlsAddr as string,
        VAULT_CACERT: join(pki.caFile, '../other-ca.pem'),
        NODE_TLS_REJECT_UNAUTHORIZED: '0',
      });
      expect(r.status, r.output).toBe(69);
      expect(r.output).toMatch(/TLS failure/);
      expect(r.probe).toBeUndefined();
    });

    it('NODE_EXTRA_CA_CERTS does not make vaultrun trust a CA (use VAULT_CACERT); the command gets it', async () => {
      const refused = await run(bin(), {
        VAULT_ADDR: bao.tlsAddr as string,
        NODE_EXTRA_CA_CERTS: pki.caFile,
      });
      expect(refused.status, refused.output).toBe(69);
      expect(refused.output).toMatch(/TLS failure/);
      const trusted = await run(
        bin(),
        { VAULT_ADDR: bao.tlsAddr as string, VAULT_CACERT: pki.caFile, NODE_EXTRA_CA_CERTS: pki.caFile },
        ['--supervise'],
      );
      expect(trusted.status, trusted.output).toBe(0);
      expect(trusted.probe?.env.NODE_EXTRA_CA_CERTS).toBe(pki.caFile);
    });
  });
});
