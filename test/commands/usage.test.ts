import { describe, expect, it } from 'vitest';
import { usageError } from '../../src/commands/options.js';

describe('usageError (commander errors as message + hint)', () => {
  it("commander's suggestion goes into the hint, on one line", () => {
    const error = usageError(
      { code: 'commander.unknownOption', message: "error: unknown option '--wiat'\n(Did you mean --wait?)" },
      'vaultrun',
    );
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe("unknown option '--wiat'");
    expect(error.hint).toBe('did you mean --wait?; run vaultrun --help for the options');
  });

  it('a subcommand given arguments: maybe a program of that name without its --', () => {
    const error = usageError(
      {
        code: 'commander.excessArguments',
        message: 'error: too many arguments. Expected 0 arguments but got 1: s3cr3t.',
      },
      'vaultrun check',
      'check',
    );
    expect(error.message).toBe('vaultrun check takes no arguments');
    expect(error.hint).toBe(
      'to run a program named check, put -- before it: vaultrun -- check ARGS; run vaultrun check --help for the options',
    );
  });

  it('other errors keep their text', () => {
    const error = usageError(
      { code: 'commander.optionMissingArgument', message: "error: option '--wait <value>' argument missing" },
      'vaultrun',
    );
    expect(error.message).toBe("option '--wait <value>' argument missing");
    expect(error.hint).toBe('run vaultrun --help for the options');
  });
});
