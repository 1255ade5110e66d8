// The generated parts of docs/: the settings table (from src/settings.ts) and the exit status table (from
// src/errors.ts), so that the manual cannot drift from the code. Each table sits between two markers in its page,
// `<!-- generated:NAME:start -->` and `<!-- generated:NAME:end -->`; the prose around them is written by hand.
// `npm run docs` (scripts/docs.mjs) rewrites the tables; test/docs.test.ts fails when a committed page differs.
// scripts/docs.mjs bundles this file with esbuild before running it, so it imports src/ as src/ does.
import { EXIT_CODES, EXIT_TABLE } from '../src/errors.js';
import { SETTINGS, type Setting } from '../src/settings.js';

/** Text for a Markdown table cell: no `|`, no HTML, no emphasis by accident. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('*', '\\*');
}

const code = (text: string): string => `\`${text}\``;

function flagCell(s: Setting): string {
  if (!s.flag) return '';
  if (s.kind === 'bool') return `${code(`--${s.flag}`)} / ${code(`--no-${s.flag}`)}`;
  return s.repeatable ? `${code(`--${s.flag}`)} (repeatable)` : code(`--${s.flag}`);
}

function envCell(s: Setting): string {
  const names = s.env.map(code).join(', ');
  return s.kind === 'list' ? `${names} (comma-separated)` : names;
}

const KIND_TEXT: Record<Setting['kind'], string> = {
  string: 'text',
  bool: 'boolean',
  duration: 'duration',
  int: 'whole number',
  list: 'list',
  path: 'path',
  url: 'URL',
  fraction: 'fraction (0–1)',
  mount: 'mount path',
};

function valueCell(s: Setting): string {
  const value = s.choices ? s.choices.map(code).join(', ') : KIND_TEXT[s.kind];
  return s.secret ? `${value}; credential` : value;
}

/** Every setting of src/settings.ts, in its order. */
export function settingsTable(settings: readonly Setting[] = SETTINGS): string {
  const rows = settings.map((s) =>
    [
      flagCell(s),
      envCell(s),
      valueCell(s),
      s.default === undefined ? '' : code(s.default),
      cell(s.help),
    ].join(' | '),
  );
  return [
    '| flag | environment | value | default | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}

/** Every exit status of src/errors.ts's EXIT_TABLE, with the error codes that map to it. */
export function exitTable(): string {
  const names = (status: number): string =>
    Object.entries(EXIT_CODES)
      .filter(([, s]) => s === status)
      .map(([name]) => code(name))
      .join(', ');
  return [
    '| status | error code | meaning |',
    '| --- | --- | --- |',
    ...EXIT_TABLE.map(([status, text]) => `| ${status} | ${names(status)} | ${cell(text)} |`),
  ].join('\n');
}

/** The generated pages: path (from the repository root) → marker name → the text between the markers. */
export const GENERATED: Readonly<Record<string, Readonly<Record<string, () => string>>>> = {
  'docs/settings.md': { settings: () => settingsTable() },
  'docs/exit-statuses.md': { 'exit-statuses': exitTable },
};

export function markers(name: string): { start: string; end: string } {
  return { start: `<!-- generated:${name}:start -->`, end: `<!-- generated:${name}:end -->` };
}

/** The page with each generated block replaced by what the code says now. */
export function regenerate(path: string, text: string): string {
  const blocks = GENERATED[path];
  if (!blocks) throw new Error(`${path} has no generated blocks`);
  let out = text;
  for (const [name, render] of Object.entries(blocks)) {
    const { start, end } = markers(name);
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`${path}: missing ${start} … ${end}`);
    out = `${out.slice(0, from + start.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}
