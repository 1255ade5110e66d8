import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import { loginAtMount, mountPath, readCredentialFile } from './auth-common.js';
import type { AuthSettings, Session } from './auth-types.js';
import type { VaultClient } from './client.js';

/**
 * JWT / OIDC login (`auth/MOUNT/login` with `jwt` and `role`): the identity tokens CI systems hand out
 * (GitLab `id_tokens`, GitHub Actions OIDC, Buildkite, CircleCI…). The JWT comes from VAULTRUN_JWT or, better,
 * VAULTRUN_JWT_FILE (re-read at every login, so a refreshed token is used when the supervisor logs in again).
 * The role may be left out when the mount has a `default_role`.
 */
export const DEFAULT_JWT_MOUNT = 'jwt';

export async function jwtLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const mount = mountPath(s.jwtMount ?? DEFAULT_JWT_MOUNT);
  let jwt = s.jwt;
  let origin = 'VAULTRUN_JWT';
  if (!jwt && s.jwtFile) {
    origin = 'VAULTRUN_JWT_FILE';
    jwt = await readCredentialFile(
      s.jwtFile,
      'VAULTRUN_JWT_FILE',
      'write the CI identity token to this file first, or set VAULTRUN_JWT',
    );
  }
  if (!jwt) {
    throw new VaultrunError('LOGIN_FAILED', 'jwt login needs a JWT, and none is set', {
      hint: 'set VAULTRUN_JWT_FILE (a file holding the identity token) or VAULTRUN_JWT, and VAULTRUN_JWT_ROLE',
    });
  }
  log.masker.add(jwt);
  const role = s.jwtRole;
  const where = `auth/${mount}${role ? `, role ${role}` : ", the mount's default_role"}`;
  return loginAtMount(
    client,
    {
      method: 'jwt',
      mount,
      body: { jwt, ...(role ? { role } : {}) },
      what: `jwt (${where})`,
      check: `JWT from ${origin} (issuer, audience, claims, expiry) against the role (VAULTRUN_JWT_ROLE${role ? `=${role}` : ' is unset'}) and the mount (VAULTRUN_JWT_MOUNT=${mount})`,
      source: `${origin} at auth/${mount}`,
      relogin: { ...s, method: 'jwt' },
    },
    log,
  );
}
