// Identities for the login tests, made in the test: JWTs signed with Node's crypto (RS256 / ES256, no
// library), a PKI made with `openssl` (a CA, a server certificate for 127.0.0.1, client certificates), and a
// stand-in for the Kubernetes TokenReview API — the one stub of the suite, because no cluster runs here; it
// sits behind the real OpenBao, which calls it exactly as it would call a cluster.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export interface SigningKey {
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  /** PEM, for jwt_validation_pubkeys. */
  publicPem: string;
}

export function signingKey(alg: 'RS256' | 'ES256' = 'RS256'): SigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { alg, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A compact JWS: header.payload.signature. `iat`, `nbf` and `exp` (+5 min) are added unless given. */
export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: 'test' }));
  const payload = b64url(JSON.stringify({ iat: now - 5, nbf: now - 5, exp: now + 300, ...claims }));
  const data = `${header}.${payload}`;
  const signature =
    key.alg === 'RS256'
      ? sign('sha256', Buffer.from(data), key.privateKey)
      : sign('sha256', Buffer.from(data), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${data}.${b64url(signature)}`;
}

export interface Pki {
  caFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA, which OpenBao does not trust. */
  strangerCert: string;
  strangerKey: string;
  caPem: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(dir: string, name: string, subject: string, ca: string, ext: string): void {
  openssl(
    dir,
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      subject,
    ]),
  );
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    dir,
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`].concat([
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]),
  );
}

/** A CA, a server certificate for 127.0.0.1 / localhost, a client certificate, and a stranger's. */
export function makePki(dir: string): Pki {
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      dir,
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
        '-keyout',
        `${ca}.key`,
        '-out',
        `${ca}.pem`,
        '-days',
        '2',
        '-subj',
        `/CN=vaultrun test ${ca}`,
      ]),
    );
  }
  issue(
    dir,
    'server',
    '/CN=127.0.0.1',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  issue(dir, 'client', '/CN=ci-runner', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue(dir, 'stranger', '/CN=ci-runner', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    caFile: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger.key'),
    caPem: readFileSync(p('ca.pem'), 'utf8'),
  };
}

/** Claims of a projected Kubernetes service-account token. */
export function serviceAccountClaims(namespace: string, name: string, uid: string = randomUUID()) {
  return {
    iss: 'https://kubernetes.default.svc.cluster.local',
    aud: ['https://kubernetes.default.svc.cluster.local'],
    sub: `system:serviceaccount:${namespace}:${name}`,
    'kubernetes.io': { namespace, serviceaccount: { name, uid } },
  };
}

export interface TokenReviewer {
  /** https://127.0.0.1:PORT, for auth/kubernetes/config kubernetes_host (kubernetes_ca_cert: the PKI's CA). */
  host: string;
  /** Tokens the "cluster" accepts, with the service account they belong to. */
  accept(token: string, namespace: string, name: string, uid: string): void;
  /** The tokens OpenBao asked about, in order. */
  reviewed: string[];
  close(): Promise<void>;
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * POST /apis/authentication.k8s.io/v1/tokenreviews → authenticated or not, as a cluster answers; over HTTPS
 * with the PKI's server certificate (OpenBao wants a CA for the cluster when it has no local one).
 */
export async function startTokenReviewer(pki: Pki): Promise<TokenReviewer> {
  const accepted = new Map<string, { namespace: string; name: string; uid: string }>();
  const reviewed: string[] = [];
  const tls = { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) };
  const server: Server = createServer(tls, (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
        return;
      }
      const review = JSON.parse(await body(req)) as { spec?: { token?: string; audiences?: string[] } };
      const token = review.spec?.token ?? '';
      reviewed.push(token);
      const sa = accepted.get(token);
      const status = sa
        ? {
            authenticated: true,
            user: {
              username: `system:serviceaccount:${sa.namespace}:${sa.name}`,
              uid: sa.uid,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`],
            },
            audiences: review.spec?.audiences ?? [],
          }
        : { authenticated: false, error: 'invalid bearer token' };
      res
        .writeHead(201, { 'content-type': 'application/json' })
        .end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: `https://127.0.0.1:${port}`,
    accept: (token, namespace, name, uid) => accepted.set(token, { namespace, name, uid }),
    reviewed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
