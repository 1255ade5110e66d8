import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../src/errors.js';
import { SETTINGS, type Setting } from '../src/settings.js';

// The README is the user's manual: every setting and every exit status must be in it.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const settingsTable = readme.slice(readme.indexOf('## Settings'), readme.indexOf('## Exit statuses'));
const exitTable = readme.slice(readme.indexOf('## Exit statuses'), readme.indexOf('## Errors, retries'));

describe('README', () => {
  it.each((SETTINGS as readonly Setting[]).map((s) => [s.key, s] as const))(
    'the settings table lists %s with its flag and every environment name',
    (_key, setting) => {
      if (setting.flag) expect(settingsTable).toContain(`\`--${setting.flag}`);
      for (const name of setting.env) expect(settingsTable).toContain(`\`${name}\``);
    },
  );

  it.each(Object.entries(EXIT_CODES))('the exit table lists %s (%i)', (_code, status) => {
    expect(exitTable).toMatch(new RegExp(`^\\| ${status} \\|`, 'm'));
  });
});
