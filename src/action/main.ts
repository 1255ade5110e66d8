import { randomUUID } from 'node:crypto';
import { writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { exitCodeOf, VaultrunError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { appendExisting, writePrivateFile } from '../output/files.js';
import {
  escapeCommandData,
  formatDotenv,
  formatGithubEnv,
  formatJson,
  formatShell,
  githubMaskCommands,
  type Vars,
} from '../output/formats.js';
import { writeStdout } from '../output.js';
import { resolveEnvironment, revokeUnusedLogin, summaryLine } from '../resolve.js';
import { isOwnSetting } from '../settings.js';
import { VERSION } from '../version.js';
import { type ActionPlan, type FileFormat, planAction } from './inputs.js';
import { fetchGithubIdToken } from './oidc.js';

/**
 * The GitHub Action's entry point (action.yml → action/index.cjs, built by scripts/build-action.mjs). It only
 * resolves: log in (by default with the job's OIDC token, fetched here), read the listed secrets, then
 *   1. `::add-mask::` for every value (each line of a multi-line one), before anything else is printed —
 *      log lines written while resolving are held back until then;
 *   2. every secret as a step output ($GITHUB_OUTPUT), and with exportEnv as an environment variable of the
 *      later steps ($GITHUB_ENV), both in the multi-line form NAME<<DELIMITER with a random delimiter;
 *   3. with `file`, the secrets in a 0600 file (dotenv, json or shell).
 * A failure is one `::error::` annotation (masked, escaped) and vaultrun's exit status.
 */
export interface ActionIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: (text: string) => void;
  log: Logger;
  /** Writes the log lines held back so far, and from then on writes at once. */
  release: () => void;
}

function render(format: FileFormat, vars: Vars): string {
  if (format === 'json') return formatJson(vars);
  if (format === 'shell') return formatShell(vars);
  return formatDotenv(vars);
}

function requireFile(env: ActionIo['env'], name: 'GITHUB_OUTPUT' | 'GITHUB_ENV'): string {
  const path = env[name];
  if (!path) {
    throw new VaultrunError('USAGE', `$${name} is not set: the action runs only in a GitHub Actions step`, {
      hint: 'elsewhere use `vaultrun resolve --format dotenv|shell|json`',
    });
  }
  return path;
}

async function withCaFile<T>(plan: ActionPlan, env: ActionIo['env'], run: () => Promise<T>): Promise<T> {
  if (plan.caPem === undefined) return run();
  const dir = await mkdtemp(join(env.RUNNER_TEMP || tmpdir(), 'vaultrun-ca-'));
  try {
    const file = join(dir, 'ca.pem');
    await writeFile(file, plan.caPem, { mode: 0o600 });
    plan.env.VAULT_CACERT = file;
    delete plan.env.BAO_CACERT;
    return await run();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runAction(io: ActionIo): Promise<number> {
  const { env, log } = io;
  // Every input is checked before anything is requested.
  const plan = planAction(env, isOwnSetting);
  const outputFile = requireFile(env, 'GITHUB_OUTPUT');
  const envFile = plan.exportEnv ? requireFile(env, 'GITHUB_ENV') : undefined;
  if (plan.env.VAULTRUN_LOG_LEVEL === 'debug') log.level = 'debug';
  log.debug(`vaultrun action ${VERSION}`, { method: plan.method, secrets: plan.secrets.length });

  return withCaFile(plan, env, async () => {
    if (plan.method === 'jwt') {
      delete plan.env.VAULTRUN_JWT_FILE;
      plan.env.VAULTRUN_JWT = await fetchGithubIdToken(env, plan.audience, log);
    }
    const config = loadConfig({}, plan.env);
    log.level = config.logLevel;
    const resolution = await resolveEnvironment({ config, env: plan.env, log, keepVault: true });
    const vars: Array<[string, string]> = [];
    for (const { name } of plan.secrets) {
      const value = resolution.env[name];
      if (value === undefined) continue; // left unset by VAULTRUN_IGNORE_MISSING, which warned
      vars.push([name, value]);
    }
    // Masks first: from here on the runner hides these values in every log line.
    io.stdout(
      githubMaskCommands(
        vars.map(([, value]) => value),
        log.masker.list(),
      ),
    );
    io.release();
    try {
      log.info(summaryLine(resolution), { requests: resolution.stats.requests });
      if (resolution.leases.length > 0) {
        log.warn(
          'dynamic secrets with leases were read; nothing will renew them: they expire with their TTL',
          {
            leases: resolution.leases.length,
          },
        );
      } else {
        await revokeUnusedLogin(resolution.vault, config, log);
      }
    } finally {
      resolution.vault?.client.close();
    }
    // All or nothing for the later steps: everything that can be refused (a value the file's format cannot
    // hold, the file's path) is done before anything reaches $GITHUB_OUTPUT or $GITHUB_ENV, which later steps
    // read even after a failure (`if: always()`, continue-on-error).
    const delimiter = () => `ghadelimiter_${randomUUID()}`;
    const outputs = formatGithubEnv(vars, delimiter);
    const exported = envFile ? formatGithubEnv(vars, delimiter) : undefined;
    if (plan.file) await writePrivateFile(plan.file, render(plan.fileFormat, vars), 'input file');
    await appendExisting(outputFile, outputs, '$GITHUB_OUTPUT');
    if (envFile && exported !== undefined) await appendExisting(envFile, exported, '$GITHUB_ENV');
    log.info(
      `set ${vars.length} output${vars.length === 1 ? '' : 's'}${envFile ? ' and environment variables' : ''}${plan.file ? `, wrote ${plan.file}` : ''}`,
      { names: vars.map(([name]) => name).join(',') },
    );
    return 0;
  });
}

/**
 * vaultrun's messages name its environment settings; in a workflow the user wrote inputs, so messages name
 * those (an input always wins over the same setting in the step's environment).
 */
const INPUT_WORDS: ReadonlyArray<[RegExp, string]> = [
  [/JWT from VAULTRUN_JWT\b/g, 'GitHub OIDC token'],
  [/VAULTRUN_(JWT|KUBERNETES)_ROLE\b/g, 'input role'],
  [/VAULTRUN_(JWT|APPROLE|KUBERNETES)_MOUNT\b/g, 'input path'],
  // Not where a hint names both (the url input, or VAULT_ADDR in the step's environment).
  [/\bVAULT_ADDR\b(?! in the step environment)/g, 'input url'],
  [
    /set VAULT_CACERT=\/path\/to\/ca\.pem \(the CA that signed Vault's certificate\) or VAULT_CAPATH to a directory of CA files/g,
    "set the caCertificate input to the CA that signed Vault's certificate (PEM, or base64 of PEM)",
  ],
  [/\bVAULT_CACERT( \/ VAULT_CAPATH)?\b/g, 'the caCertificate input'],
  [/leave --output out to write to stdout/g, 'leave the file input out'],
  // The action resolves only the secrets listed: nothing is passed through.
  [/[;,] (or )?list the variable in VAULTRUN_PASSTHROUGH( to pass it through untouched)?/g, ''],
];

export function inInputWords(text: string): string {
  return INPUT_WORDS.reduce((out, [pattern, words]) => out.replace(pattern, words), text);
}

/** The process entry: held-back logs, errors as an annotation, and the exit status of vaultrun's table. */
export async function runActionMain(): Promise<never> {
  let held: string[] | undefined = [];
  const write = (line: string) => {
    if (held) held.push(line);
    else writeSync(2, line);
  };
  const release = () => {
    const lines = held ?? [];
    held = undefined;
    for (const line of lines) writeSync(2, line);
  };
  const log = createLogger({ format: 'text', level: 'info', write });
  let status: number;
  try {
    status = await runAction({ env: process.env, stdout: writeStdout, log, release });
  } catch (error) {
    release();
    status = exitCodeOf(error);
    if (error instanceof VaultrunError) {
      const message = inInputWords(error.message);
      const hint = error.hint === undefined ? undefined : inInputWords(error.hint);
      log.error(message, { code: error.code, exit: status, hint });
      const text = log.masker.mask(`${message}${hint ? ` (${hint})` : ''}`);
      writeStdout(`::error title=vaultrun::${escapeCommandData(text)}\n`);
    } else {
      const name = error instanceof Error ? error.name : typeof error;
      log.error(`internal error (${name}); rerun with RUNNER_DEBUG=1 and report it`, { exit: status });
      writeStdout(`::error title=vaultrun::internal error (${escapeCommandData(name)})\n`);
    }
  }
  release();
  process.exit(status);
}
