import { describe, expect, it } from 'vitest';
import { earlyLogFormat } from '../src/cli.js';

describe('earlyLogFormat (errors printed before the configuration is loaded)', () => {
  it.each<[string[], Record<string, string>, 'text' | 'json']>([
    [[], {}, 'text'],
    [[], { VAULTRUN_LOG_FORMAT: 'json' }, 'json'],
    [['--log-format', 'json', '--', 'app'], {}, 'json'],
    [['--log-format=json', '--wiat', '5s'], {}, 'json'],
    [['--wait', '5s', '--log-format', 'json'], {}, 'json'],
    // The flag beats the environment; the last one wins.
    [['--log-format', 'text'], { VAULTRUN_LOG_FORMAT: 'json' }, 'text'],
    [['--log-format', 'json', '--log-format=text'], {}, 'text'],
    // A subcommand's options are vaultrun's.
    [['check', '--log-format', 'json'], {}, 'json'],
    [['--addr', 'http://x:1', 'resolve', '--log-format=json'], {}, 'json'],
    // After --, or after the command, the words are the command's.
    [['--', 'app', '--log-format', 'json'], {}, 'text'],
    [['app', '--log-format', 'json'], {}, 'text'],
    [['--', 'check', '--log-format', 'json'], {}, 'text'],
    // A flag's value is not an option: --namespace --log-format names a namespace.
    [['--namespace', '--log-format', 'json'], {}, 'text'],
    // A value that is neither is left to the configuration to refuse; meanwhile the environment's.
    [['--log-format', 'yaml'], { VAULTRUN_LOG_FORMAT: 'json' }, 'json'],
    [['--log-format'], {}, 'text'],
  ])('%j %j → %s', (argv, env, format) => {
    expect(earlyLogFormat(argv, env)).toBe(format);
  });
});
