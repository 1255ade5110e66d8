import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, isHttps } from '../config.js';
import { VaultrunError } from '../errors.js';
import type { TlsSettings } from './transport.js';

/** Reads the TLS files the settings name (VAULT_CACERT, VAULT_CAPATH, client cert and key). */
async function load(path: string, origin: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new VaultrunError(
      'IO',
      `${origin}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

const CERTIFICATE = /-----BEGIN (TRUSTED )?CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN ((RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----/;

/**
 * Pure: what a TLS file's content lacks, or undefined. A file that cannot be read is an IO error (74); one whose
 * content is not what the setting needs is a configuration error (64), found at start: never a TLS failure
 * later, nor an internal error. Only the PEM labels are looked at: the content is never echoed (a key).
 */
export function pemProblem(kind: 'ca' | 'cert' | 'key', content: Buffer | string): string | undefined {
  const text = content.toString('latin1');
  if (kind === 'key') {
    return PRIVATE_KEY.test(text) ? undefined : 'holds no PEM private key (-----BEGIN PRIVATE KEY-----)';
  }
  if (!CERTIFICATE.test(text)) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
  return undefined;
}

const CONFIG_HINTS = {
  ca: "give a PEM file of the CA that signed Vault's certificate",
  cert: 'give the PEM client certificate (and its key in VAULT_CLIENT_KEY)',
  key: 'give the PEM private key of the client certificate (unencrypted: vaultrun has no passphrase setting)',
} as const;

async function loadPem(path: string, origin: string, kind: 'ca' | 'cert' | 'key'): Promise<Buffer> {
  const content = await load(path, origin);
  const problem = pemProblem(kind, content);
  if (problem)
    throw new VaultrunError('USAGE', `${origin}: ${path} ${problem}`, { hint: CONFIG_HINTS[kind] });
  return content;
}

/**
 * The client certificate and key, tried together as a connection will use them (a key that does not belong to
 * the certificate, an encrypted key, a PEM block that does not parse): a configuration error naming both.
 */
function checkClientPair(cert: Buffer, key: Buffer, config: Config): void {
  try {
    process.getBuiltinModule('node:tls').createSecureContext({ cert, key });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VaultrunError(
      'USAGE',
      `VAULT_CLIENT_CERT / VAULT_CLIENT_KEY: ${config.clientCert} and ${config.clientKey} cannot be used together (${code})`,
      {
        hint:
          code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
            ? 'the key is not the private key of the certificate: give the key the certificate was made for'
            : 'give a PEM certificate and its unencrypted PEM private key',
      },
    );
  }
}

export async function loadTls(config: Config): Promise<TlsSettings> {
  const ca: Buffer[] = [];
  if (config.caCert) ca.push(await loadPem(config.caCert, 'VAULT_CACERT', 'ca'));
  if (config.caPath) {
    let names: string[];
    try {
      names = (await readdir(config.caPath)).sort();
    } catch (error) {
      throw new VaultrunError(
        'IO',
        `VAULT_CAPATH: cannot read directory ${config.caPath}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    // Files without a certificate (a key, an index) are left out; a directory with none at all is a mistake.
    let found = 0;
    for (const name of names.filter((n) => /\.(pem|crt|cer)$/i.test(n))) {
      const content = await load(join(config.caPath, name), 'VAULT_CAPATH');
      if (pemProblem('ca', content) !== undefined) continue;
      ca.push(content);
      found++;
    }
    if (found === 0) {
      throw new VaultrunError(
        'USAGE',
        `VAULT_CAPATH: ${config.caPath} holds no CA certificate (no *.pem, *.crt or *.cer file with -----BEGIN CERTIFICATE-----)`,
        { hint: 'give a directory of PEM CA files, or one PEM file in VAULT_CACERT' },
      );
    }
  }
  const cert = config.clientCert ? await loadPem(config.clientCert, 'VAULT_CLIENT_CERT', 'cert') : undefined;
  const key = config.clientKey ? await loadPem(config.clientKey, 'VAULT_CLIENT_KEY', 'key') : undefined;
  if (cert && key) checkClientPair(cert, key, config);
  return {
    rejectUnauthorized: !config.skipVerify,
    // Always explicit: Node's bundled Mozilla list unless VAULT_CACERT / VAULT_CAPATH say otherwise, so that
    // nothing in the environment (NODE_EXTRA_CA_CERTS, NODE_USE_SYSTEM_CA, OPENSSL_CONF) adds a CA silently.
    // Only for an https address: loading node:tls parses the ~120 bundled certificates (about 45 million
    // instructions, measured with callgrind), which a plain-http Vault never uses.
    ...(isHttps(config.addr)
      ? {
          ca: ca.length
            ? ca
            : process.getBuiltinModule('node:tls').rootCertificates.map((pem) => Buffer.from(pem)),
        }
      : ca.length
        ? { ca }
        : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(config.tlsServerName ? { servername: config.tlsServerName } : {}),
  };
}
