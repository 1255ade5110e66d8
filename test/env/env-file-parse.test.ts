// Env files are read as the dotenv package reads them (dotenv.parse of the installed version), with exactly one
// documented difference: a `#` glued to the value (directly after a character that is not whitespace or a
// quote) stays part of an unquoted value. Above all, no line inside a quoted (multi-line) value ever defines
// or overrides a variable.
import { parse as dotenvParse } from 'dotenv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/env/sources.js';

/** A `#` that our parser treats as an ordinary character: preceded by a character other than whitespace or a quote. */
const GLUED = /(?<=[^\s'"`])#(?=[^\n\r\u2028\u2029]*(?:[\n\r]|$))/g;
const hasGlued = (text: string): boolean => new RegExp(GLUED.source).test(text);

/**
 * The documented difference, stated independently of the implementation: dotenv.parse of the text in which
 * every glued `#` is an ordinary character (here: a letter that occurs nowhere else), that letter read back as `#`.
 */
function dotenvWithGluedHashes(text: string): Record<string, string> {
  const letter = 'ж';
  expect(text).not.toContain(letter);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(dotenvParse(text.replace(GLUED, letter))))
    out[k] = v.replaceAll(letter, '#');
  return out;
}

// ---- unstructured text: every corner of dotenv's grammar ------------------------------------------------------
const CHAOS = [
  'A',
  'B',
  'C_1',
  'd.e',
  '=',
  ' = ',
  ': ',
  ':',
  ' ',
  '\t',
  '\n',
  '\n',
  '\r\n',
  '\r',
  "'",
  "'",
  '"',
  '"',
  '`',
  '#',
  '#',
  ' #',
  'x',
  'y=1',
  '\\',
  '\\n',
  '\\r',
  "\\'",
  '\\"',
  'export ',
  'export A=',
  '\nB=',
  '\nA=',
  '$',
  '${A}',
  '\u2028',
  'é',
  "\nA='\nB=1#x\n'",
  '\nB="\nA=x#y\n"',
  '\nexport C_1=`\nexport A=2\n`',
];
const chaos = fc.string({ unit: fc.constantFrom(...CHAOS), maxLength: 40 });

// ---- structured files: a model says what every variable must be -----------------------------------------------
const KEYS = ['A', 'B', 'C_1', 'd.e', 'f-g'] as const;
type Key = (typeof KEYS)[number];
const key = fc.constantFrom(...KEYS);
const eol = fc.constantFrom('\n', '\n', '\r\n');
/** A line that looks like an assignment, to be put inside quoted values (and its glued-# cousin). */
const fakeAssignment = fc
  .tuple(fc.constantFrom('', 'export '), key, fc.constantFrom('=evil', '=a#c', "='x'", '="y"', ': z'))
  .map(([e, k, rest]) => `${e}${k}${rest}`);
/** Content of a quoted value (before removing the quote character itself): anything, many lines. */
const quotedContent = fc
  .array(
    fc.oneof(
      fc.constantFrom("'", '"', '`', '#', ' #x', '=', ' ', '\\', 'a', 'b c', '$X', '${A}', 'é', '😀', '\t'),
      eol,
      fakeAssignment.map((l) => `\n${l}`),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));
/** An unquoted value: one line, trimmed, not starting with a quote or `#`, glued `#` allowed. */
const bareValue = fc
  .array(
    fc.constantFrom('a', 'b', '1', '#', '##', '=', ':', '$X', '/', '.', 'é', ' ', '-', '@', '"', "'", '`'),
    {
      minLength: 1,
      maxLength: 10,
    },
  )
  .map((parts) => parts.join('').trim())
  .filter((v) => v !== '' && !/^['"`#]/.test(v) && !/[\s'"`]#/.test(v));

type Entry =
  | { kind: 'blank'; text: string }
  | { kind: 'comment'; text: string }
  | { kind: 'set'; key: Key; text: string; value: string; quoted: boolean };

const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.constantFrom('', '   ', '\t').map((text): Entry => ({ kind: 'blank', text })),
  fc
    .tuple(fc.constantFrom('#', '# ', ' # '), fakeAssignment)
    .map(([h, l]): Entry => ({ kind: 'comment', text: h + l })),
  fc
    .tuple(
      fc.constantFrom('', 'export '),
      key,
      fc.constantFrom('=', ' = ', '= ', ': '),
      fc.constantFrom<"'" | '"' | '`'>("'", '"', '`'),
      quotedContent,
      fc.constantFrom('', ' ', ' # trailing', '  #x=1'),
    )
    .map(([exp, k, sep, q, raw, tail]): Entry => {
      // The quote character never occurs inside; no backslash before the closing quote; in double quotes a
      // backslash only as the escapes \n and \r (dotenv keeps any other backslash, but `\"` would end nothing).
      let content = raw.replaceAll(q, '');
      if (q === '"') content = content.replaceAll('\\', '');
      content = content.replace(/\\+$/, '');
      const [body, value] =
        q === '"'
          ? [`${content}\\n\\r`, `${content.replace(/\r\n?/g, '\n')}\n\r`]
          : [content, content.replace(/\r\n?/g, '\n')];
      return { kind: 'set', key: k, text: `${exp}${k}${sep}${q}${body}${q}${tail}`, value, quoted: true };
    }),
  fc
    .tuple(
      fc.constantFrom('', 'export '),
      key,
      fc.constantFrom('=', ' = ', '= ', ': '),
      bareValue,
      fc.constantFrom('', ' ', ' # comment', '\t#c#d'),
    )
    .map(
      ([exp, k, sep, v, tail]): Entry => ({
        kind: 'set',
        key: k,
        text: `${exp}${k}${sep}${v}${tail}`,
        value: v,
        quoted: false,
      }),
    ),
);

function render(entries: readonly Entry[], eols: readonly string[]): string {
  return entries.map((e, i) => e.text + (eols[i % eols.length] ?? '\n')).join('');
}

function model(entries: readonly Entry[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) if (e.kind === 'set') out[e.key] = e.value;
  return out;
}

describe('env files are parsed as dotenv.parse parses them', () => {
  it('structured files: every variable is its last definition; lines inside quoted values define nothing', () => {
    const seen = {
      multiLineQuoted: 0,
      assignmentInsideQuotes: 0,
      overrideAttempt: 0,
      gluedHash: 0,
      crlf: 0,
      exported: 0,
    };
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 8 }),
        fc.array(eol, { minLength: 1, maxLength: 3 }),
        (entries, eols) => {
          const text = render(entries, eols);
          const defined = new Set(entries.flatMap((e) => (e.kind === 'set' ? [e.key] : [])));
          for (const e of entries) {
            if (e.kind !== 'set') continue;
            if (e.quoted && /\n/.test(e.text)) seen.multiLineQuoted++;
            if (e.quoted && /\n(export )?[\w.-]+(=|: )/.test(e.text)) {
              seen.assignmentInsideQuotes++;
              if (
                [...e.text.matchAll(/\n(?:export )?([\w.-]+)(?:=|: )/g)].some((m) => defined.has(m[1] as Key))
              )
                seen.overrideAttempt++;
            }
            if (!e.quoted && e.value.includes('#')) seen.gluedHash++;
            if (e.text.startsWith('export ')) seen.exported++;
          }
          if (text.includes('\r\n')) seen.crlf++;
          expect(parseEnvFile(text)).toEqual(model(entries));
        },
      ),
      { numRuns: 1500 },
    );
    // The interesting cases actually occurred, often.
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(100);
  });

  it('any text without a glued #: exactly dotenv.parse', () => {
    let compared = 0;
    let multiLine = 0;
    fc.assert(
      fc.property(chaos, (text) => {
        if (hasGlued(text)) return;
        compared++;
        const expected = dotenvParse(text);
        if (Object.values(expected).some((v) => v.includes('\n'))) multiLine++;
        expect(parseEnvFile(text)).toEqual(expected);
      }),
      { numRuns: 4000 },
    );
    expect(compared).toBeGreaterThan(1000);
    expect(multiLine).toBeGreaterThan(60);
  });

  it('any text: dotenv.parse with each glued # read as an ordinary character (the one difference)', () => {
    let glued = 0;
    fc.assert(
      fc.property(chaos, (text) => {
        const ours = parseEnvFile(text);
        const theirs = dotenvParse(text);
        expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) glued++;
        expect(ours).toEqual(dotenvWithGluedHashes(text));
      }),
      { numRuns: 4000 },
    );
    expect(glued).toBeGreaterThan(50);
  });

  it.each<[string, string, Record<string, string>]>([
    ['a reference keeps its #key', 'DB=vault:secret/db#password\n', { DB: 'vault:secret/db#password' }],
    ['# after whitespace is a comment', 'A=x #c\nB=x\t#c\n', { A: 'x', B: 'x' }],
    ['# right after = is part of the value', 'A=#x\n', { A: '#x' }],
    ['# after = and a space is a comment', 'A= #x\n', { A: '' }],
    ['# after a closing quote is a comment', 'A=\'x\'#c\nB="y"#c\n', { A: 'x', B: 'y' }],
    ['# inside quotes is literal', 'A=\'a #b\'\nB="c#d"\n', { A: 'a #b', B: 'c#d' }],
    [
      'a multi-line quoted value cannot override a variable defined before it',
      'B=a#b\nA="\nB=a#c\n"\n',
      { B: 'a#b', A: '\nB=a#c\n' },
    ],
    [
      'a multi-line quoted value cannot define a variable',
      "A='line\nexport EVIL=1\nC=x#y'\n",
      { A: 'line\nexport EVIL=1\nC=x#y' },
    ],
    [
      'CR LF inside a quoted value becomes LF, as in dotenv',
      "A='x\r\ny'\r\nB=1#2\r\n",
      { A: 'x\ny', B: '1#2' },
    ],
    ['export and KEY: value', 'export A=x#1\nB: y#2\n', { A: 'x#1', B: 'y#2' }],
  ])('%s', (_, text, expected) => {
    expect(parseEnvFile(text)).toEqual(expected);
  });
});
