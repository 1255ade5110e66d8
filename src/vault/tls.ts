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

export async function loadTls(config: Config): Promise<TlsSettings> {
  const ca: Buffer[] = [];
  if (config.caCert) ca.push(await load(config.caCert, 'VAULT_CACERT'));
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
    for (const name of names.filter((n) => /\.(pem|crt|cer)$/i.test(n))) {
      ca.push(await load(join(config.caPath, name), 'VAULT_CAPATH'));
    }
  }
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
    ...(config.clientCert ? { cert: await load(config.clientCert, 'VAULT_CLIENT_CERT') } : {}),
    ...(config.clientKey ? { key: await load(config.clientKey, 'VAULT_CLIENT_KEY') } : {}),
    ...(config.tlsServerName ? { servername: config.tlsServerName } : {}),
  };
}
