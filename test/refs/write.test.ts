import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { parseValue, readId, refsOf } from '../../src/refs/parse.js';
import { planReferences } from '../../src/refs/plan.js';
import { canonicalJson } from '../../src/refs/write.js';
import { STATIC_MARGIN_MS, scheduledChangeMs } from '../../src/run/rotation/scheduled.js';
import { pollableReads } from '../../src/run/rotation/watch.js';
import { issuedData } from '../../src/vault/issue.js';

function parse(value: string): string {
  try {
    const [ref] = refsOf(parseValue('TLS', value));
    return `${ref?.path}|${ref?.key}|${canonicalJson(ref?.write?.body)}`;
  } catch (error) {
    if (!(error instanceof VaultrunError)) throw error;
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^TLS: invalid write reference: /);
    return `error: ${error.message.replace(/^TLS: invalid write reference: /, '')}`;
  }
}

describe('write references (>>vault:PATH#KEY#{JSON})', () => {
  it.each([
    [
      '>>vault:pki/issue/web#certificate#{"common_name":"api.internal"}',
      'pki/issue/web|certificate|{"common_name":"api.internal"}',
    ],
    ['>>vault:pki/issue/web#private_key', 'pki/issue/web|private_key|{}'],
    [
      '>>vault:/team/pki/issue/web/#ca_chain#{"ttl":"1h","common_name":"a#b"}',
      'team/pki/issue/web|ca_chain|{"common_name":"a#b","ttl":"1h"}',
    ],
    // Arrays in a body keep their order; objects inside them are canonical too.
    [
      '>>vault:pki/issue/web#certificate#{"ttl":"1h","alt":["b.internal","a.internal"],"x":[{"z":1,"a":[2]}]}',
      'pki/issue/web|certificate|{"alt":["b.internal","a.internal"],"ttl":"1h","x":[{"a":[2],"z":1}]}',
    ],
    ['>>vault:pki/issue/web', 'error: missing #KEY after the path'],
    ['>>vault:#certificate', 'error: empty path'],
    ['>>vault:///#certificate', 'error: empty path'],
    ['>>vault:pki/issue/web##{}', 'error: empty key'],
    [
      '>>vault:pki/issue/web#certificate#{common_name:x}',
      'error: the body after the second # is not valid JSON',
    ],
    ['>>vault:pki/issue/web#certificate#["x"]', 'error: the body must be a JSON object'],
    ['>>vault:pki/issue/web#certificate#null', 'error: the body must be a JSON object'],
    ['>>vault:secret/data/app#x#{}', 'error: a write may only go to MOUNT/issue/ROLE (a PKI role)'],
    ['>>vault:pki/sign/web#certificate', 'error: a write may only go to MOUNT/issue/ROLE (a PKI role)'],
    [
      '>>vault:pki/issue/web/extra#certificate',
      'error: a write may only go to MOUNT/issue/ROLE (a PKI role)',
    ],
    ['>>vault:issue/web#certificate', 'error: a write may only go to MOUNT/issue/ROLE (a PKI role)'],
  ])('%s → %s', (value, expected) => {
    expect(parse(value)).toBe(expected);
  });

  it.each([
    '>>vault:sys/issue/x#k',
    '>>vault:auth/token/issue/x#k',
    '>>vault:identity/issue/x#k',
    '>>vault:pki/../sys/issue/x#k',
    '>>vault:pki/%2e%2e/issue/x#k',
  ])('%s: the read path rules apply (refused)', (value) => {
    expect(parse(value)).toMatch(/^error: /);
  });

  it('the same path and body (in any key order) is one write, shared by every variable; another body is another write', () => {
    const plan = planReferences(
      {
        TLS_CERT_FILE: '>>vault:pki/issue/web#certificate#{"common_name":"a","ttl":"1h"}',
        TLS_KEY_FILE: '>>vault:pki/issue/web#private_key#{"ttl":"1h","common_name":"a"}',
        TLS_CHAIN_FILE: '>>vault:pki/issue/web#ca_chain#{"common_name":"a","ttl":"1h"}',
        OTHER_CERT: '>>vault:pki/issue/web#certificate#{"common_name":"b"}',
        READ: 'vault:pki/issue/web#certificate',
      },
      { passthrough: new Set(), fileEnv: true, isOwnSetting: () => false },
    );
    expect(plan.reads.map((r) => [r.id, r.variables])).toEqual([
      ['#write#pki/issue/web#{"common_name":"b"}', ['OTHER_CERT']],
      ['pki/issue/web', ['READ']],
      [
        '#write#pki/issue/web#{"common_name":"a","ttl":"1h"}',
        ['TLS_CERT_FILE', 'TLS_CHAIN_FILE', 'TLS_KEY_FILE'],
      ],
    ]);
    expect(plan.vars.filter((v) => v.target === 'file').map((v) => v.name)).toEqual([
      'TLS_CERT_FILE',
      'TLS_CHAIN_FILE',
      'TLS_KEY_FILE',
    ]);
  });

  it('a write is never polled; a certificate without a lease is re-issued at 2/3 of its life, one with a lease is left to leases.ts', () => {
    const [ref] = refsOf(parseValue('A', '>>vault:pki/issue/web#certificate'));
    if (!ref) throw new Error('no ref');
    const id = readId(ref);
    const now = 1_000_000;
    const cert = {
      data: { certificate: 'C', expiration: (now + 30_000) / 1000 },
      leaseId: '',
      leaseDuration: 0,
      renewable: false,
    };
    const read = { id, path: ref.path, write: { body: {} }, variables: ['A'] };
    expect(pollableReads([read], new Map([[id, cert]]))).toEqual([]);
    expect(scheduledChangeMs(cert, true, now)).toBe(20_000);
    expect(
      scheduledChangeMs({ ...cert, data: { certificate: 'C', expiration: (now - 5_000) / 1000 } }, true, now),
    ).toBe(0);
    expect(scheduledChangeMs({ ...cert, leaseId: 'pki/issue/web/123' }, true, now)).toBeUndefined();
    expect(scheduledChangeMs(cert, false, now)).toBeUndefined(); // not a write: not a certificate we issued
    expect(STATIC_MARGIN_MS).toBeGreaterThan(0);
  });

  it('issuedData: ca_chain as PEM text, the rest as it is', () => {
    expect(issuedData({ certificate: 'C', ca_chain: ['-----A-----\n', '-----B-----'] })).toEqual({
      certificate: 'C',
      ca_chain: '-----A-----\n-----B-----\n',
    });
    expect(issuedData({ ca_chain: 'x' })).toEqual({ ca_chain: 'x' });
  });
});
