import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import type { Config } from '../config.js';
import { VaultrunError } from '../errors.js';
import { appendExisting, writePrivateFile } from '../output/files.js';
import {
  FORMATS,
  type Format,
  formatDotenv,
  formatGithubEnv,
  formatJson,
  formatShell,
  githubMaskCommands,
  nameProblem,
  type Vars,
} from '../output/formats.js';
import { abandonStart, resolveEnvironment, revokeUnusedLogin, summaryLine } from '../resolve.js';
import type { CliIo } from './io.js';
import { addSettingOptions, envOnlyHelp } from './options.js';

/**
 * `vaultrun resolve`: one resolution, exactly as a start would do it (same settings, same sources, same
 * scrubbing), printed instead of handed to a command. By default only the variables that held references;
 * `--all` adds the rest of the (scrubbed) environment — never our credentials or settings.
 */
export interface ResolveOptions {
  format: Format;
  output?: string;
  all: boolean;
}

export function buildResolveProgram(): Command {
  const program = new Command('vaultrun resolve')
    .usage('[options]')
    .description(
      'Resolve the references in the environment (and --env-file files) and print the variables, for CI\n' +
        'steps and scripts: `eval "$(vaultrun resolve --format shell)"`. Nothing is run.',
    )
    .helpOption('-h, --help', 'show this help')
    .addOption(
      new Option('--format <format>', 'output format').choices([...FORMATS]).default('dotenv' as Format),
    )
    .addOption(
      new Option('--output <file>', 'write to FILE (created with mode 0600, atomically) instead of stdout'),
    )
    .addOption(new Option('--all', 'print the whole environment, not only the variables that had references'))
    .showHelpAfterError(false);
  addSettingOptions(program);
  program.addHelpText(
    'after',
    [
      '',
      "Formats: dotenv (NAME='value'), json (one object), shell (export NAME='value'), github (::add-mask::",
      'for every value on stdout, variables appended to $GITHUB_ENV).',
      '',
      'Credentials, environment only:',
      ...envOnlyHelp(),
    ].join('\n'),
  );
  return program;
}

export function resolveOptionsOf(program: Command): ResolveOptions {
  const o = program.opts<{ format: Format; output?: string; all?: boolean }>();
  return { format: o.format, all: Boolean(o.all), ...(o.output === undefined ? {} : { output: o.output }) };
}

function render(format: Exclude<Format, 'github'>, vars: Vars): string {
  if (format === 'json') return formatJson(vars);
  if (format === 'shell') return formatShell(vars);
  return formatDotenv(vars);
}

export async function runResolve(config: Config, options: ResolveOptions, io: CliIo): Promise<number> {
  const { log } = io;
  // Everything that can be checked without Vault is checked first.
  let githubEnv: string | undefined;
  if (options.format === 'github') {
    if (options.output !== undefined) {
      throw new VaultrunError('USAGE', '--output cannot be used with --format github', {
        hint: 'the github format appends to the file named by $GITHUB_ENV and prints ::add-mask:: on stdout',
      });
    }
    githubEnv = io.env.GITHUB_ENV;
    if (!githubEnv) {
      throw new VaultrunError('USAGE', '--format github: $GITHUB_ENV is not set', {
        hint: 'GitHub Actions sets it in every step; elsewhere use --format dotenv, shell or json',
      });
    }
  }
  if (options.output === '') throw new VaultrunError('USAGE', '--output: empty file name');

  const resolution = await resolveEnvironment({ config, env: io.env, log, keepVault: true });
  const { stats, vault } = resolution;
  try {
    if (stats.references > 0) {
      log.info(summaryLine(resolution), { requests: stats.requests });
    } else {
      log.info('no references in the environment: nothing was read from Vault');
    }
    await emit(resolution, options, githubEnv, io);
    // Delivered: the leases stay (their values are out there); the token nothing needs any more is revoked.
    if (resolution.leases.length > 0) {
      log.warn('dynamic secrets with leases were read; nothing will renew them: they expire with their TTL', {
        leases: resolution.leases.length,
      });
    } else {
      await revokeUnusedLogin(vault, config, log);
    }
    return 0;
  } catch (error) {
    // Nothing was delivered: what this resolution obtained is revoked, as after a failed start.
    await abandonStart(vault, resolution.leases, config, log);
    throw error;
  } finally {
    vault?.client.close();
  }
}

/** Prints or writes the variables in the chosen format. */
async function emit(
  resolution: Awaited<ReturnType<typeof resolveEnvironment>>,
  options: ResolveOptions,
  githubEnv: string | undefined,
  io: CliIo,
): Promise<void> {
  const { log } = io;
  const resolved = new Set(resolution.resolvedNames);
  const vars: Array<[string, string]> = [];
  for (const name of Object.keys(resolution.env).sort()) {
    if (!options.all && !resolved.has(name)) continue;
    const problem = nameProblem(options.format, name);
    if (problem) {
      if (resolved.has(name)) {
        throw new VaultrunError(
          'USAGE',
          `${name}: cannot be written in ${options.format} format: ${problem}`,
          {
            hint: 'use --format json, or rename the variable',
          },
        );
      }
      log.warn(`variable left out: ${problem}`, { variable: name, format: options.format });
      continue;
    }
    vars.push([name, resolution.env[name] ?? '']);
  }

  if (options.format === 'github') {
    const entries = formatGithubEnv(vars, () => `ghadelimiter_${randomUUID()}`);
    const secrets = [
      ...vars.filter(([name]) => resolved.has(name)).map(([, value]) => value),
      ...Object.values(resolution.rendered.fileValues).filter((v) => typeof v === 'string'),
    ];
    // Masks first: the runner hides these values in every log line from now on, before anything uses them.
    io.stdout(githubMaskCommands(secrets, log.masker.list()));
    await appendExisting(githubEnv as string, entries, '$GITHUB_ENV');
    log.debug('appended to $GITHUB_ENV', { variables: vars.length });
    return;
  }
  const text = render(options.format, vars);
  if (options.output !== undefined) {
    await writePrivateFile(options.output, text);
    log.debug('wrote the variables', { file: options.output, variables: vars.length });
  } else {
    io.stdout(text);
  }
}
