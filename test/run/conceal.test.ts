import { describe, expect, it } from 'vitest';
import { entriesToBlank, environBounds } from '../../src/run/conceal.js';
import { isCredential } from '../../src/settings.js';

describe('environBounds', () => {
  it('reads fields 50 and 51 of /proc/self/stat, also when the command name has spaces and parentheses', () => {
    const tail = Array.from({ length: 52 - 2 }, (_, i) => String(i + 3));
    tail[50 - 3] = '140737488347000';
    tail[51 - 3] = '140737488348000';
    expect(environBounds(`123 (a b) (c)) ${tail.join(' ')}`)).toEqual({
      start: 140737488347000,
      end: 140737488348000,
    });
    expect(environBounds('123 (x) R 1 2')).toBeUndefined();
  });
});

describe('entriesToBlank', () => {
  it('finds every credential entry, whole (NAME=value), and nothing else', () => {
    const entries = [
      'A=1',
      'VAULT_TOKEN=s.x',
      'XVAULT_TOKEN=no',
      'VAULT_TOKEN',
      'BAO_SECRET_ID=a=b',
      'B=VAULT_TOKEN=x',
    ];
    const block = Buffer.from(`${entries.join('\0')}\0`, 'latin1');
    const ranges = entriesToBlank(block, isCredential);
    expect(ranges.map(([a, b]) => block.toString('latin1', a, b))).toEqual([
      'VAULT_TOKEN=s.x',
      'BAO_SECRET_ID=a=b',
    ]);
  });

  it('skips entries already blanked', () => {
    const block = Buffer.from('\0\0\0\0A=1\0VAULT_ROLE_ID=r\0', 'latin1');
    expect(entriesToBlank(block, isCredential).map(([a, b]) => block.toString('latin1', a, b))).toEqual([
      'VAULT_ROLE_ID=r',
    ]);
  });
});
