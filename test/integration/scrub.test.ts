// The command's environment: our settings and credentials are removed, VAULTRUN_PASSTHROUGH passes settings
// (never credentials) and leaves look-alike references untouched.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import {
  auditRequests,
  expectScrubbed,
  probeEnv,
  runProbe,
  Sensitive,
  tempDir,
  unique,
} from '../support/resolution.js';

describe('scrubbing the command environment', () => {
  let bao: OpenBao;
  let token: string;
  let roleId: string;
  const sensitive = new Sensitive();
  const password = sensitive.add('db password', unique('dbpass'));
  const REF = { DB_PASSWORD: 'vault:secret/dify/db#password', APP_MODE: 'production' };

  async function newSecretId(): Promise<string> {
    const res = await bao.api<{ data: { secret_id: string } }>('POST', 'auth/approle/role/app/secret-id', {});
    return sensitive.add('secret_id', res.data.secret_id);
  }

  /** The app got its secret and its own variables, and nothing of ours. */
  function expectAppEnv(env: Record<string, string>): void {
    expect(env.DB_PASSWORD).toBe(password);
    expect(env.APP_MODE).toBe('production');
    expectScrubbed(env);
  }

  beforeAll(async () => {
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('dify/db', { password });
    await bao.writePolicy('read-dify', 'path "secret/data/dify/*" { capabilities = ["read"] }');
    token = sensitive.add('token', await bao.createToken({ policies: ['read-dify'] }));
    const app = await bao.setupAppRole({ role: 'app', policies: ['read-dify'] });
    roleId = sensitive.add('role_id', app.roleId);
    sensitive.add('secret_id', app.secretId);
  });

  afterAll(async () => {
    await bao?.stop();
  });

  it('removes VAULT_ADDR, VAULT_TOKEN, every VAULT_* and VAULTRUN_* setting', async () => {
    const given = {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULT_CLIENT_TIMEOUT: '10',
      VAULT_SKIP_VERIFY: 'false',
      VAULT_FORMAT: 'json',
      VAULTRUN_WAIT: '5s',
      VAULTRUN_CONCURRENCY: '2',
      VAULTRUN_LOG_FORMAT: 'text',
      ...REF,
    };
    const e = probeEnv(await runProbe(sensitive, given));
    expectAppEnv(e);
    for (const name of Object.keys(given).filter((n) => n.startsWith('VAULT')))
      expect(e).not.toHaveProperty(name);
    expect(e).not.toHaveProperty('VAULTRUN_LOG_LEVEL'); // set by runProbe
  });

  it('removes VAULT_TOKEN_FILE', async () => {
    const file = join(tempDir(), 'token');
    writeFileSync(file, token);
    const e = probeEnv(await runProbe(sensitive, { VAULT_ADDR: bao.addr, VAULT_TOKEN_FILE: file, ...REF }));
    expectAppEnv(e);
    expect(e).not.toHaveProperty('VAULT_TOKEN_FILE');
  });

  it('removes VAULT_ROLE_ID and VAULT_SECRET_ID', async () => {
    const e = probeEnv(
      await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: await newSecretId(),
        ...REF,
      }),
    );
    expectAppEnv(e);
    expect(e).not.toHaveProperty('VAULT_ROLE_ID');
    expect(e).not.toHaveProperty('VAULT_SECRET_ID');
  });

  it('removes VAULT_ROLE_ID_FILE and VAULT_SECRET_ID_FILE, and never turns them into variables', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'role_id'), roleId);
    writeFileSync(join(dir, 'secret_id'), await newSecretId());
    const e = probeEnv(
      await runProbe(sensitive, {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID_FILE: join(dir, 'role_id'),
        VAULT_SECRET_ID_FILE: join(dir, 'secret_id'),
        VAULTRUN_FILE_ENV_DIRS: '/', // every *_FILE would be read into its variable, except ours
        ...REF,
      }),
    );
    expectAppEnv(e);
    for (const name of ['VAULT_ROLE_ID_FILE', 'VAULT_SECRET_ID_FILE', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID']) {
      expect(e).not.toHaveProperty(name);
    }
  });

  it('removes the BAO_* spellings (BAO_ADDR, BAO_TOKEN, BAO_ROLE_ID, BAO_SECRET_ID_FILE)', async () => {
    const withToken = probeEnv(await runProbe(sensitive, { BAO_ADDR: bao.addr, BAO_TOKEN: token, ...REF }));
    expectAppEnv(withToken);
    expect(withToken).not.toHaveProperty('BAO_TOKEN');
    expect(withToken).not.toHaveProperty('BAO_ADDR');
    const file = join(tempDir(), 'secret_id');
    writeFileSync(file, await newSecretId());
    const withRole = probeEnv(
      await runProbe(sensitive, {
        BAO_ADDR: bao.addr,
        BAO_ROLE_ID: roleId,
        BAO_SECRET_ID_FILE: file,
        ...REF,
      }),
    );
    expectAppEnv(withRole);
  });

  it('VAULTRUN_PASSTHROUGH=VAULT_ADDR,VAULT_TOKEN passes VAULT_ADDR but never VAULT_TOKEN', async () => {
    const run = await runProbe(sensitive, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULTRUN_PASSTHROUGH: 'VAULT_ADDR,VAULT_TOKEN',
      ...REF,
    });
    const e = probeEnv(run);
    expect(e.VAULT_ADDR).toBe(bao.addr);
    expect(e).not.toHaveProperty('VAULT_TOKEN');
    expect(e).not.toHaveProperty('VAULTRUN_PASSTHROUGH');
    expect(e.DB_PASSWORD).toBe(password);
    expect(run.stderr).toMatch(/warn: credential listed in VAULTRUN_PASSTHROUGH .*variable=VAULT_TOKEN/);
  });

  it('--passthrough never passes credentials either (BAO_TOKEN, VAULT_SECRET_ID)', async () => {
    const run = await runProbe(
      sensitive,
      {
        BAO_ADDR: bao.addr,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: await newSecretId(),
        ...REF,
      },
      { args: ['--passthrough', 'BAO_ADDR,VAULT_ROLE_ID', '--passthrough', 'VAULT_SECRET_ID'] },
    );
    const e = probeEnv(run);
    expect(e.BAO_ADDR).toBe(bao.addr);
    expect(e).not.toHaveProperty('VAULT_ROLE_ID');
    expect(e).not.toHaveProperty('VAULT_SECRET_ID');
  });

  it('a passthrough variable that looks like a reference is passed untouched (and not read)', async () => {
    const before = await auditRequests(bao, /^secret\/data\/literal/);
    const literal = {
      LITERAL: 'vault:secret/literal/a#key',
      INLINE: 'x=${vault:secret/literal/b#key}',
      BROKEN: 'vault:no-key-here',
      LITERAL_FILE: 'vault:secret/literal/c#key',
    };
    const run = await runProbe(sensitive, {
      VAULT_ADDR: bao.addr,
      VAULT_TOKEN: token,
      VAULTRUN_PASSTHROUGH: Object.keys(literal).join(','),
      ...literal,
      ...REF,
    });
    const e = probeEnv(run);
    expect(e).toMatchObject(literal);
    expect(e.DB_PASSWORD).toBe(password);
    expect(run.stderr).toMatch(/resolved 1 reference from 1 path/);
    expect(await auditRequests(bao, /^secret\/data\/literal/)).toHaveLength(before.length);
  });
});
