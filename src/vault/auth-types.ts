/**
 * The types every login method shares: which methods exist, the settings they read (from config.ts) and the
 * session a login returns. The dispatcher (auth.ts) and the methods (auth-*.ts) import them from here.
 */
export const AUTH_METHODS = ['token', 'approle', 'jwt', 'kubernetes', 'cert'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface AuthSettings {
  method?: AuthMethod;
  token?: string;
  tokenFile?: string;
  roleId?: string;
  roleIdFile?: string;
  secretId?: string;
  secretIdFile?: string;
  approleMount: string;
  secretIdWrapped: boolean;
  deleteSecretIdFile: boolean;
  /** JWT / OIDC (auth-jwt.ts); mounts default to jwt, kubernetes, cert. */
  jwt?: string;
  jwtFile?: string;
  jwtRole?: string;
  jwtMount?: string;
  kubernetesRole?: string;
  kubernetesMount?: string;
  /** Default /var/run/secrets/kubernetes.io/serviceaccount/token. */
  kubernetesTokenFile?: string;
  certRole?: string;
  certMount?: string;
}

export interface Session {
  token: string;
  method: AuthMethod;
  /** Where the credential came from, for the log: "VAULT_TOKEN", "approle at auth/approle". */
  source: string;
  /** Seconds; 0 for a token that never expires. */
  ttl: number;
  renewable: boolean;
  /** vaultrun created this token by logging in (so it revokes it on exit); false for a token it was given. */
  created: boolean;
  /**
   * How to log in again when the token reaches its max TTL, held in memory: AppRole keeps the (unwrapped)
   * secret_id — which fails if the secret_id was single-use —, a token file is read again (an agent may have
   * renewed it). Undefined when there is no way (a token from VAULT_TOKEN).
   */
  relogin?: AuthSettings;
}
