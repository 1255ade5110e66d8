// The examples cannot rot: every vault: reference in examples/dify (compose file, Vault Agent variant) and
// examples/kubernetes resolves, with the real CLI, against a real OpenBao loaded with the sample secrets the way
// `npm run demo` loads them (scripts/sample-secrets.ts), through the AppRole and policy that
// examples/dify/setup-approle.sh creates from policy.hcl. The Vault Agent variant runs a real `bao agent` with
// the example's config and templates. The Dockerfile's ENTRYPOINTs run in a PID namespace with stand-ins for
// Dify's scripts.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import {
  makeSampleSecrets,
  type SampleSecrets,
  sampleLayout,
  writeSampleSecrets,
} from '../../scripts/sample-secrets.js';
import { baseEnv, VAULTRUN_BIN } from '../support/cli.js';
import { requireRoot, requireTool, spawnCaptured, spawnInPidNamespace } from '../support/namespaces.js';
import { baoBinary, freePort, type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { expectFailure, probeEnv, runProbe, Sensitive, tempDir } from '../support/resolution.js';

const DIFY = join(REPO_ROOT, 'examples/dify');
const AGENT = join(DIFY, 'vault-agent');
const K8S = join(REPO_ROOT, 'examples/kubernetes');

type Env = Record<string, string>;
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
type Yaml = any;

/** Dify's secret variables: each must be a reference in api, worker and worker_beat. */
const DIFY_SECRET_VARS = [
  'SECRET_KEY',
  'DB_PASSWORD',
  'REDIS_PASSWORD',
  'CELERY_BROKER_URL',
  'CODE_EXECUTION_API_KEY',
  'PLUGIN_DAEMON_KEY',
  'INNER_API_KEY_FOR_PLUGIN',
  'S3_ACCESS_KEY',
  'S3_SECRET_KEY',
  'WEAVIATE_API_KEY',
  'SMTP_PASSWORD',
];
/** The plugin daemon's. */
const PLUGIN_SECRET_VARS = ['DB_PASSWORD', 'REDIS_PASSWORD', 'SERVER_KEY', 'DIFY_INNER_API_KEY'];

const INLINE = /\$\{vault:([^}]*)\}/g;
const isRef = (value: string) => value.startsWith('vault:') || value.includes('${vault:');

/** What a variable holding references becomes with the sample secrets (fails on a path or key not in them). */
function expand(value: string, secrets: SampleSecrets): string {
  const lookup = (ref: string) => {
    const [path = '', key = '', version] = ref.split('#');
    if (version !== undefined) throw new Error(`vault:${ref}: versions are not used in the examples`);
    const found = secrets[path]?.[key];
    if (found === undefined) throw new Error(`vault:${ref}: no such path/key in examples/dify/secrets.json`);
    return found;
  };
  if (value.startsWith('vault:')) return lookup(value.slice('vault:'.length));
  return value.replace(INLINE, (_, ref: string) => lookup(ref));
}

/** The (path, key) pairs a value refers to. */
function refsOf(value: string): string[] {
  if (value.startsWith('vault:')) return [value.slice('vault:'.length)];
  return [...value.matchAll(INLINE)].map((m) => m[1] as string);
}

/**
 * A compose service's environment as the container gets it: mapping or KEY=VALUE list, with compose's
 * interpolation (`$$` is a literal `$`; a single `$` would be a compose variable, which the examples must not use).
 */
function composeEnv(service: Yaml): Env {
  const raw = service?.environment ?? {};
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((item: string) => [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)])
    : Object.entries(raw);
  const env: Env = {};
  for (const [name, value] of entries) {
    const text = String(value);
    if (text.replaceAll('$$', '').includes('$')) {
      throw new Error(`${name}: compose would interpolate "${text}" (escape $ as $$)`);
    }
    env[name] = text.replaceAll('$$', '$');
  }
  return env;
}

function readYaml(path: string): Yaml {
  return parse(readFileSync(path, 'utf8'), { merge: true });
}

describe('examples', () => {
  let bao: OpenBao;
  let secrets: SampleSecrets;
  let approle: string;
  const sensitive = new Sensitive();

  beforeAll(async () => {
    bao = await startOpenBao();
    secrets = makeSampleSecrets();
    await writeSampleSecrets(bao, secrets);
    for (const [path, data] of Object.entries(secrets)) {
      for (const [key, value] of Object.entries(data))
        if (key !== 'username') sensitive.add(`${path}#${key}`, value);
    }
    approle = tempDir('vaultrun-approle-');
    const setup = spawnSync('sh', [join(DIFY, 'setup-approle.sh'), approle], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: approle,
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        VAULT_CLI: baoBinary(),
      },
      encoding: 'utf8',
    });
    expect(setup.status, `setup-approle.sh failed:\n${setup.stdout}${setup.stderr}`).toBe(0);
    sensitive.add('role_id', readFileSync(join(approle, 'role_id'), 'utf8'));
    sensitive.add('secret_id', readFileSync(join(approle, 'secret_id'), 'utf8'));
  });

  afterAll(async () => {
    await bao?.stop();
  });

  /** The container's view → this machine: the server, and the AppRole files from setup-approle.sh. */
  function local(env: Env, secretFiles: Record<string, string>): Env {
    const out = { ...env };
    if (out.VAULT_ADDR !== undefined) out.VAULT_ADDR = bao.addr;
    for (const name of ['VAULT_ROLE_ID_FILE', 'VAULT_SECRET_ID_FILE']) {
      const path = out[name];
      if (path === undefined) continue;
      const file = secretFiles[path];
      if (file === undefined) throw new Error(`${name}=${path}: not a file the example mounts`);
      out[name] = file;
    }
    return out;
  }

  /** Runs vaultrun with the environment; every referring variable must reach the app with its sample value. */
  async function expectResolved(env: Env): Promise<void> {
    const withRefs = Object.entries(env).filter(([, v]) => isRef(v));
    expect(withRefs.length).toBeGreaterThan(0);
    const got = probeEnv(await runProbe(sensitive, env));
    for (const [name, value] of withRefs) expect(got[name], name).toBe(expand(value, secrets));
  }

  describe('setup-approle.sh', () => {
    it('writes policy.hcl as the dify policy and a role whose tokens have only that policy', async () => {
      const policy = await bao.api('GET', 'sys/policies/acl/dify');
      expect(policy.data.policy).toBe(readFileSync(join(DIFY, 'policy.hcl'), 'utf8'));
      const role = await bao.api('GET', 'auth/approle/role/dify');
      expect(role.data.token_policies).toEqual(['dify']);
      const roleId = await bao.api('GET', 'auth/approle/role/dify/role-id');
      expect(readFileSync(join(approle, 'role_id'), 'utf8')).toBe(roleId.data.role_id);
      expect(statSync(join(approle, 'secret_id')).mode & 0o077).toBe(0);
    });

    it('the policy reads the Dify secrets and nothing else (exit 77 elsewhere)', async () => {
      await bao.kvPut('other/app', { password: 'not-for-dify-3c91a2' });
      const env = {
        VAULT_ADDR: bao.addr,
        VAULT_ROLE_ID_FILE: join(approle, 'role_id'),
        VAULT_SECRET_ID_FILE: join(approle, 'secret_id'),
      };
      expectFailure(await runProbe(sensitive, { ...env, X: 'vault:secret/other/app#password' }), 77);
      probeEnv(await runProbe(sensitive, { ...env, X: 'vault:secret/dify/db#password' }));
    });
  });

  describe('docker-compose.example.yaml', () => {
    let compose: Yaml;
    let secretFiles: Record<string, string>;
    const vaultrunServices = ['api', 'worker', 'worker_beat', 'plugin_daemon'];

    beforeAll(() => {
      compose = readYaml(join(DIFY, 'docker-compose.example.yaml'));
      // compose secrets: /run/secrets/NAME in the container ← the file setup-approle.sh wrote.
      secretFiles = {};
      for (const [name, def] of Object.entries(compose.secrets as Record<string, { file: string }>)) {
        expect(def.file).toBe(`./approle/${name}`);
        secretFiles[`/run/secrets/${name}`] = join(approle, name);
      }
    });

    it('has every Dify secret variable as a reference, the broker URL inline, in api, worker and worker_beat', () => {
      for (const name of ['api', 'worker', 'worker_beat']) {
        const env = composeEnv(compose.services[name]);
        for (const v of DIFY_SECRET_VARS) expect(isRef(env[v] ?? ''), `${name}: ${v}`).toBe(true);
        expect(env.CELERY_BROKER_URL).toMatch(/^redis:\/\/:\$\{vault:secret\/dify\/redis#password\}@/);
      }
      const plugin = composeEnv(compose.services.plugin_daemon);
      for (const v of PLUGIN_SECRET_VARS) expect(isRef(plugin[v] ?? ''), `plugin_daemon: ${v}`).toBe(true);
      // The daemon and the api must share these two secrets.
      const api = composeEnv(compose.services.api);
      expect(plugin.SERVER_KEY).toBe(api.PLUGIN_DAEMON_KEY);
      expect(plugin.DIFY_INNER_API_KEY).toBe(api.INNER_API_KEY_FOR_PLUGIN);
      expect([api.MODE, composeEnv(compose.services.worker).MODE]).toEqual(['api', 'worker']);
      expect(composeEnv(compose.services.worker_beat).MODE).toBe('beat');
    });

    it('mounts the AppRole files where VAULT_ROLE_ID_FILE / VAULT_SECRET_ID_FILE point', () => {
      for (const name of vaultrunServices) {
        const service = compose.services[name];
        const env = composeEnv(service);
        expect(service.secrets, name).toEqual(['role_id', 'secret_id']);
        expect(env.VAULT_ROLE_ID_FILE).toBe('/run/secrets/role_id');
        expect(env.VAULT_SECRET_ID_FILE).toBe('/run/secrets/secret_id');
      }
    });

    it('together, the references use every path and key of secrets.json', () => {
      const used = new Set(
        Object.values(compose.services).flatMap((s) => Object.values(composeEnv(s)).flatMap(refsOf)),
      );
      const all = Object.entries(sampleLayout()).flatMap(([path, keys]) => keys.map((k) => `${path}#${k}`));
      expect([...used].sort()).toEqual(all.sort());
    });

    for (const name of vaultrunServices) {
      it(`${name}: every reference resolves through the AppRole and policy.hcl`, async () => {
        await expectResolved(local(composeEnv(compose.services[name]), secretFiles));
      });
    }
  });

  describe('Vault Agent sidecar variant (vault-agent/)', () => {
    let base: Yaml;
    let override: Yaml;
    let rendered: string;

    beforeAll(async () => {
      base = readYaml(join(DIFY, 'docker-compose.example.yaml'));
      override = readYaml(join(AGENT, 'docker-compose.vault-agent.yaml'));
      rendered = tempDir('vaultrun-agent-out-');
      // The agent's container paths → this machine.
      const hcl = readFileSync(join(AGENT, 'agent.hcl'), 'utf8');
      const mapped = hcl
        .replaceAll('"/run/secrets/', `"${approle}/`)
        .replaceAll('"/vault/config/', `"${AGENT}/`)
        .replaceAll('"/vault/secrets/', `"${rendered}/`);
      for (const dir of ['/run/secrets/', '/vault/config/', '/vault/secrets/']) {
        expect(hcl, `agent.hcl uses ${dir}`).toContain(`"${dir}`);
      }
      const config = join(tempDir('vaultrun-agent-'), 'agent.hcl');
      writeFileSync(config, mapped);
      const agentEnv = composeEnv(override.services['vault-agent']);
      expect(agentEnv.VAULT_ADDR).toBe(composeEnv(base.services.api).VAULT_ADDR);
      // -exit-after-auth: render the templates once, then exit (the sidecar keeps running instead).
      const res = await spawnCaptured([baoBinary(), 'agent', `-config=${config}`, '-exit-after-auth'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: rendered, VAULT_ADDR: bao.addr },
      }).result;
      expect(res.exitCode, `bao agent failed:\n${res.stdout}${res.stderr}`).toBe(0);
    });

    it('the agent renders each file, mode 0400', () => {
      expect(readdirSync(rendered).sort()).toEqual(['dify.env', 'plugin_daemon.env']);
      for (const file of readdirSync(rendered))
        expect(statSync(join(rendered, file)).mode & 0o777).toBe(0o400);
    });

    for (const name of ['api', 'worker', 'worker_beat', 'plugin_daemon']) {
      it(`${name}: the rendered file replaces every reference; vaultrun never contacts Vault`, async () => {
        const env = { ...composeEnv(base.services[name]), ...composeEnv(override.services[name]) };
        const envFile = env.VAULTRUN_ENV_FILE ?? '';
        expect(envFile).toMatch(/^\/vault\/secrets\//);
        // Vault unreachable (nothing listens there): any login or read would fail with 69 after 1 s.
        const unreachable = `http://127.0.0.1:${await freePort()}`;
        const run = await runProbe(sensitive, {
          ...env,
          VAULT_ADDR: unreachable,
          VAULT_ROLE_ID_FILE: join(approle, 'role_id'),
          VAULT_SECRET_ID_FILE: join(approle, 'secret_id'),
          VAULTRUN_WAIT: '1s',
          VAULTRUN_ENV_FILE: envFile.replace('/vault/secrets/', `${rendered}/`),
        });
        const got = probeEnv(run);
        const withRefs = Object.entries(composeEnv(base.services[name])).filter(([, v]) => isRef(v));
        expect(withRefs.length).toBeGreaterThan(0);
        for (const [v, value] of withRefs) expect(got[v], v).toBe(expand(value, secrets));
      });
    }
  });

  describe('kubernetes/dify.yaml', () => {
    // Kubernetes reads YAML 1.1: `defaultMode: 0440` is octal there.
    const docs: Yaml[] = parseAllDocuments(readFileSync(join(K8S, 'dify.yaml'), 'utf8'), {
      version: '1.1',
    }).map((d) => d.toJS());
    const configMaps = new Map<string, Env>(
      docs.filter((d) => d.kind === 'ConfigMap').map((d) => [d.metadata.name, d.data]),
    );
    const deployments = docs.filter((d) => d.kind === 'Deployment');

    it('has the api and worker Deployments, running as Dify’s uid with the AppRole Secret readable by it', () => {
      expect(deployments.map((d) => d.metadata.name)).toEqual(['dify-api', 'dify-worker']);
      for (const d of deployments) {
        expect(d.spec.template.spec.securityContext).toMatchObject({ runAsUser: 1001, fsGroup: 1001 });
        const secretVolume = d.spec.template.spec.volumes.find((v: Yaml) => v.secret);
        expect(secretVolume.secret).toEqual({ secretName: 'dify-vault-approle', defaultMode: 0o440 });
      }
    });

    for (const name of ['dify-api', 'dify-worker']) {
      it(`${name}: every reference of its container resolves`, async () => {
        const spec = deployments.find((d) => d.metadata.name === name).spec.template.spec;
        const [container] = spec.containers;
        const env: Env = {};
        for (const from of container.envFrom ?? [])
          Object.assign(env, configMaps.get(from.configMapRef.name));
        for (const e of container.env ?? []) env[e.name] = String(e.value);
        // The Secret volume's files at their mount path → the files setup-approle.sh wrote.
        const secretVolumes = new Set(spec.volumes.filter((v: Yaml) => v.secret).map((v: Yaml) => v.name));
        const files: Record<string, string> = {};
        for (const m of container.volumeMounts) {
          if (!secretVolumes.has(m.name)) continue;
          for (const key of ['role_id', 'secret_id']) files[`${m.mountPath}/${key}`] = join(approle, key);
        }
        const refs = Object.values(env).filter(isRef);
        expect(refs.length).toBeGreaterThanOrEqual(DIFY_SECRET_VARS.length);
        await expectResolved(local(env, files));
      });
    }
  });

  describe('Dockerfile.example', () => {
    interface Stage {
      from: string;
      entrypoint?: string[];
      cmd?: string[];
      user?: string;
    }
    const text = readFileSync(join(REPO_ROOT, 'Dockerfile.example'), 'utf8');
    const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    const stages: Record<string, Stage> = {};
    let current: Stage | undefined;
    for (const line of text.split('\n')) {
      const from = /^FROM (\S+) AS (\S+)$/.exec(line);
      if (from) stages[from[2] as string] = current = { from: from[1] as string };
      const json = /^(ENTRYPOINT|CMD) (\[.*\])$/.exec(line);
      if (json && current) current[json[1] === 'CMD' ? 'cmd' : 'entrypoint'] = JSON.parse(json[2] as string);
      const user = /^USER (\S+)$/.exec(line);
      if (user && current) current.user = user[1];
    }

    it('pins the base images and keeps Dify’s user', () => {
      expect(args.DIFY_VERSION).toMatch(/^1\.\d+\.\d+$/);
      expect(args.PLUGIN_DAEMON_VERSION).toMatch(/^\d+\.\d+\.\d+-local$/);
      // The bases are build arguments (test/containers/ builds FROM local stand-ins) whose defaults are the pins.
      expect(args.DIFY_API_IMAGE).toBe('langgenius/dify-api:${DIFY_VERSION}');
      expect(args.PLUGIN_DAEMON_IMAGE).toBe('langgenius/dify-plugin-daemon:${PLUGIN_DAEMON_VERSION}');
      expect(stages['dify-api']).toMatchObject({ from: '${DIFY_API_IMAGE}', user: 'dify' });
      expect(stages['dify-api-node']).toMatchObject({ from: '${DIFY_API_IMAGE}', user: 'dify' });
      expect(stages['dify-plugin-daemon']?.from).toBe('${PLUGIN_DAEMON_IMAGE}');
      // The compose file uses the same versions.
      const compose = readYaml(join(DIFY, 'docker-compose.example.yaml'));
      expect(compose.services.api.image).toBe(`dify-api-vaultrun:${args.DIFY_VERSION}`);
      expect(compose.services.plugin_daemon.image).toBe(
        `dify-plugin-daemon-vaultrun:${args.PLUGIN_DAEMON_VERSION}`,
      );
    });

    /** The image's paths → this machine: tini, vaultrun under test, and stand-ins for Dify's programs. */
    function hostArgv(argv: string[], standIns: Record<string, string>): string[] {
      return argv.flatMap((a) => {
        if (a === '/usr/bin/tini') return [requireTool('tini')];
        if (a === '/usr/local/bin/vaultrun') return VAULTRUN_BIN;
        let out = a;
        for (const [from, to] of Object.entries(standIns)) out = out.replaceAll(from, to);
        return [out];
      });
    }

    function script(dir: string, name: string, body: string): string {
      mkdirSync(dir, { recursive: true });
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/bash\n${body}\n`);
      chmodSync(path, 0o755);
      return path;
    }

    it('dify-api: tini is PID 1, Dify’s entrypoint runs as its child with the secrets, MODE=job arguments pass through', async () => {
      requireRoot('running the ENTRYPOINT as PID 1');
      const entrypoint = stages['dify-api']?.entrypoint ?? [];
      expect(entrypoint).toEqual([
        '/usr/bin/tini',
        '--',
        '/usr/local/bin/vaultrun',
        '--',
        '/bin/bash',
        '/entrypoint.sh',
      ]);
      // Stand-in for Dify's /entrypoint.sh: its MODE switch, reporting instead of starting Dify.
      const standIn = script(
        tempDir('vaultrun-entrypoint-'),
        'entrypoint.sh',
        [
          'echo "pid=$$ ppid=$PPID mode=$MODE"',
          'echo "db=$(printf %s "$DB_PASSWORD" | sha256sum | cut -c1-64)"',
          'if [[ "${MODE}" == "job" ]]; then for a in "$@"; do echo "arg=[$a]"; done; fi',
        ].join('\n'),
      );
      const compose = readYaml(join(DIFY, 'docker-compose.example.yaml'));
      const files = {
        '/run/secrets/role_id': join(approle, 'role_id'),
        '/run/secrets/secret_id': join(approle, 'secret_id'),
      };
      const env = baseEnv({ ...local(composeEnv(compose.services.api), files), MODE: 'job' });
      const jobArgs = ['upgrade-db', '--force', 'two words', ''];
      const res = await spawnInPidNamespace(
        [...hostArgv(entrypoint, { '/entrypoint.sh': standIn }), ...jobArgs],
        {
          env,
        },
      ).result;
      expect(res.exitCode, res.stderr).toBe(0);
      const sha = spawnSync('sha256sum', { input: secrets['secret/dify/db']?.password, encoding: 'utf8' });
      expect(res.stdout).toBe(
        [
          // vaultrun (tini's child, pid 2) replaced itself with bash: the entrypoint's parent is tini, PID 1.
          'pid=2 ppid=1 mode=job',
          `db=${sha.stdout.slice(0, 64)}`,
          ...jobArgs.map((a) => `arg=[${a}]`),
          '',
        ].join('\n'),
      );
    });

    it('dify-plugin-daemon: tini -g stays PID 1; /app/main is not PID 1, so its plugins’ parent is not PID 1 either', async () => {
      requireRoot('running the ENTRYPOINT as PID 1');
      const stage = stages['dify-plugin-daemon'];
      expect(stage?.entrypoint).toEqual(['/usr/bin/tini', '-g', '--', '/usr/local/bin/vaultrun', '--']);
      expect(stage?.cmd).toEqual(['/bin/bash', '-c', '/app/commandline migrate && exec /app/main']);
      const app = tempDir('vaultrun-plugin-app-');
      script(app, 'commandline', 'echo "commandline $1 ppid=$PPID"');
      // /app/main starts plugins as its children: a plugin's parent must not be PID 1.
      script(
        app,
        'main',
        [
          'echo "main pid=$$ ppid=$PPID"',
          'echo "server_key=$(printf %s "$SERVER_KEY" | sha256sum | cut -c1-64)"',
          'bash -c \'echo "plugin parent=$PPID"\'',
        ].join('\n'),
      );
      const compose = readYaml(join(DIFY, 'docker-compose.example.yaml'));
      const files = {
        '/run/secrets/role_id': join(approle, 'role_id'),
        '/run/secrets/secret_id': join(approle, 'secret_id'),
      };
      const env = baseEnv(local(composeEnv(compose.services.plugin_daemon), files));
      const argv = hostArgv([...(stage?.entrypoint ?? []), ...(stage?.cmd ?? [])], { '/app/': `${app}/` });
      const res = await spawnInPidNamespace(argv, { env }).result;
      expect(res.exitCode, res.stderr).toBe(0);
      const sha = spawnSync('sha256sum', {
        input: secrets['secret/dify/plugin']?.daemon_key,
        encoding: 'utf8',
      });
      const lines = res.stdout.trim().split('\n');
      expect(lines[0]).toBe('commandline migrate ppid=2');
      expect(lines[1]).toBe('main pid=2 ppid=1');
      expect(lines[2]).toBe(`server_key=${sha.stdout.slice(0, 64)}`);
      expect(lines[3]).toBe('plugin parent=2');
      expect(res.stderr).not.toMatch(/not running as PID 1/);
    });
  });
});
