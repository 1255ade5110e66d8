// examples/dify/docker-compose.example.yaml with Debian's docker-compose (1.29) in a real engine, the way its
// header says to use it: `config` accepts it, then openbao, the one-shot openbao-setup (the example's own
// setup-approle.sh and policy.hcl), the secrets of secrets.json, and api + worker built from Dockerfile.example.
// Every secret must arrive; a rotated KV secret must restart the worker's command; `down` removes it all.
//
// What the test changes, in an override file as a user would (the example itself is used as it is, from a copy
// of examples/dify in a temp dir, so that approle/ and volumes/ are made there): the images no registry can give
// (openbao/openbao and langgenius/dify-api → the local stand-ins), the build context (the repository, by
// absolute path), labels for the clean-up, and a 1 s poll interval so that the rotation shows within seconds.
import { chownSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMPOSE, containers, docker, hashOf, LABEL, REPO_ROOT, run, uniqueName } from '../support/docker.js';
import { singleExecutable } from '../support/exe.js';
import { workDir } from '../support/processes.js';

const EXAMPLE = join(REPO_ROOT, 'examples/dify');
const SECRETS_JSON = JSON.parse(readFileSync(join(EXAMPLE, 'secrets.json'), 'utf8')) as Record<
  string,
  unknown
>;

/** A value per path and key of secrets.json (secret/dify/db#password → "secret/dify/db#password-<n>"). */
function sampleSecrets(version: number): Map<string, string> {
  const values = new Map<string, string>();
  for (const [path, keys] of Object.entries(SECRETS_JSON)) {
    if (!Array.isArray(keys)) continue;
    for (const key of keys) values.set(`${path}#${key}`, `${path.split('/').pop()}-${key}-v${version} $&'"`);
  }
  return values;
}

/** What each environment value of a service becomes once vaultrun has resolved it against `secrets`. */
function expectedEnv(env: Record<string, string>, secrets: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const lookup = (ref: string) => {
    const v = secrets.get(ref);
    if (v === undefined) throw new Error(`no sample value for ${ref}`);
    return v;
  };
  for (const [name, raw] of Object.entries(env)) {
    // Compose has turned `$${` into `${` (its escape for a literal `$`).
    const value = raw.replaceAll('$${', '${');
    if (value.startsWith('vault:')) out.set(name, lookup(value.slice('vault:'.length)));
    else
      out.set(
        name,
        value.replaceAll(/\$\{vault:([^}]+)\}/g, (_, ref: string) => lookup(ref)),
      );
  }
  return out;
}

/** The reports of the stand-in app in a service's logs: one per start, each NAME → sha256 of its value. */
function starts(logText: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const line of logText.split('\n')) {
    const at = line.indexOf('standin ');
    if (at < 0) continue;
    const w = line.slice(at).split(' ');
    if (w[1] === 'start') out.push(new Map());
    if (w[1] === 'env' && w[2] && w[3]) out.at(-1)?.set(w[2], w[3]);
  }
  return out;
}

describe('the Dify compose example with docker-compose in a real engine', () => {
  let dir: string;
  let project: string;
  let files: string[];
  const secrets = sampleSecrets(1);

  const compose = (args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}) =>
    run([COMPOSE, '--no-ansi', '-p', project, ...files, ...args], {
      cwd: dir,
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
      allowFail: opts.allowFail,
    });
  const serviceLogs = async (service: string) => {
    const res = await compose(['logs', '--no-color', service]);
    return res.stdout + res.stderr;
  };
  const waitFor = async (service: string, done: (text: string) => boolean, what: string) => {
    const deadline = Date.now() + 3 * 60_000;
    for (;;) {
      const text = await serviceLogs(service);
      if (done(text)) return text;
      if (Date.now() > deadline) throw new Error(`${service}: ${what} not seen in:\n${text.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };

  beforeAll(async () => {
    singleExecutable();
    const { runId, images } = containers();
    dir = join(workDir('vaultrun-compose-'), 'dify');
    cpSync(EXAMPLE, dir, { recursive: true });
    project = uniqueName('compose').replaceAll(/[^a-z0-9]/g, '');
    const labels = { [LABEL]: runId };
    const override = {
      services: {
        openbao: { image: images.openbao, labels },
        'openbao-setup': { image: images.openbao, labels },
        api: {
          build: { context: REPO_ROOT, args: { DIFY_API_IMAGE: images.difyApi }, labels },
          image: `${project}-dify-api:test`,
          labels,
        },
        worker: {
          build: { context: REPO_ROOT, args: { DIFY_API_IMAGE: images.difyApi }, labels },
          image: `${project}-dify-api:test`,
          labels,
          environment: { VAULTRUN_POLL_INTERVAL: '1s', STANDIN_TERM_STATUS: '0' },
        },
      },
      networks: { default: { labels } },
    };
    writeFileSync(join(dir, 'docker-compose.test.yaml'), JSON.stringify(override, null, 2));
    files = ['-f', 'docker-compose.example.yaml', '-f', 'docker-compose.test.yaml'];
  });

  afterAll(async () => {
    if (project) await compose(['down', '-v', '--remove-orphans'], { allowFail: true });
  });

  it('docker-compose config accepts the example as it is, and passes `$${vault:…}` on as `${vault:…}`', async () => {
    // The secrets' files must exist for `config`; openbao-setup writes them in the next test.
    const alone = await run([COMPOSE, '-f', 'docker-compose.example.yaml', 'config', '--services'], {
      cwd: dir,
    });
    expect(alone.stdout.split('\n').filter(Boolean).sort()).toEqual([
      'api',
      'openbao',
      'openbao-setup',
      'plugin_daemon',
      'worker',
      'worker_beat',
    ]);
    const full = parse((await compose(['config'])).stdout) as {
      services: Record<string, { environment: Record<string, string> }>;
    };
    // `config` prints a file compose could read again: `$` escaped once more.
    expect(full.services.api?.environment.CELERY_BROKER_URL).toBe(
      'redis://:$${vault:secret/dify/redis#password}@redis:6379/1',
    );
  });

  it('openbao + openbao-setup + api + worker: every secret arrives; a rotated KV secret restarts the worker', async () => {
    await compose(['up', '-d', 'openbao']);
    // The example's own AppRole set-up (setup-approle.sh, policy.hcl) writes approle/role_id and secret_id.
    await compose(['run', '--rm', 'openbao-setup']);
    // The example says: chown them to the api image's user (compose mounts them as they are).
    for (const f of ['role_id', 'secret_id']) chownSync(join(dir, 'approle', f), 1001, 1001);
    const byPath = new Map<string, string[]>();
    for (const [ref, value] of secrets) {
      const [path, key] = ref.split('#') as [string, string];
      byPath.set(path, [...(byPath.get(path) ?? []), `${key}=${value}`]);
    }
    for (const [path, kvs] of byPath) {
      await compose(['exec', '-T', 'openbao', 'bao', 'kv', 'put', path, ...kvs]);
    }

    await compose(['up', '-d', 'api', 'worker']);
    const config = parse(readFileSync(join(dir, 'docker-compose.example.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, { environment: Record<string, string> }>;
    };
    for (const service of ['api', 'worker']) {
      const text = await waitFor(service, (t) => t.includes('standin ready'), 'the app started');
      const [first] = starts(text);
      const env = config.services[service]?.environment ?? {};
      const expected = expectedEnv(env, secrets);
      let refs = 0;
      for (const [name, value] of expected) {
        // vaultrun's own settings (the Vault address, the AppRole files) are scrubbed from the app's environment.
        if (/^VAULT(RUN)?_/.test(name)) {
          expect(first?.has(name), `${service} ${name}`).toBe(false);
          continue;
        }
        expect(first?.get(name), `${service} ${name}`).toBe(hashOf(value));
        if (env[name]?.includes('vault:')) refs += 1;
      }
      expect(refs).toBe(12);
    }
    // The containers run the image built from Dockerfile.example (tini → vaultrun → /entrypoint.sh).
    const apiId = (await compose(['ps', '-q', 'api'])).stdout.trim();
    expect(
      JSON.parse((await docker(['inspect', '--format', '{{json .Config.Entrypoint}}', apiId])).stdout),
    ).toEqual(['/usr/bin/tini', '--', '/usr/local/bin/vaultrun', '--', '/bin/bash', '/entrypoint.sh']);

    // Rotation: a new DB password. The worker (VAULTRUN_WATCH) restarts its command with it; the api (exec mode,
    // nothing resident) keeps what it started with until its container restarts.
    const newPassword = 'rotated-db-password-9f31';
    const username = secrets.get('secret/dify/db#username') as string;
    await compose([
      'exec',
      '-T',
      'openbao',
      'bao',
      'kv',
      'put',
      'secret/dify/db',
      `username=${username}`,
      `password=${newPassword}`,
    ]);
    const text = await waitFor(
      'worker',
      (t) => starts(t).length >= 2 && t.split('standin ready').length > 2,
      'a restart',
    );
    expect(text).toContain('standin signal TERM');
    expect(text).toMatch(/secrets changed: restarting the command .*variables=DB_PASSWORD/);
    const [before, after] = starts(text);
    expect(before?.get('DB_PASSWORD')).toBe(hashOf(secrets.get('secret/dify/db#password') as string));
    expect(after?.get('DB_PASSWORD')).toBe(hashOf(newPassword));
    expect(after?.get('SECRET_KEY')).toBe(hashOf(secrets.get('secret/dify/app#secret_key') as string));
    expect(starts(await serviceLogs('api'))).toHaveLength(1);
    // The worker's container itself did not restart: vaultrun restarted the command inside it.
    const workerId = (await compose(['ps', '-q', 'worker'])).stdout.trim();
    expect((await docker(['inspect', '--format', '{{.RestartCount}}', workerId])).stdout.trim()).toBe('0');

    await compose(['down', '-v']);
    const left = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
    expect(left.stdout.trim()).toBe('');
    const nets = await docker([
      'network',
      'ls',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${project}`,
    ]);
    expect(nets.stdout.trim()).toBe('');
  });
});
