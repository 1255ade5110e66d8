import { loadConfig } from '../config.js';
import { SETTINGS, type Setting } from '../settings.js';
import { buildCheckProgram, runCheck } from './check.js';
import type { CliIo } from './io.js';
import { parseArgv, settingFlagValues } from './options.js';
import { buildResolveProgram, resolveOptionsOf, runResolve } from './resolve.js';

/**
 * Subcommands: `vaultrun resolve` and `vaultrun check`. A subcommand is the first word that is not an option
 * (or an option's value) *before* any `--`; everything else is the main form, `vaultrun [options] [--]
 * COMMAND`. So `vaultrun -- check` runs a program named check, as does the recommended ENTRYPOINT
 * `["vaultrun", "--"]` with CMD ["check"]. Commander's own subcommand dispatch is not used because it also
 * dispatches on the first word after `--`.
 */
export const SUBCOMMANDS = ['resolve', 'check'] as const;
export type Subcommand = (typeof SUBCOMMANDS)[number];

/** The settings flags that take a value (`--addr URL`): the next word is theirs. */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(
  (SETTINGS as readonly Setting[]).filter((s) => s.flag && s.kind !== 'bool').map((s) => `--${s.flag}`),
);

/** Pure: the subcommand named in argv and its index, or undefined for the main form. */
export function subcommandOf(argv: readonly string[]): { name: Subcommand; index: number } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return undefined;
    if (arg.startsWith('-') && arg !== '-') {
      if (VALUE_FLAGS.has(arg)) i++; // --addr URL: skip the value ("--addr=URL" is one word)
      continue;
    }
    return (SUBCOMMANDS as readonly string[]).includes(arg)
      ? { name: arg as Subcommand, index: i }
      : undefined;
  }
  return undefined;
}

/** Parses the subcommand's options (the settings flags and its own) and runs it; returns the exit status. */
export async function runSubcommand(
  sub: { name: Subcommand; index: number },
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  const rest = [...argv.slice(0, sub.index), ...argv.slice(sub.index + 1)];
  const program = sub.name === 'resolve' ? buildResolveProgram() : buildCheckProgram();
  if (!parseArgv(program, rest, io.stdout, sub.name)) return 0;
  const config = loadConfig(settingFlagValues(program), io.env);
  io.log.level = config.logLevel;
  io.log.format = config.logFormat;
  return sub.name === 'resolve' ? runResolve(config, resolveOptionsOf(program), io) : runCheck(config, io);
}
