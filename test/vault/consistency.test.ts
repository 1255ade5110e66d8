import { describe, expect, it } from 'vitest';
import {
  isBehindIndex,
  isKvUpgrading,
  isNewer,
  isOlder,
  type KvStamp,
  laterIndex,
  leaderOrigin,
  parseIndex,
  pollVerdict,
  VersionFloor,
} from '../../src/vault/consistency.js';

const T1 = '2026-01-01T00:00:01.1Z';
const T2 = '2026-01-01T00:00:02.123456789Z';
const s = (version: number, createdTime?: string): KvStamp => ({
  version,
  ...(createdTime ? { createdTime } : {}),
});
const index = (cluster: string, value: string | number) =>
  Buffer.from(JSON.stringify({ cluster, value })).toString('base64');

describe('isOlder / isNewer (seen, candidate)', () => {
  it.each<[KvStamp | undefined, KvStamp, boolean, boolean]>([
    [undefined, s(1), false, true],
    [s(2), s(1), true, false],
    [s(2, T1), s(1, T1), true, false],
    [s(2, T2), s(1, T1), true, false],
    // A lower version written later: deleted with its metadata and written again.
    [s(5, T1), s(1, T2), false, true],
    [s(2), s(2), false, false],
    [s(2, T1), s(2, T1), false, false],
    [s(2, T2), s(2, T1), true, false],
    [s(2, T1), s(2, T2), false, true],
    [s(2), s(3), false, true],
    [s(2, T2), s(3, T1), false, true],
    [s(2, 'not a date'), s(1, T2), true, false],
  ])('%j, %j → older %s, newer %s', (seen, candidate, older, newer) => {
    expect(isOlder(seen, candidate)).toBe(older);
    expect(isNewer(seen, candidate)).toBe(newer);
  });
});

describe('pollVerdict (in use, newest seen, polled)', () => {
  it.each<[KvStamp | undefined, KvStamp | undefined, KvStamp, string]>([
    [s(1), undefined, s(1), 'same'],
    [s(1), undefined, s(2), 'newer'],
    [s(2), undefined, s(1), 'older'],
    [s(2), s(3), s(3), 'newer'], // seen by an earlier poll, not applied yet
    [s(2), s(3), s(2), 'older'], // a lagging node after the newer one was seen
    [s(3), s(3), s(3), 'same'],
    [undefined, undefined, s(1), 'newer'],
  ])('%j, %j, %j → %s', (inUse, newest, polled, verdict) => {
    expect(pollVerdict(inUse, newest, polled)).toBe(verdict);
  });
});

describe('VersionFloor', () => {
  it('keeps the newest stamp per path and never goes back', () => {
    const floor = new VersionFloor();
    expect(floor.isOlder('a', s(1))).toBe(false);
    floor.note('a', s(3, T1));
    floor.note('a', s(2, T1));
    expect(floor.get('a')).toEqual(s(3, T1));
    expect(floor.isOlder('a', s(2, T1))).toBe(true);
    expect(floor.isOlder('b', s(1))).toBe(false);
    floor.note('a', s(1, T2)); // written again after a metadata delete
    expect(floor.get('a')).toEqual(s(1, T2));
  });
});

describe('X-Vault-Index', () => {
  it.each<[string | undefined, { cluster: string; value: number } | undefined]>([
    [index('c1', '37'), { cluster: 'c1', value: 37 }],
    [undefined, undefined],
    ['', undefined],
    ['not base64!', undefined],
    [Buffer.from('not json').toString('base64'), undefined],
    [index('c1', 37), undefined], // a number, not a string: not OpenBao's form
    [index('', '1'), undefined],
    [index('c1', '-1'), undefined],
    [index('c1', '1e3'), undefined],
    [index('c1', '9999999999999999999'), undefined],
    ['A'.repeat(2000), undefined],
  ])('parseIndex(%j) → %j', (header, expected) => {
    const got = parseIndex(header);
    expect(got ? { cluster: got.cluster, value: got.value } : undefined).toEqual(expected);
  });

  it('laterIndex: the higher value in a cluster, the newest for another cluster', () => {
    const a = parseIndex(index('c1', '5'));
    const b = parseIndex(index('c1', '9'));
    const other = parseIndex(index('c2', '1'));
    expect(laterIndex(undefined, a)).toBe(a);
    expect(laterIndex(a, undefined)).toBe(a);
    expect(laterIndex(a, b)).toBe(b);
    expect(laterIndex(b, a)).toBe(b);
    expect(laterIndex(b, other)).toBe(other);
  });

  it.each<[number, unknown, boolean, boolean]>([
    [429, { errors: [] }, true, true],
    [412, { errors: ['whatever'] }, true, true],
    [429, { errors: ['rate limit quota exceeded'] }, true, false], // a quota, not the index
    [429, { errors: [] }, false, false], // no index was sent
    [429, undefined, true, false],
    [503, { errors: [] }, true, false],
  ])('isBehindIndex(%s, %j, sent %s) → %s', (status, body, sent, expected) => {
    expect(isBehindIndex(status, body, sent)).toBe(expected);
  });
});

describe('isKvUpgrading', () => {
  const standby =
    'Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished.';
  const active =
    'Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.';
  it.each<[number, unknown, boolean]>([
    [400, { errors: [standby] }, true],
    [400, { errors: [active] }, true],
    [500, { errors: [standby] }, false],
    [400, { errors: [standby, 'more'] }, false],
    [400, { errors: ['invalid role or secret ID'] }, false],
    [400, { errors: [`x ${standby}`] }, false],
    [400, { errors: ['Upgrading from non-versioned to versioned data'] }, false],
    [400, undefined, false],
  ])('%s %j → %s', (status, body, expected) => {
    expect(isKvUpgrading(status, body)).toBe(expected);
  });
});

describe('leaderOrigin', () => {
  const addr = 'https://vault.example.com:8200';
  it.each<[unknown, string[], string | undefined]>([
    ['https://vault.example.com:8200', [], 'https://vault.example.com:8200'],
    ['https://vault.example.com:8200/', [], 'https://vault.example.com:8200'],
    ['https://vault-1.internal:8200', [], undefined],
    [
      'https://vault-1.internal:8200',
      ['https://vault-1.internal:8200', 'https://vault-2.internal:8200'],
      'https://vault-1.internal:8200',
    ],
    ['http://vault-1.internal:8200', ['https://vault-1.internal:8200'], undefined], // scheme differs
    ['https://vault-1.internal:8201', ['https://vault-1.internal:8200'], undefined], // port differs
    ['https://user:pw@vault.example.com:8200', [], undefined],
    ['file:///etc/passwd', ['file:///etc/passwd'], undefined],
    ['', [], undefined],
    [undefined, [], undefined],
    [42, [], undefined],
    ['not a url', ['not a url'], undefined],
  ])('%j with %j → %s', (leader, allowed, expected) => {
    const got = leaderOrigin(leader, addr, allowed);
    expect('origin' in got ? got.origin : undefined).toBe(expected);
  });
});
