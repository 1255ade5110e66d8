import { Command } from 'commander';
import { runSubcommand, SUBCOMMANDS, subcommandOf, VALUE_FLAGS } from './commands/index.js';
import type { CliIo } from './commands/io.js';
import { addSettingOptions, parseArgv, settingFlagValues } from './commands/options.js';
import { type Config, loadConfig } from './config.js';
import { EXIT_TABLE, exitCodeOf, VaultrunError } from './errors.js';
import { createLogger, type LogFormat } from './log.js';
import { writeStdout } from './output.js';
import { argumentProblems } from './refs/lookalike.js';
import { abandonStart, resolveEnvironment, revokeUnusedLogin, summaryLine } from './resolve.js';
import { concealCredentials } from './run/conceal.js';
import { execReplace, findExecutable } from './run/exec.js';
import { refuseEnvFilesNodeRead, restoredNodeVariables } from './run/node-env.js';
import { Rotation } from './run/rotation/index.js';
import { rotatesOnSchedule } from './run/rotation/scheduled.js';
import { supervise } from './run/supervise.js';
import { becomeUser, resolveUser, userEnvironment } from './run/user.js';
import { isCredentialVariable, SETTINGS, type Setting } from './settings.js';
import { versionLine } from './version.js';

/**
 * The CLI: commander turns argv into flag values, the library does the work, and runMain is the one place
 * that prints errors and exits.
 */

export function buildProgram(): Command {
  const program = new Command('vaultrun')
    .usage('[options] [--] COMMAND [ARGS...]')
    .description(
      'Resolve vault:PATH#KEY references in the environment from HashiCorp Vault / OpenBao, then run COMMAND.\n' +
        'Without --supervise, vaultrun replaces itself with COMMAND (same pid).\n\n' +
        'Example:\n' +
        '  export VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN_FILE=/run/secrets/vault-token\n' +
        '  export DB_PASSWORD=vault:secret/app/db#password     # PATH as for `vault kv get`, then #KEY\n' +
        '  vaultrun -- app --serve                              # app sees DB_PASSWORD=<the value>\n' +
        'Errors say what to do; common mistakes: docs/errors-and-logs.md#common-mistakes',
    )
    .argument('[command...]', 'the command to run, looked up on PATH')
    .helpOption('-h, --help', 'show this help')
    .option('-V, --version', 'print version, Node version and build commit')
    .passThroughOptions()
    .allowExcessArguments(true)
    .showHelpAfterError(false);
  addSettingOptions(program);
  const envOnly = (SETTINGS as readonly Setting[]).filter((s) => !s.flag);
  program.addHelpText(
    'after',
    [
      '',
      'Credentials, environment only (a command line is visible in ps):',
      ...envOnly.map((s) => `  ${s.env.join(', ')}: ${s.help}`),
      '',
      'References: vault:PATH#KEY, vault:PATH#KEY#VERSION, or inline ${vault:PATH#KEY} anywhere in a value.',
      '',
      'Subcommands (the first word, before any --; `vaultrun -- check` runs a program named check):',
      '  vaultrun resolve [options]  print the resolved variables (--format dotenv|json|shell|github, --output)',
      '  vaultrun check [options]    check every reference without printing a value (table, exit status)',
      '',
      'Exit statuses:',
      ...EXIT_TABLE.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`),
    ].join('\n'),
  );
  return program;
}

async function runCommand(command: string[], config: Config, io: CliIo): Promise<number> {
  const { log } = io;
  const [name] = command;
  if (name === undefined) {
    throw new VaultrunError('USAGE', 'no command given', {
      hint: 'usage: vaultrun [options] [--] COMMAND [ARGS...]',
    });
  }
  const user = config.user ? await resolveUser(config.user) : undefined;
  const owner = user ? { uid: user.uid, gid: user.gid } : undefined;
  // --user: files read on the command's behalf (env files, NAME_FILE sources) are read as that user.
  const readAs = user ? { uid: user.uid, gid: user.gid, name: user.name } : undefined;
  // --user: the command's HOME, USER and LOGNAME are that user's (as login and gosu do), also after a restart.
  const processEnv = user ? userEnvironment(io.env, user) : io.env;
  const resolution = await resolveEnvironment({
    config,
    env: processEnv,
    log,
    keepVault: true,
    ...(owner ? { owner } : {}),
    ...(readAs ? { readAs } : {}),
  });
  const { stats, vault } = resolution;
  const changed = new Set(Object.keys(resolution.env).filter((k) => resolution.env[k] !== processEnv[k]));
  for (const problem of argumentProblems(command, changed)) {
    log.warn(problem, {
      hint: 'set the reference in a variable (NAME=vault:PATH#KEY) and let the program read it, or expand it with a shell: sh -c \'exec app "$NAME"\'',
    });
  }
  if (stats.references > 0) {
    log.info(summaryLine(resolution), { requests: stats.requests });
  } else {
    log.debug('no references in the environment: running the command without contacting Vault');
  }
  // Until the command runs (or a supervisor owns the start), a failure revokes what the start obtained.
  try {
    // Resident when asked to supervise, or to watch — which is the default as soon as a secret has a lease:
    // exec-ing away would leave the lease to die.
    // The command's token (NAME=vault:login) too: it is renewed only by a resident vaultrun.
    const watching =
      config.watch ??
      (resolution.leases.length > 0 || rotatesOnSchedule(resolution) || vault?.childToken !== undefined);
    const resident = config.supervise || watching;
    const file = await findExecutable(name, resolution.env.PATH);
    if (resident) {
      const rotation = new Rotation({
        config,
        processEnv,
        log,
        resolution,
        watching,
        ...(vault ? { vault } : {}),
        ...(owner ? { owner } : {}),
        ...(readAs ? { readAs } : {}),
      });
      // From here on the rotation revokes on exit, whatever the command does (126 if it cannot start).
      return supervise({
        file,
        argv: command,
        env: resolution.env,
        log,
        stopSignal: config.stopSignal,
        stopTimeoutMs: config.stopTimeoutMs,
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
        ...(config.mask ? { mask: log.masker } : {}),
        onStart: (controller) => rotation.attach(controller),
        onExit: () => rotation.dispose(),
      });
    }
    if (resolution.leases.length > 0) {
      log.warn('dynamic secrets with leases were read, and --no-watch: nothing will renew them', {
        leases: resolution.leases.length,
      });
    } else {
      await revokeUnusedLogin(vault, config, log);
    }
    vault?.client.close();
    if (user) becomeUser(user);
    log.debug('replacing vaultrun with the command', { file });
    execReplace(file, command, resolution.env);
  } catch (error) {
    await abandonStart(vault, resolution.leases, config, log);
    vault?.client.close();
    throw error;
  }
}

/**
 * The program built ahead, while the single executable's start-up snapshot is made (src/main.ts): building it
 * (about fifty options and their help) is then not a part of any start. Used once.
 */
let prebuilt: Command | undefined;

export function prebuildProgram(): void {
  prebuilt = buildProgram();
}

/** Parses argv and runs; returns the exit status. Throws VaultrunError for anything the user must fix. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = subcommandOf(argv);
  if (sub) return runSubcommand(sub, argv, io);
  const program = prebuilt ?? buildProgram();
  prebuilt = undefined;
  if (!parseArgv(program, argv, io.stdout)) return 0;
  if (program.opts().version) {
    io.stdout(`${versionLine()}\n`);
    return 0;
  }
  const config = loadConfig(settingFlagValues(program), io.env);
  io.log.level = config.logLevel;
  io.log.format = config.logFormat;
  return runCommand(program.args, config, io);
}

/**
 * Pure: the log format of what is printed before the configuration is loaded (a usage or configuration error,
 * the warnings of the first moments): `--log-format json` / `--log-format=json` among vaultrun's own options —
 * before `--`, and before the command (whose arguments are its own), the last one winning — else
 * VAULTRUN_LOG_FORMAT. Anything but json or text is left to the configuration to refuse (in text).
 */
export function earlyLogFormat(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): LogFormat {
  let flag: string | undefined;
  let subcommand = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    if (arg === '--log-format') {
      flag = argv[++i];
    } else if (arg.startsWith('--log-format=')) {
      flag = arg.slice('--log-format='.length);
    } else if (arg.startsWith('-') && arg !== '-') {
      if (VALUE_FLAGS.has(arg)) i++;
    } else if (!subcommand && (SUBCOMMANDS as readonly string[]).includes(arg)) {
      subcommand = true;
    } else {
      break;
    }
  }
  if (flag === 'json' || flag === 'text') return flag;
  return env.VAULTRUN_LOG_FORMAT === 'json' ? 'json' : 'text';
}

/** The one place that prints errors and exits. */
export async function runMain(argv: readonly string[]): Promise<never> {
  // A copy for the configuration and the command (with the Node variables set aside at start, run/node-env.ts);
  // then the credentials leave process.env and our /proc/<pid>/environ before anything else runs.
  const env: Record<string, string | undefined> = { ...process.env, ...restoredNodeVariables() };
  // Names decided before anything is removed: an address is a credential by its value (user:password@).
  const credentials = new Set(
    Object.keys(process.env).filter((name) => isCredentialVariable(name, process.env[name])),
  );
  const concealed = concealCredentials(process.env, (name) => credentials.has(name));
  const log = createLogger({ format: earlyLogFormat(argv, env), level: 'info' });
  if (concealed.blockError !== undefined && concealed.removed.length > 0 && !concealed.nonDumpable) {
    log.warn('could not remove the credentials from /proc/self/environ: the same user can read them there', {
      error: concealed.blockError,
    });
  }
  let status: number;
  try {
    refuseEnvFilesNodeRead();
    status = await main(argv, { env, stdout: writeStdout, log });
  } catch (error) {
    status = exitCodeOf(error);
    if (error instanceof VaultrunError) {
      log.error(error.message, { code: error.code, exit: status, hint: error.hint });
    } else {
      // Never print a raw foreign error: it might carry request headers (X-Vault-Token) or bodies.
      const name = error instanceof Error ? error.name : typeof error;
      log.error(`internal error (${name}); rerun with VAULTRUN_LOG_LEVEL=debug and report it`, {
        exit: status,
      });
      if (error instanceof Error && error.stack) log.debug(error.stack.split('\n').slice(1, 8).join(' | '));
    }
  }
  process.exit(status);
}
