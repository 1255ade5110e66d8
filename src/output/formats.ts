import { VaultrunError } from '../errors.js';

/**
 * Output formats of `vaultrun resolve`, pure: (name, value) pairs in, text out. Every value must come back
 * exactly as it was when the text is read by its consumer — dotenv (the `dotenv` package, which --env-file
 * uses too), a POSIX shell (`eval`), JSON.parse, and the GitHub Actions runner ($GITHUB_ENV) — or the
 * formatter refuses with an error naming the variable. A secret is never silently changed.
 */
export const FORMATS = ['dotenv', 'json', 'shell', 'github'] as const;
export type Format = (typeof FORMATS)[number];

export type Vars = ReadonlyArray<readonly [name: string, value: string]>;

const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** What dotenv accepts as a key (and what is safe as a $GITHUB_ENV name: no '=', '<', spaces or newlines). */
const DOTENV_NAME = /^[\w.-]+$/;
const SHELL_NAME_PROBLEM = 'not a shell variable name (letters, digits, _; no leading digit)';

/** Why `name` cannot be written in `format`, or undefined if it can. */
export function nameProblem(format: Format, name: string): string | undefined {
  if (format === 'json') return undefined;
  // dotenv files are also read by `set -a; . file`, where `my.var=x` is not an assignment but a command.
  if (format === 'shell' || format === 'dotenv')
    return SHELL_NAME.test(name) ? undefined : SHELL_NAME_PROBLEM;
  return DOTENV_NAME.test(name) ? undefined : 'not a valid name in this format (letters, digits, _ . -)';
}

function unrepresentable(name: string, format: Format, why: string): VaultrunError {
  return new VaultrunError('USAGE', `${name}: the value cannot be written in ${format} format: ${why}`, {
    hint: `use --format json (any value), or reference it as ${name}_FILE=vault:… to get it in a file`,
  });
}

/** A UTF-16 surrogate without its pair: written as UTF-8 it would become U+FFFD, another value. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Why `value` has no form in the dotenv format that all its readers read back exactly (see dotenvValue). */
export function dotenvProblem(value: string): string | undefined {
  if (value.includes('\0')) return 'it contains a NUL character';
  if (LONE_SURROGATE.test(value)) return 'it is not valid Unicode (a lone UTF-16 surrogate)';
  if (value.includes('\r')) return 'it contains a carriage return (dotenv readers turn it into a newline)';
  if (value.includes('\\\\') || value.endsWith('\\')) {
    return 'it contains two backslashes in a row or ends with a backslash (python-dotenv or docker compose would change it)';
  }
  if (/\$\{[^}]*\}/.test(value)) return 'it contains ${…} (python-dotenv expands it whatever the quoting)';
  if (value.includes("'") && /["$`\\]/.test(value)) {
    return 'it contains \' together with ", $, ` or a backslash (no quoting keeps that exact for both shells and dotenv readers)';
  }
  return undefined;
}

/**
 * One dotenv value, read back exactly — and nothing else defined, no shell code run — by every reader tested:
 * the npm `dotenv` package, python-dotenv (`dotenv_values`, which expands `${…}`), docker compose's `env_file`
 * parser (compose-go), and `set -a; . file` in bash and dash. Two forms:
 *   '…'  when the value has no ' — literal in all of them (newlines included; no `$` expansion in the shells or
 *        compose, no escapes in dotenv or compose);
 *   "…"  when it has a ' but no ", $, ` or backslash — where nothing else is special to any of them.
 * Refused (see dotenvProblem), since some reader would read another value or run on into the next lines: NUL,
 * a lone surrogate, CR (dotenv and python-dotenv read any CR as LF), `\\` or a final backslash (python-dotenv
 * decodes `\\` in single quotes; a final backslash escapes the closing quote), `${…}` (python-dotenv expands
 * it in any quoting), and ' together with ", $, ` or a backslash.
 */
export function dotenvValue(name: string, value: string): string {
  const problem = dotenvProblem(value);
  if (problem !== undefined) throw unrepresentable(name, 'dotenv', problem);
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}

export function formatDotenv(vars: Vars): string {
  return vars.map(([name, value]) => `${name}=${dotenvValue(name, value)}\n`).join('');
}

/** POSIX shell: `export NAME='…'`, each ' written as '\'' — exact for any value without NUL (or lone surrogate). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function formatShell(vars: Vars): string {
  return vars
    .map(([name, value]) => {
      if (value.includes('\0')) throw unrepresentable(name, 'shell', 'it contains a NUL character');
      if (LONE_SURROGATE.test(value))
        throw unrepresentable(name, 'shell', 'it is not valid Unicode (a lone UTF-16 surrogate)');
      return `export ${name}=${shellQuote(value)}\n`;
    })
    .join('');
}

/** One JSON object, keys in the given order (written out directly: an object would put "10" before "9"). */
export function formatJson(vars: Vars): string {
  if (vars.length === 0) return '{}\n';
  const lines = vars.map(([name, value]) => `  ${JSON.stringify(name)}: ${JSON.stringify(value)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/**
 * $GITHUB_ENV entries in the documented multi-line syntax, for every value:
 *   NAME<<DELIMITER
 *   value
 *   DELIMITER
 * with a random delimiter per variable that does not occur in the value (a value cannot end the block early).
 */
export function formatGithubEnv(vars: Vars, newDelimiter: () => string): string {
  return vars
    .map(([name, value]) => {
      if (value.includes('\0')) throw unrepresentable(name, 'github', 'it contains a NUL character');
      if (LONE_SURROGATE.test(value))
        throw unrepresentable(name, 'github', 'it is not valid Unicode (a lone UTF-16 surrogate)');
      let delimiter = newDelimiter();
      for (let tries = 0; value.includes(delimiter); tries++) {
        if (tries >= 100) throw new VaultrunError('INTERNAL', `${name}: no heredoc delimiter found`);
        delimiter = newDelimiter();
      }
      return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
    })
    .join('');
}

/** Workflow command data escaping (as @actions/core does): the runner unescapes %25, %0D, %0A. */
export function escapeCommandData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * `::add-mask::` commands: for every secret value, each of its non-blank lines (GitHub masks line by line), and
 * every separately known secret (a resolved field, e.g. the password inside a URL) that occurs in one of them.
 * A known value that occurs in none of them is never printed (our own credentials are among the known values).
 */
export function githubMaskCommands(values: readonly string[], known: readonly string[]): string {
  const masks = new Set<string>();
  for (const value of values) {
    for (const line of value.split(/\r\n|\r|\n/)) if (line.trim() !== '') masks.add(line);
  }
  for (const k of known) if (k.trim() !== '' && values.some((v) => v.includes(k))) masks.add(k);
  return [...masks].map((m) => `::add-mask::${escapeCommandData(m)}\n`).join('');
}
