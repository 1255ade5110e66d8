import { describe, expect, it } from 'vitest';
import { argumentProblems, lookalikeProblem } from '../../src/refs/lookalike.js';
import { parseValue } from '../../src/refs/parse.js';

describe('lookalikeProblem (values that parse as plain text)', () => {
  it.each<[string, RegExp]>([
    ['VAULT:secret/app/db#password', /in capitals \(references start with lower-case vault:\)/],
    ['Vault:secret/app/db#password', /in capitals/],
    ['bao:secret/app/db#password', /starts with bao: \(references start with vault:\)/],
    ['openbao:secret/app/db#password', /starts with openbao:/],
    [' vault:secret/app/db#password', /spaces around vault:/],
    ['vault :secret/app/db#password', /spaces around vault:/],
    ['x${VAULT:secret/app/db#password}', /inline reference spelled differently/],
    ['x${ vault:secret/app/db#password}', /inline reference spelled differently/],
    ['x$vault:secret/app/db#password', /after \$, \$\( or \{\{/],
    ['{{vault:secret/app/db#password}}', /after \$, \$\( or \{\{/],
    // Any case of vault / bao (the first test of lookalikeProblem lower-cases the value).
    ['BAO:secret/app/db#password', /starts with bao:/],
    ['OpenBao:secret/app/db#password', /starts with openbao:/],
    ['vAuLt:secret/app/db#password', /in capitals/],
    ['x${ VAULT :secret/app/db#password}', /inline reference spelled differently/],
    ['x$(VAULT:secret/app/db#password)', /after \$, \$\( or \{\{/],
    ['{{ Vault:secret/app/db#password}}', /after \$, \$\( or \{\{/],
  ])('%j: %s', (value, problem) => {
    expect(parseValue('X', value).kind).toBe('plain');
    const found = lookalikeProblem(value);
    expect(found).toMatch(problem);
    expect(found).not.toContain('secret/app');
  });

  it.each(['postgres://db:5432/app', 'a vault of coins', 'my-vault:8200', 'hunter2', ''])(
    '%j is not a look-alike',
    (value) => {
      expect(lookalikeProblem(value)).toBeUndefined();
    },
  );
});

describe('argumentProblems (the command line is not resolved)', () => {
  it('a reference in an argument, by position, without the value', () => {
    expect(
      argumentProblems(
        ['app', '--password', 'vault:secret/app/db#password', '--x=${vault:s/a#k}'],
        new Set(),
      ),
    ).toEqual([
      'argument 2 of the command holds a Vault reference, which vaultrun does not resolve (it resolves environment variables only)',
      'argument 3 of the command holds a Vault reference, which vaultrun does not resolve (it resolves environment variables only)',
    ]);
  });

  it('a reference inside a shell script argument', () => {
    expect(argumentProblems(['sh', '-c', 'exec app --password=vault:secret/a#k'], new Set())).toHaveLength(1);
  });

  it('$NAME or ${NAME} as a whole argument, for a variable vaultrun resolved', () => {
    const changed = new Set(['DB_PASSWORD']);
    expect(argumentProblems(['app', '$DB_PASSWORD', '${DB_PASSWORD}', '$HOME'], changed)).toEqual([
      'argument 1 of the command is the text $DB_PASSWORD: no shell expanded it (an exec-form CMD has no shell)',
      'argument 2 of the command is the text ${DB_PASSWORD}: no shell expanded it (an exec-form CMD has no shell)',
    ]);
  });

  it('nothing for ordinary arguments, a shell script using $NAME, or the command itself', () => {
    const changed = new Set(['DB']);
    expect(argumentProblems(['vault:x#y', 'serve', '--port', '80'], changed)).toEqual([]);
    expect(argumentProblems(['sh', '-c', 'echo "$DB"'], changed)).toEqual([]);
    expect(argumentProblems(['app', 'https://vault:8200/x#frag'], changed)).toEqual([]);
  });
});
