// The output formats of `vaultrun resolve`: every value read back by its real consumer is the value written —
// dotenv by the dotenv package (the one --env-file uses), shell by bash and sh, JSON by JSON.parse, $GITHUB_ENV
// by a parser of GitHub's documented multi-line syntax — or the formatter refuses, for exactly the values the
// manual says it refuses (docs/ci.md).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dotenvValue,
  escapeCommandData,
  type Format,
  formatDotenv,
  formatGithubEnv,
  formatJson,
  formatShell,
  githubMaskCommands,
  nameProblem,
  shellQuote,
} from '../../src/output/formats.js';
import { thrown } from '../support/errors.js';

/** Characters that steer each format into every branch, and their neighbours. */
const TRICKY = [
  "'",
  '"',
  '`',
  '\\',
  '$',
  '\n',
  '\r',
  '\r\n',
  '#',
  ' ',
  '\t',
  'n',
  'r',
  '=',
  '!',
  '{',
  '}',
  '%',
  ':',
  'a',
  'é',
  '😀',
  '\u2028',
  '\u2029',
  '\u00a0',
  'EOF',
  'export ',
  '${X}',
];
/** Values as a secret store may hold them: anything but NUL (which no environment can hold). */
const value = fc.oneof(
  fc.string({ unit: fc.constantFrom(...TRICKY), maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s.replaceAll('\0', '')),
);
const shellName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/);

/** The documented dotenv refusals (test/output/dotenv-readers.test.ts shows each is needed by some reader). */
function dotenvCannot(v: string): boolean {
  return (
    v.includes('\0') ||
    /[\uD800-\uDFFF]/u.test(v) ||
    v.includes('\r') ||
    v.includes('\\\\') ||
    v.endsWith('\\') ||
    /\$\{[^}]*\}/.test(v) ||
    (v.includes("'") && /["$`\\]/.test(v))
  );
}

function distinct(names: string[], values: string[]): Array<[string, string]> {
  return [...new Set(names)].map((n, i) => [n, values[i % Math.max(values.length, 1)] ?? '']);
}

describe('dotenv', () => {
  it('round-trips through dotenv.parse, or refuses exactly the documented values', () => {
    const seen = { refused: 0, roundTripped: 0, quoteOrBreak: 0 };
    fc.assert(
      fc.property(value, (v) => {
        if (dotenvCannot(v)) {
          expect(thrown(() => dotenvValue('X', v)).code).toBe('USAGE');
          seen.refused++;
          return;
        }
        expect(parseDotenv(formatDotenv([['X', v]]))).toEqual({ X: v });
        seen.roundTripped++;
        if (/['"\n#$]/.test(v)) seen.quoteOrBreak++;
      }),
      { numRuns: 2000 },
    );
    // Count guard: both branches ran often, and the round trips include the values that need quoting.
    expect(seen.refused, 'refused').toBeGreaterThan(200);
    expect(seen.roundTripped, 'round-tripped').toBeGreaterThan(800);
    expect(seen.quoteOrBreak, 'round-tripped with a quote, break, # or $').toBeGreaterThan(100);
  });

  it('a whole file of variables parses back to the same variables', () => {
    fc.assert(
      fc.property(
        fc.array(shellName, { minLength: 1, maxLength: 8 }),
        fc.array(
          value.filter((v) => !dotenvCannot(v)),
          { minLength: 1, maxLength: 8 },
        ),
        (names, values) => {
          const vars = distinct(names, values);
          expect(parseDotenv(formatDotenv(vars))).toEqual(Object.fromEntries(vars));
        },
      ),
      { numRuns: 500 },
    );
  });

  it.each<[string, string, string]>([
    ['plain', 'p@ss w0rd', "'p@ss w0rd'"],
    ['dollar and one backslash are literal', 'a$b\\c$D', "'a$b\\c$D'"],
    ['multi-line in single quotes', 'line1\nline2', "'line1\nline2'"],
    ['a single quote → double quotes', "it's", '"it\'s"'],
    ["' and a newline → double quotes", "it's\nB=x", '"it\'s\nB=x"'],
    ['empty', '', "''"],
  ])('%s', (_, v, written) => {
    expect(dotenvValue('X', v)).toBe(written);
    expect(parseDotenv(`X=${written}\n`)).toEqual({ X: v });
  });

  it.each([
    ['\' and "', 'a\'b"c'],
    ["' and `", "'`"],
    ["' and $", "it's $HOME"],
    ['a CR', 'a\r\nb'],
    ['${…}', '${X}'],
    ['two backslashes', 'a\\\\b'],
    ['a final backslash', 'C:\\dir\\'],
    ['a lone surrogate', 'a\uDC00'],
    ['NUL', 'a\0b'],
  ])('refuses a value with %s, naming the variable and never the value', (_, v) => {
    const error = thrown(() => formatDotenv([['DB_PASSWORD', v]]));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^DB_PASSWORD: the value cannot be written in dotenv format/);
    expect(error.hint).toMatch(/--format json/);
    expect(`${error.message}${error.hint}`).not.toContain(v);
  });
});

describe('shell', () => {
  const shells = ['/bin/bash', '/bin/sh'].filter((s) => existsSync(s));

  function evaluate(shell: string, vars: ReadonlyArray<readonly [string, string]>): string[] {
    const script = `${formatShell(vars)}printf '%s\\0'${vars.map(([n]) => ` "$${n}"`).join('')}\n`;
    const out = execFileSync(shell, ['-c', script], {
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'], // a socket on stdin makes bash read ~/.bashrc
    });
    return out.toString('utf8').split('\0').slice(0, -1);
  }

  it('has bash to test with', () => {
    expect(shells).toContain('/bin/bash');
  });

  it('round-trips any value without NUL through `eval` in bash and sh', () => {
    fc.assert(
      fc.property(
        fc.array(shellName, { minLength: 1, maxLength: 6 }),
        fc.array(value, { minLength: 1, maxLength: 6 }),
        (names, values) => {
          const vars = distinct(names, values).map(([n, v]) => [`V_${n}`, v] as const);
          for (const shell of shells) expect(evaluate(shell, vars)).toEqual(vars.map(([, v]) => v));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("writes export NAME='…' with ' as '\\''", () => {
    expect(formatShell([['A', "it's $HOME"]])).toBe(`export A='it'\\''s $HOME'\n`);
    expect(shellQuote('')).toBe("''");
  });

  it('refuses NUL and a lone surrogate (written as UTF-8 it would read back as U+FFFD)', () => {
    expect(thrown(() => formatShell([['A', 'x\0y']])).message).toMatch(/^A: .*shell format: .*NUL/);
    expect(thrown(() => formatShell([['A', 'x\uD800y']])).message).toMatch(/^A: .*shell format: .*surrogate/);
    expect(thrown(() => formatGithubEnv([['A', 'x\uDFFF']], () => 'D')).message).toMatch(
      /^A: .*github .*surrogate/,
    );
  });

  it('runs no code for hostile values in bash and sh', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'vaultrun-shell-canary-'));
    try {
      const hostile = [
        '$(touch PWNED)',
        '`touch PWNED`',
        "'; touch PWNED; '",
        '"; touch PWNED; "',
        '\\',
        "\\'",
      ];
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom(...hostile, ...TRICKY), maxLength: 8 }), (v) => {
          for (const shell of shells) {
            const script = `${formatShell([['V', v]])}printf '%s' "$V"`;
            const out = execFileSync(shell, ['-c', script], {
              cwd,
              env: { PATH: '/usr/bin:/bin' },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            expect(out.toString('utf8')).toBe(v);
          }
          expect(readdirSync(cwd)).toEqual([]);
        }),
        { numRuns: 60 },
      );
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('json', () => {
  it('keeps the given order and odd names', () => {
    const text = formatJson([
      ['9', 'a'],
      ['10', 'b'],
      ['__proto__', 'c'],
    ]);
    expect(text).toBe('{\n  "9": "a",\n  "10": "b",\n  "__proto__": "c"\n}\n');
    expect(Object.keys(JSON.parse(text))).toContain('__proto__');
    expect(formatJson([])).toBe('{}\n');
  });

  it('round-trips through JSON.parse, keys in the given order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 6 }),
        fc.array(value, { minLength: 1 }),
        (names, values) => {
          const vars = distinct(names, values);
          const text = formatJson(vars);
          expect(JSON.parse(text)).toEqual(Object.fromEntries(vars));
          expect(text.endsWith('}\n')).toBe(true);
        },
      ),
    );
  });
});

/** GitHub's documented $GITHUB_ENV syntax: NAME=value lines, or NAME<<DELIM, value lines, DELIM. */
function parseGithubEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (!heredoc) {
      const eq = line.indexOf('=');
      out[line.slice(0, eq)] = line.slice(eq + 1);
      continue;
    }
    const [, name, delimiter] = heredoc as unknown as [string, string, string];
    const end = lines.indexOf(delimiter, i + 1);
    if (end < 0) throw new Error(`no end delimiter for ${name}`);
    out[name] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return out;
}

describe('github', () => {
  let n = 0;
  const counter = () => `ghadelimiter_${++n}`;

  it('round-trips through the documented multi-line syntax, with a delimiter not in the value', () => {
    fc.assert(
      fc.property(
        fc.array(shellName, { minLength: 1, maxLength: 6 }),
        fc.array(value, { minLength: 1, maxLength: 6 }),
        (names, values) => {
          const vars = distinct(names, values);
          const text = formatGithubEnv(vars, () => `ghadelimiter_${crypto.randomUUID()}`);
          expect(parseGithubEnv(text)).toEqual(Object.fromEntries(vars));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('draws another delimiter when the value contains the first one', () => {
    const draws = ['EOF', 'EOF2'];
    const text = formatGithubEnv([['A', 'x\nEOF\ny']], () => draws.shift() ?? 'never');
    expect(text).toBe('A<<EOF2\nx\nEOF\ny\nEOF2\n');
    expect(parseGithubEnv(text)).toEqual({ A: 'x\nEOF\ny' });
  });

  it('uses a fresh delimiter for each variable', () => {
    n = 0;
    expect(
      formatGithubEnv(
        [
          ['A', '1'],
          ['B', ''],
        ],
        counter,
      ),
    ).toBe('A<<ghadelimiter_1\n1\nghadelimiter_1\nB<<ghadelimiter_2\n\nghadelimiter_2\n');
  });

  it('masks every non-blank line of every value, and the known secrets inside them', () => {
    const url = 'redis://:s3cretpass@redis:6379/1';
    const text = githubMaskCommands(['-----BEGIN KEY-----\nAAAA\n\n-----END KEY-----', url], ['s3cretpass']);
    expect(text).toBe(
      [
        '::add-mask::-----BEGIN KEY-----',
        '::add-mask::AAAA',
        '::add-mask::-----END KEY-----',
        `::add-mask::${url}`,
        '::add-mask::s3cretpass',
        '',
      ].join('\n'),
    );
  });

  it('never prints a known value that is in none of the values (our credentials are known values)', () => {
    expect(githubMaskCommands(['value-one'], ['hvs.the-login-token'])).not.toContain('hvs.the-login-token');
  });

  it('escapes %, CR and LF in workflow command data as @actions/core does', () => {
    expect(escapeCommandData('50%\r\nx')).toBe('50%25%0D%0Ax');
    expect(githubMaskCommands(['a%0Ab\r'], [])).toBe('::add-mask::a%250Ab\n');
  });
});

describe('names', () => {
  it.each<[Format, string, boolean]>([
    ['shell', 'DB_PASSWORD', true],
    ['shell', '_x1', true],
    ['shell', '1X', false],
    ['shell', 'my.var', false],
    ['shell', 'BASH_FUNC_f%%', false],
    ['dotenv', 'DB_PASSWORD', true],
    ['dotenv', 'my.var-1', false],
    ['dotenv', 'A B', false],
    ['dotenv', 'A=B', false],
    ['github', 'A<<B', false],
    ['github', 'DB_PASSWORD', true],
    ['json', 'anything at all = <<', true],
  ])('%s: %s → %s', (format, name, ok) => {
    expect(nameProblem(format, name) === undefined).toBe(ok);
  });
});
