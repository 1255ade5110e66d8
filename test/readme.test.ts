import { describe, expect, it } from 'vitest';
import { SETTINGS, type Setting } from '../src/settings.js';
import { codeSpans, manualPages, readPage, relativeLinks, tableAfter } from './support/markdown.js';

// README.md is the front door: what it shows must be true (its short settings table, the quick start CI runs,
// the Dify example) and it must lead to every page of the manual. The manual itself is checked by docs.test.ts.
const readme = readPage('README.md');
const settings = SETTINGS as readonly Setting[];

describe('README', () => {
  const rows = tableAfter(readme, '## Most used settings');

  it('has a short settings table', () => {
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(settings.length / 2);
  });

  it.each(rows.map((row) => [row[0] || row[1] || '', row] as const))(
    'the short settings table names a real setting, its names and its default: %s',
    (_label, [flagCell = '', envCell = '', defaultCell = '']) => {
      const flags = codeSpans(flagCell);
      const envs = codeSpans(envCell);
      const setting = flags[0]
        ? settings.find((s) => `--${s.flag}` === flags[0])
        : settings.find((s) => s.env.includes(envs[0] ?? ''));
      expect(setting, `no setting ${flagCell} ${envCell}`).toBeDefined();
      expect(flags.every((f) => f === `--${setting?.flag}` || f === `--no-${setting?.flag}`)).toBe(true);
      expect(envs.length).toBeGreaterThan(0);
      for (const env of envs) expect(setting?.env).toContain(env);
      const defaults = codeSpans(defaultCell);
      if (defaults.length === 1 && defaultCell === `\`${defaults[0]}\``) {
        expect(defaults[0]).toBe(setting?.default);
      } else if (defaultCell === '') {
        expect(setting?.default).toBeUndefined();
      }
    },
  );

  it('runs in CI what its quick start gives as the test command (npm ci && npm test)', () => {
    const quickStart = readme.slice(
      readme.indexOf('## Quick start'),
      readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1),
    );
    const line = quickStart.split('\n').find((l) => /\bnpm test\b/.test(l) && !l.trimStart().startsWith('#'));
    expect(line).toBeDefined();
    const commands = (line ?? '')
      .replace(/#.*$/, '')
      .split('&&')
      .map((c) => c.trim());
    expect(commands).toEqual(['npm ci', 'npm test']);
    const ci = readPage('.ci/run')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    for (const command of commands) {
      expect(ci, `.ci/run does not run ${command}`).toMatch(
        new RegExp(`(^|[\\s;&|(])${command.replace(' ', '\\s+')}(\\s|$)`, 'm'),
      );
    }
  });

  it('shows Dify references that the tested compose example has', () => {
    const dify = readme.slice(readme.indexOf('## Dify in ten lines'), readme.indexOf('## References'));
    const references = [...dify.matchAll(/^\s+([A-Z_]+): (.*vault:.*?)(\s+#.*)?$/gm)].map(
      (m) => `${m[1]}: ${m[2]}`,
    );
    expect(references.length).toBeGreaterThan(1);
    const example = readPage('examples/dify/docker-compose.example.yaml');
    for (const reference of references) expect(example).toContain(reference);
  });

  it('links to every page of docs/', () => {
    const linked = new Set(relativeLinks(readme).map(({ target }) => target.split('#')[0]));
    for (const page of manualPages().slice(1)) expect(linked, page).toContain(page);
  });
});
