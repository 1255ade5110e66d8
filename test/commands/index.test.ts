// Which argv is a subcommand (`vaultrun resolve`, `vaultrun check`) and which is the main form that runs a
// program: the first word that is not an option or an option's value, before any `--`.
import { describe, expect, it } from 'vitest';
import { subcommandOf } from '../../src/commands/index.js';

describe('subcommandOf', () => {
  it.each<[string[], string | undefined, number | undefined]>([
    [['check'], 'check', 0],
    [['resolve', '--format', 'json'], 'resolve', 0],
    [['--', 'check'], undefined, undefined],
    [['--supervise', '--', 'resolve'], undefined, undefined],
    [['--addr', 'http://x', 'check'], 'check', 2],
    [['--addr=http://x', 'check'], 'check', 1],
    [['--supervise', 'check'], 'check', 1],
    [['--no-file-env', 'resolve'], 'resolve', 1],
    [['--env-file', 'check'], undefined, undefined], // "check" is the env file's name
    [['--env-file', 'a.env', '--env-file', 'b.env', 'resolve'], 'resolve', 4],
    [['gunicorn', 'check'], undefined, undefined],
    [['checks'], undefined, undefined],
    [['Check'], undefined, undefined],
    [['-h'], undefined, undefined],
    [[], undefined, undefined],
  ])('%j → %s', (argv, name, index) => {
    const sub = subcommandOf(argv);
    expect(sub?.name).toBe(name);
    expect(sub?.index).toBe(index);
  });
});
