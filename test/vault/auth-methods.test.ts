// Choosing the login method (explicit, or inferred in the documented order, two at once being ambiguous) and
// the settings of the JWT, Kubernetes and cert methods and of --mask.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { isCredential } from '../../src/settings.js';
import { chooseMethod, isSecretIdCreationPath } from '../../src/vault/auth.js';
import type { AuthSettings } from '../../src/vault/auth-types.js';
import { thrown } from '../support/errors.js';

const base: AuthSettings = { approleMount: 'approle', secretIdWrapped: false, deleteSecretIdFile: false };
const s = (extra: Partial<AuthSettings>): AuthSettings => ({ ...base, ...extra });

describe('chooseMethod', () => {
  it.each<[string, Partial<AuthSettings>, boolean, string]>([
    ['explicit wins over everything', { method: 'cert', token: 't', kubernetesRole: 'r' }, true, 'cert'],
    ['explicit jwt', { method: 'jwt' }, false, 'jwt'],
    ['a role_id → approle', { roleIdFile: '/f' }, false, 'approle'],
    ['a token → token', { token: 't' }, false, 'token'],
    ['a JWT → jwt', { jwt: 'x.y.z', jwtRole: 'ci' }, false, 'jwt'],
    ['a JWT file → jwt, even with ~/.vault-token', { jwtFile: '/f' }, true, 'jwt'],
    ['a JWT role alone → jwt (which then says the JWT is missing)', { jwtRole: 'ci' }, false, 'jwt'],
    ['a Kubernetes role → kubernetes', { kubernetesRole: 'app' }, true, 'kubernetes'],
    ['only a Kubernetes token file → not kubernetes', { kubernetesTokenFile: '/t' }, true, 'token'],
    ['cert only when explicit: a cert mount alone is not enough', { certRole: 'web' }, true, 'token'],
    ['nothing but ~/.vault-token → token', {}, true, 'token'],
  ])('%s', (_, extra, homeToken, method) => {
    expect(chooseMethod(s(extra), homeToken)).toBe(method);
  });

  it.each<[Partial<AuthSettings>, RegExp, RegExp]>([
    [
      { token: 't', roleId: 'r' },
      /^both a token \(VAULT_TOKEN\/VAULT_TOKEN_FILE\) and an AppRole role_id are set$/,
      /VAULTRUN_AUTH_METHOD=token or VAULTRUN_AUTH_METHOD=approle, or remove one of them/,
    ],
    [
      { token: 't', jwtFile: '/f' },
      /^both a token .* and a JWT \(VAULTRUN_JWT\/VAULTRUN_JWT_FILE\) are set$/,
      /VAULTRUN_AUTH_METHOD=token or VAULTRUN_AUTH_METHOD=jwt/,
    ],
    [
      { roleIdFile: '/r', jwt: 'j', kubernetesRole: 'k' },
      /^an AppRole role_id, a JWT .* and a Kubernetes role \(VAULTRUN_KUBERNETES_ROLE\) are all set$/,
      /VAULTRUN_AUTH_METHOD=approle or VAULTRUN_AUTH_METHOD=jwt or VAULTRUN_AUTH_METHOD=kubernetes, or remove all but one/,
    ],
  ])('two or more configured without VAULTRUN_AUTH_METHOD is ambiguous: %o', (extra, message, hint) => {
    const error = thrown(() => chooseMethod(s(extra), false));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(message);
    expect(error.hint).toMatch(hint);
  });

  it('no credentials at all: 67, listing every way to log in', () => {
    const error = thrown(() => chooseMethod(base, false));
    expect(error.code).toBe('LOGIN_FAILED');
    for (const name of [
      'VAULT_TOKEN',
      'VAULT_ROLE_ID',
      'VAULTRUN_JWT_FILE',
      'VAULTRUN_KUBERNETES_ROLE',
      'cert',
    ]) {
      expect(error.hint).toContain(name);
    }
  });
});

describe('isSecretIdCreationPath: a wrapped secret_id must come from the AppRole secret-id endpoint', () => {
  it.each<[string, string, string | undefined, boolean]>([
    ['auth/approle/role/app/secret-id', 'approle', undefined, true],
    ['auth/approle/role/app/custom-secret-id', 'approle', undefined, true],
    ['auth/approle/role/app/secret-id', '/approle/', undefined, true],
    ['auth/team/ar/role/app/secret-id', 'team/ar', undefined, true],
    ['ns1/auth/approle/role/app/secret-id', 'approle', 'ns1', true],
    ['ns1/auth/approle/role/app/secret-id', 'approle', '/ns1/', true],
    ['auth/approle/role/app/secret-id', 'approle', 'ns1', true],
    // A re-wrap of a stolen value, or a response of another endpoint.
    ['sys/wrapping/wrap', 'approle', undefined, false],
    ['sys/wrapping/rewrap', 'approle', undefined, false],
    ['', 'approle', undefined, false],
    ['auth/other/role/app/secret-id', 'approle', undefined, false],
    ['auth/approle2/role/app/secret-id', 'approle', undefined, false],
    ['auth/approle/role/app/secret-id/lookup', 'approle', undefined, false],
    ['auth/approle/role/app/secret-id-accessor/lookup', 'approle', undefined, false],
    ['auth/approle/role/app/role-id', 'approle', undefined, false],
    ['auth/approle/role//secret-id', 'approle', undefined, false],
    ['auth/approle/role/a/b/secret-id', 'approle', undefined, false],
    ['auth/approle/login', 'approle', undefined, false],
    ['ns2/auth/approle/role/app/secret-id', 'approle', 'ns1', false],
    ['x/auth/approle/role/app/secret-id', 'approle', undefined, false],
    ['AUTH/approle/role/app/secret-id', 'approle', undefined, false],
  ])('%s (mount %s, namespace %s) → %s', (path, mount, namespace, ok) => {
    expect(isSecretIdCreationPath(path, mount, namespace)).toBe(ok);
  });
});

describe('login settings', () => {
  it('defaults: mounts jwt, kubernetes, cert and the standard service-account token path', () => {
    expect(loadConfig({}, {}).auth).toMatchObject({
      jwtMount: 'jwt',
      kubernetesMount: 'kubernetes',
      kubernetesTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      certMount: 'cert',
    });
  });

  it('reads every new setting from the environment and from flags (flags win)', () => {
    const config = loadConfig(
      { jwtRole: 'from-flag', certRole: 'web' },
      {
        VAULTRUN_AUTH_METHOD: 'kubernetes',
        VAULTRUN_JWT_FILE: '/ci/token',
        VAULTRUN_JWT_ROLE: 'from-env',
        VAULTRUN_JWT_MOUNT: 'gitlab',
        VAULTRUN_KUBERNETES_ROLE: 'app',
        VAULTRUN_KUBERNETES_MOUNT: 'k8s-prod',
        VAULTRUN_KUBERNETES_TOKEN_FILE: '/t',
        VAULTRUN_CERT_MOUNT: 'tls',
      },
    );
    expect(config.auth).toMatchObject({
      method: 'kubernetes',
      jwtFile: '/ci/token',
      jwtRole: 'from-flag',
      jwtMount: 'gitlab',
      kubernetesRole: 'app',
      kubernetesMount: 'k8s-prod',
      kubernetesTokenFile: '/t',
      certRole: 'web',
      certMount: 'tls',
    });
  });

  it.each(['jwt', 'kubernetes', 'cert'])('VAULTRUN_AUTH_METHOD=%s is accepted', (method) => {
    expect(loadConfig({}, { VAULTRUN_AUTH_METHOD: method }).auth.method).toBe(method);
  });

  it('refuses an unknown method, listing the known ones', () => {
    expect(thrown(() => loadConfig({}, { VAULTRUN_AUTH_METHOD: 'ldap' })).message).toBe(
      'VAULTRUN_AUTH_METHOD: expected one of token, approle, jwt, kubernetes, cert, got "ldap"',
    );
  });

  it('VAULTRUN_JWT and VAULTRUN_JWT_FILE together is an error', () => {
    const error = thrown(() => loadConfig({}, { VAULTRUN_JWT: 'a.b.c', VAULTRUN_JWT_FILE: '/f' }));
    expect(error.message).toBe('VAULTRUN_JWT / VAULTRUN_JWT_FILE: set one of them, not both');
  });

  it('the JWT and the token files are credentials (never passed to the command); the role is not', () => {
    expect(isCredential('VAULTRUN_JWT')).toBe(true);
    expect(isCredential('VAULTRUN_JWT_FILE')).toBe(true);
    expect(isCredential('VAULTRUN_KUBERNETES_TOKEN_FILE')).toBe(true);
    expect(isCredential('VAULTRUN_JWT_ROLE')).toBe(false);
  });
});

describe('--mask', () => {
  it('is off by default', () => {
    expect(loadConfig({}, {}).mask).toBe(false);
  });

  it('needs --supervise: a usage error naming the flag or the variable it came from', () => {
    const flag = thrown(() => loadConfig({ mask: true }, {}));
    expect(flag.code).toBe('USAGE');
    expect(flag.message).toMatch(/^--mask: needs --supervise/);
    expect(flag.hint).toMatch(/--supervise/);
    expect(thrown(() => loadConfig({}, { VAULTRUN_MASK: 'true' })).message).toMatch(/^VAULTRUN_MASK: needs/);
  });

  it('is accepted with --supervise or --watch (both resident)', () => {
    expect(loadConfig({ mask: true, supervise: true }, {}).mask).toBe(true);
    expect(loadConfig({}, { VAULTRUN_MASK: '1', VAULTRUN_WATCH: 'true' }).mask).toBe(true);
  });
});
