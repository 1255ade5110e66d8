import { describe, expect, it } from 'vitest';
import { closest, editDistance, missingKeyHint } from '../src/suggest.js';

describe('editDistance', () => {
  it.each<[string, string, number]>([
    ['', '', 0],
    ['password', 'password', 0],
    ['pasword', 'password', 1],
    ['psasword', 'password', 1], // a swap of neighbours
    ['passwd', 'password', 2],
    ['', 'abc', 3],
  ])('%j ↔ %j = %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('closest', () => {
  it.each<[string, string[], string | undefined]>([
    ['pasword', ['user', 'password'], 'password'],
    ['PASSWORD', ['user', 'password'], 'password'],
    ['passwd', ['user', 'password', 'port'], 'password'],
    ['usr', ['user', 'password'], 'user'],
    ['token', ['user', 'password'], undefined],
    ['x', ['y', 'z'], undefined], // one letter apart, but in a 1-letter name that is everything
    ['password', ['password'], undefined],
    ['', ['a'], undefined],
  ])('%j in %j → %j', (typed, candidates, expected) => {
    expect(closest(typed, candidates)).toBe(expected);
  });
});

describe('missingKeyHint', () => {
  it('suggests the closest key, then lists the names', () => {
    expect(missingKeyHint('pasword', ['password', 'user'])).toBe(
      'did you mean "password"? keys there: password, user',
    );
  });
  it('no suggestion when nothing is close', () => {
    expect(missingKeyHint('token', ['password', 'user'])).toBe('keys there: password, user');
  });
  it('an empty secret', () => {
    expect(missingKeyHint('x', [])).toBe('the secret has no keys');
  });
});
