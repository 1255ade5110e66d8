import { describe, expect, it } from 'vitest';
import { apiPathFor, type MountInfo } from '../../src/vault/kv.js';
import { thrown } from '../support/errors.js';

const KV2: MountInfo = { path: 'secret/', type: 'kv', kvVersion: 2 };
const KV2_NESTED: MountInfo = { path: 'team/kv/', type: 'kv', kvVersion: 2 };
const KV1: MountInfo = { path: 'kv1/', type: 'kv', kvVersion: 1 };
const GENERIC: MountInfo = { path: 'old/', type: 'generic', kvVersion: 1 };
const DATABASE: MountInfo = { path: 'database/', type: 'database' };

describe('apiPathFor', () => {
  it.each<[string, MountInfo | undefined, number | undefined, string, boolean]>([
    // KV v2: data/ goes after the mount.
    ['secret/dify/db', KV2, undefined, 'secret/data/dify/db', true],
    ['secret/app', KV2, undefined, 'secret/data/app', true],
    ['secret/dify/db', KV2, 3, 'secret/data/dify/db?version=3', true],
    // …unless it is there already (bank-vaults compatible).
    ['secret/data/dify/db', KV2, undefined, 'secret/data/dify/db', true],
    ['secret/data/dify/db', KV2, 2, 'secret/data/dify/db?version=2', true],
    // Only right after the mount: deeper data/ segments are part of the secret's name.
    ['secret/x/data/y', KV2, undefined, 'secret/data/x/data/y', true],
    ['secret/database/x', KV2, undefined, 'secret/data/database/x', true],
    ['team/kv/app/db', KV2_NESTED, undefined, 'team/kv/data/app/db', true],
    ['team/kv/data/app/db', KV2_NESTED, 1, 'team/kv/data/app/db?version=1', true],
    // KV v1, other engines and unknown mounts: the path as it is.
    ['kv1/app', KV1, undefined, 'kv1/app', false],
    ['kv1/data/app', KV1, undefined, 'kv1/data/app', false],
    ['old/app', GENERIC, undefined, 'old/app', false],
    ['database/creds/readonly', DATABASE, undefined, 'database/creds/readonly', false],
    ['secret/dify/db', undefined, undefined, 'secret/dify/db', false],
    // A mount that does not contain the path is not used.
    ['other/app', KV2, undefined, 'other/app', false],
    ['secretive/app', KV2, undefined, 'secretive/app', false],
  ])('%s in %o, version %s → %s (kv2 %s)', (path, mount, version, apiPath, kv2) => {
    expect(apiPathFor(path, mount, version)).toEqual({ apiPath, kv2 });
  });

  it.each<[string, MountInfo | undefined, RegExp]>([
    [
      'kv1/app',
      KV1,
      /^path kv1\/app is not in a KV version 2 mount \(mount kv1\/ is KV version 1\), so it has no versions$/,
    ],
    ['old/app', GENERIC, /\(mount old\/ is a generic engine\)/],
    ['database/creds/ro', DATABASE, /\(mount database\/ is a database engine\)/],
    ['secret/app', undefined, /^path secret\/app is not in a KV version 2 mount, so it has no versions$/],
    ['other/app', KV2, /^path other\/app is not in a KV version 2 mount/],
  ])('a version of %s in %o is a USAGE error', (path, mount, message) => {
    const error = thrown(() => apiPathFor(path, mount, 2));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(message);
    expect(error.hint).toContain('#VERSION');
  });
});
