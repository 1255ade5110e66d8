import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { parseValue, readId, refsOf } from '../../src/refs/parse.js';
import { planReferences } from '../../src/refs/plan.js';
import { isCiphertext } from '../../src/refs/transit.js';
import { pollableReads } from '../../src/run/rotation/watch.js';
import { decryptPath } from '../../src/vault/transit.js';

const CT = 'vault:v1:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==';

describe('transit ciphertext or reference: told apart by shape (no # in a ciphertext)', () => {
  it.each([
    // value, what it is: 'ciphertext' | a reference's path#key | an error
    [CT, 'ciphertext'],
    ['vault:v2:AbC=', 'ciphertext'], // key version 2
    ['vault:v12:AbC+/x==', 'ciphertext'],
    ['vault:v1#password', 'ref v1#password'], // a KV path literally named v1
    ['vault:v1/app#password', 'ref v1/app#password'],
    ['vault:v1:AbC=#key', 'ref v1:AbC=#key'], // a '#': a reference (':' and '=' are path characters)
    ['vault:v1:', 'error'], // empty ciphertext: an invalid reference, not silently passed on
    ['vault:v1:not base64!', 'error'],
    ['vault:v0:AbC=', 'error'], // key versions start at 1
    ['vault:V1:AbC=', 'error'],
    ['vault:v1:AbC===', 'error'],
    ['prefix vault:v1:AbC=', 'plain'], // only a whole value or ${…}
  ])('%s → %s', (value, expected) => {
    let got: string;
    try {
      const parsed = parseValue('X', value);
      const [ref] = refsOf(parsed);
      got =
        parsed.kind === 'plain' ? 'plain' : ref?.ciphertext ? 'ciphertext' : `ref ${ref?.path}#${ref?.key}`;
    } catch (error) {
      if (!(error instanceof VaultrunError)) throw error;
      got = 'error';
    }
    expect(got).toBe(expected);
  });

  it('inline ${vault:v1:…} with references and text around', () => {
    const parsed = parseValue('URL', 'postgres://${vault:secret/db#user}:${vault:v1:AbC=}@db/x');
    expect(parsed.kind).toBe('template');
    const refs = refsOf(parsed);
    expect(refs.map((r) => r.ciphertext ?? r.path)).toEqual(['secret/db', 'vault:v1:AbC=']);
  });

  it('isCiphertext', () => {
    expect(isCiphertext(CT)).toBe(true);
    expect(isCiphertext(`${CT}#k`)).toBe(false);
  });

  it('a ciphertext never shares a read id with a path, even a path spelled like it', () => {
    const cipher = refsOf(parseValue('A', 'vault:v1:AbC='))[0];
    const path = refsOf(parseValue('B', 'vault:vault:v1:AbC=#k'))[0];
    expect(path?.path).toBe('vault:v1:AbC=');
    expect(cipher && readId(cipher)).not.toBe(path && readId(path));
  });

  it('the planner shares one decryption per unique ciphertext, across variables', () => {
    const plan = planReferences(
      { A: 'vault:v1:AbC=', B: 'x${vault:v1:AbC=}y', C: 'vault:v1:Zm9v', D: 'vault:secret/a#k' },
      { passthrough: new Set(), fileEnv: true, isOwnSetting: () => false },
    );
    expect(plan.reads.map((r) => [r.ciphertext ?? r.path, r.variables])).toEqual([
      ['vault:v1:AbC=', ['A', 'B']],
      ['vault:v1:Zm9v', ['C']],
      ['secret/a', ['D']],
    ]);
  });
});

describe('decryptPath', () => {
  it.each([
    [{ mount: 'transit', key: 'app' }, 'transit/decrypt/app'],
    [{ mount: '/team/transit/', key: 'app-key_1' }, 'team/transit/decrypt/app-key_1'],
    [{ mount: 'transit' }, /no transit key is set/],
    [{ mount: 'transit', key: '' }, /no transit key is set/],
    [{ mount: 'transit', key: 'a/b' }, /invalid key name/],
    [{ mount: 'transit', key: '..' }, /invalid key name/],
    [{ mount: 'sys', key: 'k' }, /invalid mount path/],
    [{ mount: 'transit/../sys', key: 'k' }, /invalid mount path/],
    [{ mount: '', key: 'k' }, /invalid mount path/],
  ])('%j → %s', (settings, expected) => {
    if (typeof expected === 'string') expect(decryptPath(settings)).toBe(expected);
    else expect(() => decryptPath(settings)).toThrow(expected);
  });
});

describe('watch mode', () => {
  it('a ciphertext is never polled (it cannot change; polling would GET a path)', () => {
    const plan = planReferences(
      { A: 'vault:v1:AbC=', B: 'vault:secret/a#k' },
      { passthrough: new Set(), fileEnv: true, isOwnSetting: () => false },
    );
    const secret = { data: { plaintext: 'x' }, leaseId: '', leaseDuration: 0, renewable: false };
    const secrets = new Map(plan.reads.map((r) => [r.id, secret]));
    expect(pollableReads(plan.reads, secrets).map((r) => r.path)).toEqual(['secret/a']);
  });
});
