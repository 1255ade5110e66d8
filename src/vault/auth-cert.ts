import { isHttps } from '../config.js';
import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import { displayAddress } from './address.js';
import { loginAtMount, mountPath } from './auth-common.js';
import type { AuthSettings, Session } from './auth-types.js';
import type { VaultClient } from './client.js';

/**
 * TLS certificate login (`auth/MOUNT/login`, optionally with the name of a certificate role): the credential is
 * the client certificate presented on the TLS connection (VAULT_CLIENT_CERT / VAULT_CLIENT_KEY), so Vault must
 * be reached over https. Only used when chosen explicitly (VAULTRUN_AUTH_METHOD=cert): a client certificate is
 * also used for mutual TLS alone, which is no reason to log in with it.
 */
export const DEFAULT_CERT_MOUNT = 'cert';

export async function certLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const mount = mountPath(s.certMount ?? DEFAULT_CERT_MOUNT);
  const { tls, addr } = client.settings;
  if (!tls.cert || !tls.key) {
    throw new VaultrunError('LOGIN_FAILED', 'cert login needs a TLS client certificate, and none is set', {
      hint: 'set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (--client-cert, --client-key) to PEM files',
    });
  }
  if (!isHttps(addr)) {
    throw new VaultrunError(
      'USAGE',
      `cert login needs an https:// address, and VAULT_ADDR is ${displayAddress(addr)}`,
      {
        hint: 'the client certificate is presented in the TLS handshake: use https://',
      },
    );
  }
  const role = s.certRole;
  return loginAtMount(
    client,
    {
      method: 'cert',
      mount,
      body: role ? { name: role } : {},
      what: `cert (auth/${mount}${role ? `, certificate role ${role}` : ''})`,
      check: `client certificate (VAULT_CLIENT_CERT): it must be signed by a CA trusted by a certificate role of auth/${mount}${role ? ` (VAULTRUN_CERT_ROLE=${role})` : ''}`,
      source: `client certificate at auth/${mount}`,
      relogin: { ...s, method: 'cert' },
    },
    log,
  );
}
