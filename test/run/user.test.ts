import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { parseIdFile, parseUserSpec } from '../../src/run/user.js';

const passwd = parseIdFile(
  [
    '# comment',
    'root:x:0:0:root:/root:/bin/bash',
    'dify:x:1001:1001::/home/dify:/bin/sh',
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    '',
  ].join('\n'),
);
const groups = parseIdFile(['root:x:0:', 'dify:x:1001:', 'staff:x:50:dify'].join('\n'));

describe('parseUserSpec', () => {
  it.each([
    ['dify', { uid: 1001, gid: 1001, home: '/home/dify' }],
    ['dify:staff', { uid: 1001, gid: 50, home: '/home/dify' }],
    ['dify:0', { uid: 1001, gid: 0, home: '/home/dify' }],
    ['1001', { uid: 1001, gid: 1001, home: '/home/dify' }],
    ['4242:4242', { uid: 4242, gid: 4242 }],
    ['nobody', { uid: 65534, gid: 65534, home: '/nonexistent' }],
  ])('%s', (spec, expected) => {
    const user = parseUserSpec(spec, passwd, groups);
    expect({ uid: user.uid, gid: user.gid, ...(user.home ? { home: user.home } : {}) }).toEqual(expected);
  });

  it.each([
    ['', /empty user/],
    ['ghost', /no user "ghost" in \/etc\/passwd/],
    ['dify:ghosts', /no group "ghosts" in \/etc\/group/],
    ['4242', /give the group too/],
  ])('%j is a usage error naming the problem', (spec, message) => {
    let error: unknown;
    try {
      parseUserSpec(spec, passwd, groups);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VaultrunError);
    expect((error as VaultrunError).code).toBe('USAGE');
    expect((error as VaultrunError).message).toMatch(message);
    expect((error as VaultrunError).message).toContain('--user');
  });
});
