import { VaultrunError } from '../errors.js';
import { nameProblem } from '../output/formats.js';
import { parseRefBody, parseValue } from '../refs/parse.js';
import { SETTINGS, type Setting } from '../settings.js';

/**
 * The GitHub Action (action.yml at the repository root), pure part: the runner's INPUT_* variables → what to
 * resolve and how to log in, as the environment vaultrun's own settings read. The effects (the OIDC token, the
 * resolution, $GITHUB_OUTPUT / $GITHUB_ENV) are in main.ts. Input names follow hashicorp/vault-action, so a
 * workflow can switch by changing `uses:`.
 */
export interface ActionInput {
  name: string;
  default?: string;
  required?: boolean;
  description: string;
}

/** Every input of action.yml, once (a test checks that action.yml says the same). */
export const ACTION_INPUTS: readonly ActionInput[] = [
  {
    name: 'url',
    description: 'Vault / OpenBao address, e.g. https://vault.example.com (default: $VAULT_ADDR)',
  },
  {
    name: 'method',
    default: 'jwt',
    description: 'login method: jwt (GitHub OIDC token), token, approle or kubernetes',
  },
  { name: 'role', description: 'role to log in with (jwt, kubernetes); optional with a default_role' },
  { name: 'path', description: 'mount path of the auth method (default: jwt, approle or kubernetes)' },
  {
    name: 'jwtGithubAudience',
    description: "audience (aud) of the GitHub OIDC token (default: GitHub's, https://github.com/OWNER)",
  },
  { name: 'token', description: 'Vault token (method token)' },
  { name: 'roleId', description: 'AppRole role_id (method approle)' },
  { name: 'secretId', description: 'AppRole secret_id (method approle)' },
  { name: 'namespace', description: 'Vault Enterprise / OpenBao namespace' },
  {
    name: 'caCertificate',
    description: 'CA certificate(s) that sign the server certificate: PEM, or base64 of PEM',
  },
  { name: 'tlsSkipVerify', default: 'false', description: 'refused: give the CA with caCertificate instead' },
  {
    name: 'secrets',
    required: true,
    description:
      'one secret a line: "PATH#KEY | NAME", "PATH KEY | NAME" (vault-action) or "NAME=vault:PATH#KEY" (vaultrun)',
  },
  {
    name: 'exportEnv',
    default: 'true',
    description: 'also set every secret as an environment variable of later steps',
  },
  { name: 'file', description: 'also write the secrets to this file (mode 0600)' },
  { name: 'fileFormat', default: 'dotenv', description: 'format of the file: dotenv, json or shell' },
];

export const FILE_FORMATS = ['dotenv', 'json', 'shell'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];
export const ACTION_METHODS = ['jwt', 'token', 'approle', 'kubernetes'] as const;
export type ActionMethod = (typeof ACTION_METHODS)[number];

/**
 * The value of an input as the runner passes it: INPUT_<NAME> with the name upper-cased and spaces replaced
 * by '_' (a '-' stays). Trimmed, as @actions/core does; '' when unset.
 */
export function inputOf(env: Readonly<Record<string, string | undefined>>, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

function bad(input: string, problem: string, hint?: string): VaultrunError {
  return new VaultrunError('USAGE', `input ${input}: ${problem}`, hint ? { hint } : {});
}

function boolInput(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: boolean,
): boolean {
  const text = inputOf(env, name);
  if (text === '') return fallback;
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  throw bad(name, `expected true or false, got "${text}"`);
}

/** One requested secret: the output / variable name and the value to resolve (a vaultrun reference). */
export interface SecretRequest {
  name: string;
  /** vault:PATH#KEY[#VERSION], or a value with inline ${vault:…} references. */
  value: string;
  /** "secrets line N", for messages. */
  origin: string;
}

/** Output and variable names: letters, digits, _ . - (what $GITHUB_ENV and $GITHUB_OUTPUT take), not a digit first. */
const NAME = /^[A-Za-z_][\w.-]*$/;
const OWN_FORM = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;

/** The default name of a PATH#KEY line without `| NAME`: the key upper-cased, other characters as '_'. */
export function defaultName(key: string): string {
  const name = key.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/**
 * Parses the `secrets` input. One entry a line (vault-action's trailing ';' is allowed, and ';' also separates
 * entries on one line except in the NAME=… form); blank lines and lines starting with '#' are skipped:
 *   PATH#KEY | NAME            PATH#KEY#VERSION | NAME      vault:PATH#KEY | NAME
 *   PATH KEY | NAME            vault-action's form (PATH may be the API path, secret/data/ci)
 *   NAME=vault:PATH#KEY        vaultrun's own form; any value with references: NAME=https://${vault:p#user}@host
 * Without `| NAME` the name is the key upper-cased. Our own settings (VAULT_*, VAULTRUN_*…) are refused as names:
 * they would configure vaultrun instead of receiving a secret.
 */
export function parseSecrets(text: string, isOwnSetting: (name: string) => boolean): SecretRequest[] {
  const requests: SecretRequest[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const origin = `secrets line ${i + 1}`;
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const own = OWN_FORM.exec(line);
    const entries: SecretRequest[] = own
      ? [ownForm(own[1] ?? '', (own[2] ?? '').trim().replace(/\s*;$/, ''), origin)]
      : line
          .split(';')
          .map((e) => e.trim())
          .filter((e) => e !== '')
          .map((e) => pipeForm(e, origin));
    for (const entry of entries) {
      if (isOwnSetting(entry.name)) {
        throw bad(
          origin,
          `${entry.name} is one of vaultrun's own settings and cannot receive a secret`,
          'choose another name after "|"',
        );
      }
      if (seen.has(entry.name)) throw bad(origin, `${entry.name} is requested twice`);
      seen.add(entry.name);
      requests.push(entry);
    }
  }
  if (requests.length === 0) {
    throw bad('secrets', 'no secret requested', 'one a line: "secret/ci/deploy#key | DEPLOY_KEY"');
  }
  return requests;
}

function ownForm(name: string, value: string, origin: string): SecretRequest {
  if (parseValue(`${origin} (${name})`, value).kind === 'plain') {
    throw bad(origin, `${name}= holds no vault: reference`, 'write NAME=vault:PATH#KEY');
  }
  return { name, value, origin };
}

function pipeForm(entry: string, origin: string): SecretRequest {
  const bar = entry.indexOf('|');
  const spec = (bar < 0 ? entry : entry.slice(0, bar)).trim().replace(/^vault:/, '');
  const given = bar < 0 ? undefined : entry.slice(bar + 1).trim();
  const words = spec.split(/\s+/);
  let body: string;
  if (words.length === 2 && !spec.includes('#')) {
    body = `${words[0]}#${words[1]}`;
  } else if (words.length === 1) {
    body = spec;
  } else {
    throw bad(origin, 'expected "PATH#KEY | NAME" or "PATH KEY | NAME"');
  }
  if (body.endsWith('#*'))
    throw bad(origin, 'wildcard keys (*) are not supported', 'list each key on its own line');
  const ref = parseRefBody(origin, body);
  const name = given === undefined || given === '' ? defaultName(ref.key) : given;
  if (!NAME.test(name)) {
    throw bad(origin, `"${name}" is not a valid output name`, 'letters, digits, _ . - and not a digit first');
  }
  return {
    name,
    value: `vault:${ref.path}#${ref.key}${ref.version === undefined ? '' : `#${ref.version}`}`,
    origin,
  };
}

export interface ActionPlan {
  method: ActionMethod;
  secrets: SecretRequest[];
  /** Audience of the GitHub OIDC token; undefined: GitHub's default. */
  audience?: string;
  exportEnv: boolean;
  file?: string;
  fileFormat: FileFormat;
  /** PEM text of caCertificate, if given. */
  caPem?: string;
  /** vaultrun's settings (and the secret variables) as environment variables, without the JWT. */
  env: Record<string, string>;
}

/** Our settings that the step's own environment may set too (advanced settings: VAULTRUN_WAIT…). */
function passedSettings(
  processEnv: Readonly<Record<string, string | undefined>>,
  isOwnSetting: (name: string) => boolean,
): Record<string, string> {
  const refused = new Set<string>(
    (SETTINGS as readonly Setting[]).filter((s) => s.key === 'skipVerify').flatMap((s) => s.env),
  );
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(processEnv)) {
    if (value !== undefined && isOwnSetting(name) && !refused.has(name)) out[name] = value;
  }
  return out;
}

function envNames(...keys: string[]): string[] {
  return (SETTINGS as readonly Setting[]).filter((s) => keys.includes(s.key)).flatMap((s) => s.env);
}

/** Replaces a credential: the value of `key` from the input, every other form (its _FILE variant…) removed. */
function setOnly(env: Record<string, string>, value: string, key: string, ...others: string[]): void {
  for (const name of envNames(key, ...others)) delete env[name];
  const [first] = envNames(key);
  if (first) env[first] = value;
}

function caPemOf(text: string): string {
  if (text.includes('-----BEGIN')) return text;
  const decoded = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (!decoded.includes('-----BEGIN CERTIFICATE-----')) {
    throw bad(
      'caCertificate',
      'neither PEM nor base64 of PEM',
      'paste the PEM text (-----BEGIN CERTIFICATE-----…)',
    );
  }
  return decoded;
}

/** Pure: inputs (and the step's environment) → what the action does. Every input error is found here. */
export function planAction(
  processEnv: Readonly<Record<string, string | undefined>>,
  isOwnSetting: (name: string) => boolean,
): ActionPlan {
  const input = (name: string) => inputOf(processEnv, name);
  if (boolInput(processEnv, 'tlsSkipVerify', false)) {
    throw bad(
      'tlsSkipVerify',
      'vaultrun does not turn TLS verification off',
      'give the CA that signs the server certificate with caCertificate (PEM, or base64 of PEM)',
    );
  }
  const method = input('method') || 'jwt';
  if (!(ACTION_METHODS as readonly string[]).includes(method)) {
    throw bad('method', `expected one of ${ACTION_METHODS.join(', ')}, got "${method}"`);
  }
  const fileFormat = input('fileFormat') || 'dotenv';
  if (!(FILE_FORMATS as readonly string[]).includes(fileFormat)) {
    throw bad('fileFormat', `expected one of ${FILE_FORMATS.join(', ')}, got "${fileFormat}"`);
  }
  const secrets = parseSecrets(processEnv.INPUT_SECRETS ?? '', isOwnSetting);
  const env = passedSettings(processEnv, isOwnSetting);
  const url = input('url');
  if (url) setOnly(env, url, 'addr');
  if (!env.VAULT_ADDR && !env.BAO_ADDR) {
    throw bad('url', 'no Vault address', 'set the url input (or VAULT_ADDR in the step environment)');
  }
  if (input('namespace')) setOnly(env, input('namespace'), 'namespace');
  env.VAULTRUN_AUTH_METHOD = method;
  // NAME_FILE variables of the step are not ours to read: only the secrets listed are resolved.
  env.VAULTRUN_FILE_ENV = 'false';
  const role = input('role');
  const path = input('path');
  const need = (name: string, what: string) => {
    const value = input(name);
    if (!value) throw bad(name, `method ${method} needs ${what}`, `set the ${name} input (from a secret)`);
    return value;
  };
  if (method === 'jwt') {
    if (role) setOnly(env, role, 'jwtRole');
    if (path) setOnly(env, path, 'jwtMount');
  } else if (method === 'token') {
    setOnly(env, need('token', 'a token'), 'token', 'tokenFile');
  } else if (method === 'approle') {
    setOnly(env, need('roleId', 'a role_id'), 'roleId', 'roleIdFile');
    setOnly(env, need('secretId', 'a secret_id'), 'secretId', 'secretIdFile');
    if (path) setOnly(env, path, 'approleMount');
  } else {
    setOnly(env, need('role', 'a role'), 'kubernetesRole');
    if (path) setOnly(env, path, 'kubernetesMount');
  }
  if (processEnv.RUNNER_DEBUG === '1' && !env.VAULTRUN_LOG_LEVEL) env.VAULTRUN_LOG_LEVEL = 'debug';
  for (const s of secrets) env[s.name] = s.value;
  const audience = input('jwtGithubAudience');
  const file = input('file');
  if (file) {
    // A name the file's format cannot hold is an input mistake, found before anything is requested.
    for (const { name } of secrets) {
      const problem = nameProblem(fileFormat as FileFormat, name);
      if (problem !== undefined) {
        throw bad(
          'secrets',
          `${name}: ${problem}, so it cannot be written to the ${fileFormat} file`,
          'rename the output (… | NAME), or use fileFormat json',
        );
      }
    }
  }
  const ca = input('caCertificate');
  return {
    method: method as ActionMethod,
    secrets,
    exportEnv: boolInput(processEnv, 'exportEnv', true),
    fileFormat: fileFormat as FileFormat,
    env,
    ...(audience ? { audience } : {}),
    ...(file ? { file } : {}),
    ...(ca ? { caPem: caPemOf(ca) } : {}),
  };
}
