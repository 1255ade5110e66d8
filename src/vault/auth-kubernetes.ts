import { VaultrunError } from '../errors.js';
import type { Logger } from '../log.js';
import { loginAtMount, mountPath, readCredentialFile } from './auth-common.js';
import type { AuthSettings, Session } from './auth-types.js';
import type { VaultClient } from './client.js';

/**
 * Kubernetes login (`auth/MOUNT/login` with `role` and the pod's service-account token as `jwt`). Vault checks
 * the token with the cluster's TokenReview API and the role's bound service accounts and namespaces. The token
 * file is read at every login: projected tokens are rotated by the kubelet.
 */
export const DEFAULT_KUBERNETES_MOUNT = 'kubernetes';
export const DEFAULT_KUBERNETES_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export async function kubernetesLogin(client: VaultClient, s: AuthSettings, log: Logger): Promise<Session> {
  const mount = mountPath(s.kubernetesMount ?? DEFAULT_KUBERNETES_MOUNT);
  const role = s.kubernetesRole;
  if (!role) {
    throw new VaultrunError('LOGIN_FAILED', 'kubernetes login needs a role, and none is set', {
      hint: `set VAULTRUN_KUBERNETES_ROLE to a role of auth/${mount} (vault write auth/${mount}/role/NAME …)`,
    });
  }
  const file = s.kubernetesTokenFile ?? DEFAULT_KUBERNETES_TOKEN_FILE;
  const jwt = await readCredentialFile(
    file,
    'Kubernetes service-account token',
    'run in a pod with a service-account token mounted (automountServiceAccountToken, or a projected volume) or set VAULTRUN_KUBERNETES_TOKEN_FILE',
  );
  log.masker.add(jwt);
  return loginAtMount(
    client,
    {
      method: 'kubernetes',
      mount,
      body: { role, jwt },
      what: `kubernetes (auth/${mount}, role ${role})`,
      check: `role (VAULTRUN_KUBERNETES_ROLE=${role}): its bound service-account names and namespaces, the token in ${file}, and the mount's kubernetes_host (VAULTRUN_KUBERNETES_MOUNT=${mount})`,
      source: `service-account token ${file} at auth/${mount}`,
      relogin: { ...s, method: 'kubernetes' },
    },
    log,
  );
}
