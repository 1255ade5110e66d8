/**
 * Pure checks for references that will not be resolved: a value that looks like a reference but is not one
 * (`VAULT:…`, `${ vault:…}`, text before `vault:`), and a reference or an unexpanded `$NAME` in the command's
 * arguments (vaultrun resolves the environment only; no shell expands an exec-form CMD). Each finding names
 * the variable or the argument's position and what is wrong, never the value.
 */

/** Why a value that parsed as plain text looks like a mistyped reference, or undefined. */
export function lookalikeProblem(value: string): string | undefined {
  // Every pattern below has vault or bao in it (any case): most values have neither, and then none of the
  // case-insensitive expressions is compiled or run (they cost a start more than the test).
  const lower = value.toLowerCase();
  if (!lower.includes('vault') && !lower.includes('bao')) return undefined;
  const head = /^\s*(vault|openbao|bao)\s*:/i.exec(value);
  if (head) {
    const word = head[1] as string;
    if (word.toLowerCase() !== 'vault')
      return `it starts with ${word.toLowerCase()}: (references start with vault:)`;
    if (word !== 'vault')
      return 'it starts with vault: in capitals (references start with lower-case vault:)';
    return 'it has spaces around vault: (a whole-value reference starts with vault: at the first character)';
  }
  if (/\$\{\s*vault\s*:/i.test(value)) {
    return 'it has an inline reference spelled differently (inline references are written ${vault:PATH#KEY})';
  }
  if (/\$vault:|\$\(vault:|\{\{\s*vault:/i.test(value)) {
    return 'it has vault: after $, $( or {{ (inline references are written ${vault:PATH#KEY})';
  }
  return undefined;
}

const REFERENCE_IN_TEXT = /(^|[\s='"])vault:[^\s#'"]+#[^\s'"]|\$\{vault:/;

/**
 * Warnings about the command's arguments (argv[0] is the command): a reference in an argument, or an argument
 * that is exactly `$NAME` / `${NAME}` for a variable vaultrun resolved (`changed`), which no shell expanded.
 */
export function argumentProblems(argv: readonly string[], changed: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  argv.forEach((arg, i) => {
    if (i === 0) return;
    if (REFERENCE_IN_TEXT.test(arg)) {
      problems.push(
        `argument ${i} of the command holds a Vault reference, which vaultrun does not resolve (it resolves environment variables only)`,
      );
      return;
    }
    const name = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/.exec(arg);
    const variable = name?.[1] ?? name?.[2];
    if (variable !== undefined && changed.has(variable)) {
      problems.push(
        `argument ${i} of the command is the text ${arg}: no shell expanded it (an exec-form CMD has no shell)`,
      );
    }
  });
  return problems;
}
