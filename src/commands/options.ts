import { type Command, CommanderError, Option } from 'commander';
import type { FlagValues } from '../config.js';
import { VaultrunError } from '../errors.js';
import { SETTINGS, type Setting } from '../settings.js';

/**
 * The settings table as commander options, shared by the main command and the subcommands (`resolve`,
 * `check`): every setting with a flag, its environment names and default in the help, `--no-…` for booleans.
 */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function describeSetting(s: Setting): string {
  const parts = [s.help];
  if (s.choices) parts.push(`one of ${s.choices.join('|')}`);
  parts.push(`env: ${s.env.join(', ')}`);
  if (s.default !== undefined) parts.push(`default: ${s.default}`);
  return parts.join('; ');
}

export function addSettingOptions(program: Command): Command {
  for (const s of SETTINGS as readonly Setting[]) {
    if (!s.flag) continue;
    if (s.kind === 'bool') {
      program.addOption(new Option(`--${s.flag}`, describeSetting(s)));
      program.addOption(new Option(`--no-${s.flag}`, `turn --${s.flag} off`).hideHelp());
    } else if (s.repeatable) {
      program.addOption(new Option(`--${s.flag} <value>`, describeSetting(s)).argParser(collect));
    } else {
      program.addOption(new Option(`--${s.flag} <value>`, describeSetting(s)));
    }
  }
  return program;
}

/** The settings given as flags, by setting key. */
export function settingFlagValues(program: Command): FlagValues {
  const opts = program.opts<Record<string, unknown>>();
  const flags: FlagValues = {};
  for (const s of SETTINGS as readonly Setting[]) {
    if (!s.flag) continue;
    const camel = s.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = opts[camel];
    if (v !== undefined) (flags as Record<string, unknown>)[s.key] = v;
  }
  return flags;
}

/** The environment-only credentials, for the end of a help text. */
export function envOnlyHelp(): string[] {
  return (SETTINGS as readonly Setting[])
    .filter((s) => !s.flag)
    .map((s) => `  ${s.env.join(', ')}: ${s.help}`);
}

/**
 * Parses argv with commander, help and errors going through us: help to `stdout`, errors as USAGE (exit 64).
 * Returns false when help was shown (the caller exits 0). `subcommand`: the subcommand being parsed, whose
 * unexpected arguments may mean a program of that name (`vaultrun check --x` for `vaultrun -- check --x`).
 */
export function parseArgv(
  program: Command,
  argv: readonly string[],
  stdout: (text: string) => void,
  subcommand?: string,
): boolean {
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => stdout(s),
    writeErr: () => {},
    outputError: () => {},
    getOutHelpWidth: () => 100,
    getErrHelpWidth: () => 100,
  });
  try {
    program.parse([...argv], { from: 'user' });
    return true;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help') return false;
      throw usageError(error, program.name(), subcommand);
    }
    throw error;
  }
}

/**
 * Pure: commander's error as one message and one hint. Commander's "(Did you mean --wait?)" goes into the hint;
 * a subcommand given arguments it does not take is maybe a program of that name, missing its `--`.
 */
export function usageError(
  error: { code: string; message: string },
  name: string,
  subcommand?: string,
): VaultrunError {
  const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
  const suggestion = rest
    .join(' ')
    .match(/Did you mean (.+?)\?/)?.[1]
    ?.trim();
  const parts: string[] = [];
  if (suggestion) parts.push(`did you mean ${suggestion}?`);
  if (
    subcommand &&
    (error.code === 'commander.excessArguments' || error.code === 'commander.unknownOption')
  ) {
    parts.push(`to run a program named ${subcommand}, put -- before it: vaultrun -- ${subcommand} ARGS`);
  }
  parts.push(`run ${name} --help for the options`);
  // Commander names the unexpected arguments; they are the user's text (a value, maybe): not repeated.
  const message =
    error.code === 'commander.excessArguments' ? `${name} takes no arguments` : first.replace(/\.$/, '');
  return new VaultrunError('USAGE', message, { hint: parts.join('; ') });
}
