// `npm run demo`: a local OpenBao dev server (from .tools, see scripts/tools.sh), sample Dify secrets, an AppRole
// whose role_id/secret_id are delivered as files, and vaultrun running a small program that shows what it got.
// Runs on the project's Node (npm scripts put it first on PATH), which loads the TypeScript harness directly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOpenBao } from '../test/support/openbao.ts';
import { makeSampleSecrets, writeSampleSecrets } from './sample-secrets.ts';

const root = new URL('..', import.meta.url).pathname;
const policy = readFileSync(join(root, 'examples/dify/policy.hcl'), 'utf8');

const say = (text) => process.stderr.write(`\n== ${text}\n`);
const bao = await startOpenBao();
const work = mkdtempSync(join(tmpdir(), 'vaultrun-demo-'));
try {
  say(`OpenBao dev server at ${bao.addr}; writing sample Dify secrets`);
  const secrets = makeSampleSecrets();
  await writeSampleSecrets(bao, secrets);
  for (const [path, data] of Object.entries(secrets)) {
    process.stderr.write(`   ${path}: ${Object.keys(data).join(', ')}\n`);
  }
  await bao.writePolicy('dify', policy);
  const { roleId, secretId } = await bao.setupAppRole({ role: 'dify-api', policies: ['dify'] });
  writeFileSync(join(work, 'role_id'), roleId, { mode: 0o400 });
  writeFileSync(join(work, 'secret_id'), secretId, { mode: 0o400 });

  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    VAULT_ADDR: bao.addr,
    VAULT_ROLE_ID_FILE: join(work, 'role_id'),
    VAULT_SECRET_ID_FILE: join(work, 'secret_id'),
    VAULTRUN_RUNTIME_DIR: join(work, 'run'),
    SECRET_KEY: 'vault:secret/dify/app#secret_key',
    DB_USERNAME: 'vault:secret/dify/db#username',
    DB_PASSWORD: 'vault:secret/dify/db#password',
    REDIS_PASSWORD: 'vault:secret/dify/redis#password',
    CELERY_BROKER_URL: 'redis://:${vault:secret/dify/redis#password}@redis:6379/1',
    CODE_EXECUTION_API_KEY: 'vault:secret/dify/sandbox#api_key',
    PLUGIN_DAEMON_KEY: 'vault:secret/dify/plugin#daemon_key',
    INNER_API_KEY_FOR_PLUGIN: 'vault:secret/dify/plugin#inner_api_key',
    S3_SECRET_KEY_FILE: 'vault:secret/dify/storage#s3_secret_key',
    WEAVIATE_API_KEY: 'vault:secret/dify/vectordb#weaviate_api_key',
    SMTP_PASSWORD: 'vault:secret/dify/mail#smtp_password',
  };
  say('running: vaultrun -- node scripts/demo-app.mjs   (AppRole credentials from files)');
  for (const [k, v] of Object.entries(env)) if (v.includes('vault:')) process.stderr.write(`   ${k}=${v}\n`);
  const run = spawnSync(
    process.execPath,
    [join(root, 'dist/vaultrun.cjs'), '--', process.execPath, join(root, 'scripts/demo-app.mjs')],
    {
      env,
      stdio: 'inherit',
    },
  );
  say(`vaultrun exited with ${run.status}`);
  process.exitCode = run.status ?? 1;
} finally {
  await bao.stop();
  rmSync(work, { recursive: true, force: true });
}
