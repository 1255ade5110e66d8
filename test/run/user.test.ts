import { describe, expect, it } from 'vitest';
import { VaultrunError } from '../../src/errors.js';
import { MAX_ID, parseIdFile, parseUserSpec, userEnvironment } from '../../src/run/user.js';

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
    [`${MAX_ID}:${MAX_ID}`, { uid: MAX_ID, gid: MAX_ID }],
    ['0:0', { uid: 0, gid: 0, home: '/root' }],
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
    ['1000x', /"1000x" is neither a user name nor a uid/],
    ['1001:', /empty group after ":"/],
    ['1001:1001:5', /more than one ":"/],
    ['dify:staff:', /more than one ":"/],
    [':1001', /empty user/],
    ['-1:0', /uid -1 is out of range/],
    ['+5:0', /uid \+5 is out of range/],
    [`${MAX_ID + 1}:0`, /uid 4294967295 is out of range/],
    ['99999999999999999999:0', /out of range/],
    ['1001:-1', /gid -1 is out of range/],
    [`1001:${MAX_ID + 1}`, /gid 4294967295 is out of range/],
    ['dify:st aff', /"st aff" is neither a group name nor a gid/],
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

describe('userEnvironment', () => {
  const env = { HOME: '/root', USER: 'root', LOGNAME: 'root', PATH: '/bin' };

  it('a user with a passwd entry: HOME, USER and LOGNAME are that entry (by name or by uid)', () => {
    for (const spec of ['dify', '1001', '1001:50', 'dify:staff']) {
      expect(userEnvironment(env, parseUserSpec(spec, passwd, groups))).toEqual({
        HOME: '/home/dify',
        USER: 'dify',
        LOGNAME: 'dify',
        PATH: '/bin',
      });
    }
  });

  it("a uid without a passwd entry: HOME=/ and no USER or LOGNAME (root's would be wrong)", () => {
    expect(userEnvironment(env, parseUserSpec('4242:4242', passwd, groups))).toEqual({
      HOME: '/',
      PATH: '/bin',
    });
  });
});
