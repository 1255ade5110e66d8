// `resolve --format dotenv` output is read by the npm dotenv package, python-dotenv, docker compose's env_file
// parser and `set -a; . file` in bash and dash. Every one of them, for real, must read back exactly the values
// written and no other variable, and no shell code may run — or the formatter refuses the value, naming the
// variable, for exactly the documented reasons; and each reason is needed: for an example of each, every simple
// form ('…', "…", bare) is misread by at least one reader.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { dotenvProblem, dotenvValue, formatDotenv, type Vars } from '../../src/output/formats.js';
import { thrown } from '../support/errors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PYTHON_DOTENV = join(ROOT, '.tools/python');
const COMPOSE_ENVFILE = join(ROOT, '.tools/compose-envfile');
/** Set in every reader's environment: a value that got interpolated shows it. */
const READER_ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', X: 'INTERPOLATED', HOME: '/nonexistent' };

type Parsed = Record<string, string | null> | { error: string };
type Reader = { name: string; read: (paths: readonly string[]) => Parsed[] };

function shellReader(shell: string, cwd: () => string): Reader {
  return {
    name: shell,
    read(paths) {
      // One shell for the batch, each file sourced in its own subshell; a NUL-terminated "=END" closes each.
      const script = `for f; do (set -a; . "$f"; exec env -0); printf '=END\\0'; done`;
      const out = execFileSync(shell, ['-c', script, 'sh', '/dev/null', ...paths], {
        env: READER_ENV,
        cwd: cwd(),
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 30,
      }).toString('utf8');
      const blocks: Array<Record<string, string>> = [];
      let current: Record<string, string> = {};
      for (const entry of out.split('\0').slice(0, -1)) {
        if (entry === '=END') {
          blocks.push(current);
          current = {};
          continue;
        }
        const eq = entry.indexOf('=');
        current[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      // The first block, from /dev/null, is what the shell itself exports: not read from a file.
      const [base, ...rest] = blocks;
      return rest.map((vars) => {
        const own: Record<string, string> = {};
        for (const [k, v] of Object.entries(vars)) if (!(k in (base ?? {})) || k === 'X') own[k] = v;
        if (own.X === READER_ENV.X) delete own.X;
        return own;
      });
    },
  };
}

const PYTHON_SCRIPT = [
  'import json, sys',
  'from dotenv import dotenv_values',
  'for p in sys.argv[1:]:',
  '    try:',
  '        print(json.dumps(dotenv_values(p, encoding="utf-8")))',
  '    except Exception as e:',
  '        print(json.dumps({"error": type(e).__name__}))',
].join('\n');

let work: string;
let canary: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vaultrun-dotenv-readers-'));
  canary = join(work, 'cwd');
  mkdirSync(canary);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const READERS: Reader[] = [
  {
    name: 'npm dotenv',
    read: (paths) => paths.map((p) => ({ ...parseDotenv(readFileSync(p, 'utf8')) })),
  },
  {
    name: 'python-dotenv',
    read: (paths) =>
      execFileSync('python3', ['-c', PYTHON_SCRIPT, ...paths], {
        env: { ...READER_ENV, PYTHONPATH: PYTHON_DOTENV, PYTHONIOENCODING: 'utf-8' },
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 30,
      })
        .toString('utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Parsed),
  },
  {
    name: 'docker compose env_file',
    read: (paths) =>
      execFileSync(COMPOSE_ENVFILE, paths, {
        env: READER_ENV,
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 30,
      })
        .toString('utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Parsed),
  },
  shellReader('/bin/bash', () => canary),
  shellReader('/bin/dash', () => canary),
];

let fileCount = 0;
function writeFiles(texts: readonly string[]): string[] {
  return texts.map((text) => {
    const path = join(work, `f${++fileCount}.env`);
    writeFileSync(path, text);
    return path;
  });
}

/**
 * Every reader's reading of every text. The canary directory (every shell's cwd) must stay empty, unless the
 * texts are the refused values' forms, written to show that some reader misreads them (running code included).
 */
function readAll(texts: readonly string[], codeMayRun = false): Map<string, Parsed[]> {
  const paths = writeFiles(texts);
  const out = new Map<string, Parsed[]>();
  for (const reader of READERS) {
    const parsed = reader.read(paths);
    expect(parsed, reader.name).toHaveLength(paths.length);
    out.set(reader.name, parsed);
  }
  if (!codeMayRun) expect(readdirSync(canary), 'a shell ran code from a dotenv file').toEqual([]);
  for (const f of readdirSync(canary)) rmSync(join(canary, f), { recursive: true });
  for (const p of paths) rmSync(p);
  return out;
}

/** The documented refusals, restated: NUL, lone surrogate, CR, `\\` or final `\`, `${…}`, ' with " $ ` or `\`. */
function documentedRefusal(v: string): boolean {
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

/** Hostile pieces: quoting, expansion, command substitution, escapes, line structure, comments, unicode. */
const HOSTILE = [
  "'",
  '"',
  '`',
  '\\',
  '\\n',
  '$',
  '$X',
  '${X}',
  '${X:-d}',
  '$(touch PWNED)',
  '`touch PWNED`',
  "'; touch PWNED; '",
  '"; touch PWNED; "',
  '\n',
  '\r',
  '\r\n',
  '\nEOF\n',
  '\nB=evil\n',
  '\nexport C=evil\n',
  '#',
  ' #x',
  ' ',
  '\t',
  '=',
  'a',
  'é',
  '😀',
  '\u2028',
  '\u00a0',
  '\ufeff',
  '{',
  '}',
  ':',
  '!',
  ';',
  '&',
  '|',
  '*',
  '~',
];
const value = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...HOSTILE), maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);
const name = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,6}$/).map((n) => `V_${n}`);

function matches(parsed: Parsed | undefined, expected: Record<string, string>): boolean {
  return JSON.stringify(parsed) === JSON.stringify(expected) || isEqualUnordered(parsed, expected);
}
function isEqualUnordered(parsed: Parsed | undefined, expected: Record<string, string>): boolean {
  if (!parsed || 'error' in parsed) return false;
  const keys = Object.keys(parsed);
  return keys.length === Object.keys(expected).length && keys.every((k) => parsed[k] === expected[k]);
}

describe('dotenv output read by its real readers', () => {
  it('has every reader installed (scripts/tools.sh installs python-dotenv and the compose parser)', () => {
    expect(existsSync(join(PYTHON_DOTENV, 'dotenv/parser.py'))).toBe(true);
    expect(existsSync(COMPOSE_ENVFILE)).toBe(true);
    expect(existsSync('/bin/dash')).toBe(true);
  });

  it('every value is read back exactly by every reader, or refused for exactly the documented reasons', () => {
    const files = fc.sample(
      fc.uniqueArray(fc.tuple(name, value), { minLength: 1, maxLength: 4, selector: ([n]) => n }),
      // The readers are slow, so 250 files only: a fixed seed (VAULTRUN_FC_SEED to try another) keeps the count
      // guards below deterministic — with a random seed, 250 samples sometimes held only 10 values with a quote.
      { numRuns: 250, seed: Number(process.env.VAULTRUN_FC_SEED ?? 20261201) },
    );
    const written: Array<{ text: string; vars: Record<string, string> }> = [];
    let refused = 0;
    const seen = {
      newline: 0,
      quote: 0,
      doubleQuoted: 0,
      dollar: 0,
      backtick: 0,
      hash: 0,
      spaces: 0,
      empty: 0,
    };
    const refusals: Array<[string, string, unknown]> = [];
    for (const vars of files) {
      const ok: Array<[string, string]> = [];
      for (const [n, v] of vars) {
        let form: string;
        try {
          form = dotenvValue(n, v);
        } catch (error) {
          refusals.push([n, v, error]);
          continue;
        }
        ok.push([n, v]);
        if (v.includes('\n')) seen.newline++;
        if (v.includes("'")) seen.quote++;
        if (form.startsWith('"')) seen.doubleQuoted++;
        if (v.includes('$')) seen.dollar++;
        if (v.includes('`')) seen.backtick++;
        if (v.includes('#')) seen.hash++;
        if (v !== v.trim()) seen.spaces++;
        if (v === '') seen.empty++;
      }
      if (ok.length > 0) written.push({ text: formatDotenv(ok), vars: Object.fromEntries(ok) });
    }
    // What was written, every reader reads exactly (and nothing else, and no code ran: see readAll)...
    const read = readAll(written.map((w) => w.text));
    for (const [reader, results] of read) {
      written.forEach((w, i) => {
        expect(results[i], `${reader} reading ${JSON.stringify(w.text)}`).toEqual(w.vars);
      });
    }
    // ...and what was refused is exactly what the documentation says, with an error naming the variable.
    for (const w of written)
      for (const v of Object.values(w.vars)) expect(documentedRefusal(v), JSON.stringify(v)).toBe(false);
    for (const [n, v, error] of refusals) {
      expect(documentedRefusal(v), JSON.stringify(v)).toBe(true);
      expect(error).toBeInstanceOf(VaultrunError);
      const e = error as VaultrunError;
      expect(e.code).toBe('USAGE');
      expect(e.message.startsWith(`${n}: the value cannot be written in dotenv format: `)).toBe(true);
      expect(e.hint).toMatch(/--format json/);
      refused++;
    }
    expect(refused).toBeGreaterThan(50);
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(10);
  });

  // Long, but under Linux's 128 KiB limit for one environment string (bash and dash hand it to `env`).
  const LONG = Array.from({ length: 3000 }, (_, i) => `line ${i} $X \`x\` "q" # = é`).join('\n');
  it.each<[string, string, string]>([
    ['plain', 'p@ss w0rd', "'p@ss w0rd'"],
    ['a single quote → double quotes', "it's", `"it's"`],
    [
      "' with a newline and a # → double quotes",
      "it's\n# not a comment\nB=x",
      `"it's\n# not a comment\nB=x"`,
    ],
    ['double quote', 'say "hi"', `'say "hi"'`],
    ['dollar, $X and $(cmd) stay literal', 'a$b $X $(touch PWNED)', "'a$b $X $(touch PWNED)'"],
    ['backticks stay literal', '`touch PWNED`', "'`touch PWNED`'"],
    ['one backslash', 'C:\\dir\\file', "'C:\\dir\\file'"],
    ['a literal \\n', 'a\\nb', "'a\\nb'"],
    [
      'newlines and lines that look like assignments',
      'x\nB=evil\nexport C=1\nEOF\n',
      "'x\nB=evil\nexport C=1\nEOF\n'",
    ],
    ['# and =', 'a#b = c #d', "'a#b = c #d'"],
    ['spaces at both ends', '  x  ', "'  x  '"],
    ['unicode', 'é😀\u2028\u00a0', "'é😀\u2028\u00a0'"],
    ['empty', '', "''"],
    ['very long (about 90 KiB, 3000 lines)', LONG, `'${LONG}'`],
  ])('%s: written %#', (_, v, form) => {
    expect(dotenvValue('V', v)).toBe(form);
    const vars: Vars = [
      ['V', v],
      ['AFTER', 'after'],
    ];
    const read = readAll([formatDotenv(vars)]);
    for (const [reader, [result]] of read) expect(result, reader).toEqual({ V: v, AFTER: 'after' });
  });

  it.each<[string, string, RegExp]>([
    ['NUL', 'a\0b', /NUL/],
    ['a lone surrogate', 'a\uD800b', /Unicode/],
    ['CR', 'a\rb', /carriage return/],
    ['CR LF', 'a\r\nb', /carriage return/],
    ['two backslashes', '\\\\server\\share', /two backslashes/],
    ['a final backslash', 'C:\\dir\\', /ends with a backslash/],
    ['${X}', 'pre${X}post', /\$\{…\}/],
    ['${X:-default}', '${X:-d}', /\$\{…\}/],
    ["' and $(…)", "it's $(touch PWNED)", /' together with/],
    ['\' and "', `it's "q"`, /' together with/],
    ["' and `", "it's `x`", /' together with/],
    ["' and a backslash", "it's a\\b", /' together with/],
    ["' and $X", "it's $X", /' together with/],
  ])('refuses a value with %s, naming the variable and never the value', (_, v, why) => {
    const error = thrown(() => formatDotenv([['DB_PASSWORD', v]]));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^DB_PASSWORD: the value cannot be written in dotenv format: /);
    expect(error.message).toMatch(why);
    expect(error.hint).toMatch(/--format json.*DB_PASSWORD_FILE/);
    expect(`${error.message}${error.hint}`).not.toContain(v);
    expect(dotenvProblem(v)).toBeDefined();
    if (v.includes('\0')) return; // no file can carry it into an environment
    // The refusal is needed: in each simple form some reader reads another value, other variables, or fails.
    const forms = [`X='${v}'\nY=after\n`, `X="${v}"\nY=after\n`, `X=${v}\nY=after\n`];
    const read = readAll(forms, true);
    forms.forEach((text, i) => {
      const wrong = [...read].filter(([, results]) => !matches(results[i], { X: v, Y: 'after' }));
      expect(wrong.length, `every reader reads ${JSON.stringify(text)} exactly`).toBeGreaterThan(0);
    });
  });
});
