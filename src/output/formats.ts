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

/** Why `name` cannot be written in `format`, or undefined if it can. */
export function nameProblem(format: Format, name: string): string | undefined {
  if (format === 'json') return undefined;
  if (format === 'shell') {
    return SHELL_NAME.test(name)
      ? undefined
      : 'not a shell variable name (letters, digits, _; no leading digit)';
  }
  return DOTENV_NAME.test(name) ? undefined : 'not a valid name in this format (letters, digits, _ . -)';
}

function unrepresentable(name: string, format: Format, why: string): VaultrunError {
  return new VaultrunError('USAGE', `${name}: the value cannot be written in ${format} format: ${why}`, {
    hint: 'use --format json (any value) or --format shell',
  });
}

/**
 * One dotenv value. dotenv 18 takes single- and backtick-quoted values literally (newlines included) and, in
 * double quotes, turns only `\n` and `\r` into newline and carriage return (no other escapes: `\"` and `\\`
 * stay two characters); it turns every raw CR LF / CR in the file into LF; and a quoted value must not end
 * with a backslash (its parser takes backslash-quote for an escaped quote and runs on into the next lines).
 * Hence the first of these that fits:
 *   '…'   no ', no CR — literal; also safe from `$` expansion by dotenv-expand and compose;
 *   `…`   no `, no CR — literal;
 *   "…"   LF written \n, CR written \r; no ", and no backslash followed by n or r;
 *   bare  one line (no LF, CR, U+2028, U+2029), no #, no space at either end, not starting with a quote;
 * each of the quoted ones only if the value does not end with a backslash. Anything else has no exact form:
 * an error (for example a value with ', ` and " that also holds a newline or a #).
 */
export function dotenvValue(name: string, value: string): string {
  if (value.includes('\0')) throw unrepresentable(name, 'dotenv', 'it contains a NUL character');
  const cr = value.includes('\r');
  const quotable = !value.endsWith('\\');
  if (quotable && !cr && !value.includes("'")) return `'${value}'`;
  if (quotable && !cr && !value.includes('`')) return `\`${value}\``;
  if (quotable && !value.includes('"') && !/\\[nr]/.test(value)) {
    return `"${value.replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
  }
  if (value !== '' && value === value.trim() && !/[#\r\n\u2028\u2029]/.test(value) && !/^['"`]/.test(value))
    return value;
  throw unrepresentable(
    name,
    'dotenv',
    'no dotenv quoting keeps it exact (it has \', ` and ", or ends with a backslash, with a newline or a #)',
  );
}

export function formatDotenv(vars: Vars): string {
  return vars.map(([name, value]) => `${name}=${dotenvValue(name, value)}\n`).join('');
}

/** POSIX shell: `export NAME='…'`, each ' written as '\'' — exact for any value without NUL. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function formatShell(vars: Vars): string {
  return vars
    .map(([name, value]) => {
      if (value.includes('\0')) throw unrepresentable(name, 'shell', 'it contains a NUL character');
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
