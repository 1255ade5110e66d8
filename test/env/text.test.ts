import { describe, expect, it } from 'vitest';
import { envTextProblem } from '../../src/env/text.js';

describe('envTextProblem (bytes → what an environment variable cannot hold)', () => {
  it.each<[string, number[] | string, string | undefined]>([
    ['ASCII', 'password', undefined],
    ['UTF-8', 'café ✓ 密码', undefined],
    ['a BOM', '\ufeffvalue', undefined],
    ['empty', '', undefined],
    ['Latin-1 é', [0x63, 0x61, 0x66, 0xe9], 'is not UTF-8 text'],
    ['a lone continuation byte', [0x80], 'is not UTF-8 text'],
    ['an overlong encoding', [0xc0, 0xaf], 'is not UTF-8 text'],
    ['a UTF-16 surrogate encoded', [0xed, 0xa0, 0x80], 'is not UTF-8 text'],
    ['a truncated sequence', [0xe2, 0x82], 'is not UTF-8 text'],
    ['NUL', 'a\0b', 'holds a NUL byte'],
    ['NUL alone', '\0', 'holds a NUL byte'],
  ])('%s → %s', (_what, input, problem) => {
    const bytes = typeof input === 'string' ? Buffer.from(input) : Uint8Array.from(input);
    expect(envTextProblem(bytes)).toBe(problem);
  });
});
