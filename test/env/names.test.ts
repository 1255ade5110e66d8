import { describe, expect, it } from 'vitest';
import { NamePatterns, withNames } from '../../src/env/names.js';

describe('NamePatterns (exact names and PREFIX* patterns)', () => {
  const names = new NamePatterns(['DB_URL', 'CI_*', 'GITLAB_*', 'TRIGGER_PAYLOAD']);
  it.each<[string, boolean]>([
    ['DB_URL', true],
    ['DB_URL2', false],
    ['DB', false],
    ['CI_COMMIT_TITLE', true],
    ['CI_', true],
    ['CI', false],
    ['XCI_A', false],
    ['GITLAB_USER_NAME', true],
    ['TRIGGER_PAYLOAD', true],
    ['TRIGGER_PAYLOADS', false],
  ])('%s → %s', (name, expected) => {
    expect(names.has(name)).toBe(expected);
  });

  it('a * only counts at the end; the entries iterate as given', () => {
    const odd = new NamePatterns(['A*B', '*']);
    expect(odd.has('A*B')).toBe(true);
    expect(odd.has('AXB')).toBe(true); // through '*', which matches every name
    expect(new NamePatterns(['A*B']).has('AXB')).toBe(false);
    expect([...names]).toEqual(['DB_URL', 'CI_*', 'GITLAB_*', 'TRIGGER_PAYLOAD']);
  });

  it('withNames adds exact names', () => {
    const more = withNames(names, new Set(['X']));
    expect(more.has('X')).toBe(true);
    expect(more.has('CI_JOB_ID')).toBe(true);
    expect(more.has('Y')).toBe(false);
  });
});
