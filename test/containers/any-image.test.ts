// examples/any-image/Dockerfile (the single executable + tini + libatomic on any glibc image) built and run in a
// real engine against two bases: the Debian bookworm base, and a distroless-like one (glibc, libgcc_s and
// libstdc++ only: no shell, no package manager, no libatomic; user 65532). vaultrun resolves from OpenBao in a
// container on a user-defined network; the layers the recipe adds are measured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addedLayers,
  type BaoContainer,
  buildImage,
  containers,
  createNetwork,
  docker,
  inspect,
  mib,
  REPO_ROOT,
  runLabel,
  startBaoContainer,
  uniqueName,
} from '../support/docker.js';
import { singleExecutable } from '../support/exe.js';

const DB_PASSWORD = 'any-image-db-secret-42a7 & $x';
const API_KEY = 'any-image-api-key-0c3d';
const RECIPE = `${REPO_ROOT}/examples/any-image/Dockerfile`;

describe('examples/any-image/Dockerfile in a real Docker engine', () => {
  let network: string;
  let bao: BaoContainer;
  let token: string;

  const runIn = async (image: string, args: string[], extra: string[] = []) =>
    docker(
      [
        'run',
        '--rm',
        '--name',
        uniqueName('any'),
        ...runLabel(),
        '--network',
        network,
        '-e',
        `VAULT_ADDR=${bao.addr}`,
        '-e',
        `VAULT_TOKEN=${token}`,
        '-e',
        'DB_PASSWORD=vault:secret/app/db#password',
        '-e',
        'API_URL=https://u:${vault:secret/app/api#key}@api.example.com',
        ...extra,
        image,
        ...args,
      ],
      { allowFail: true },
    );

  beforeAll(async () => {
    singleExecutable();
    network = await createNetwork();
    bao = await startBaoContainer(network);
    await bao.kvPut('app/db', { password: DB_PASSWORD });
    await bao.kvPut('app/api', { key: API_KEY });
    await bao.bao(
      ['policy', 'write', 'app', '-'],
      'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n',
    );
    token = (await bao.bao(['token', 'create', '-policy=app', '-ttl=30m', '-field=token'])).trim();
  });

  afterAll(async () => {
    if (bao) await docker(['rm', '-f', bao.name], { allowFail: true });
  });

  it('on a Debian base: tini is PID 1, the command gets the secrets, its exit status is the container’s', async () => {
    const { images } = containers();
    const image = await buildImage('any-debian', {
      dockerfile: RECIPE,
      context: REPO_ROOT,
      buildArgs: { BASE: images.base, TOOLS: images.base },
    });
    expect(await inspect(image, '.Config.Entrypoint')).toEqual([
      '/usr/local/bin/tini',
      '--',
      '/usr/local/bin/vaultrun',
      '--',
    ]);
    const res = await runIn(image, [
      '/bin/sh',
      '-c',
      'echo "pid1=$(cat /proc/1/comm) pid=$$"; echo "db=$DB_PASSWORD"; echo "api=$API_URL"; echo "token=${VAULT_TOKEN:-none}"; exit 7',
    ]);
    expect(res.exitCode, res.stderr).toBe(7);
    expect(res.stdout).toMatch(/^pid1=tini pid=\d+\n/);
    expect(res.stdout).not.toMatch(/pid=1\n/);
    expect(res.stdout).toContain(`db=${DB_PASSWORD}\n`);
    expect(res.stdout).toContain(`api=https://u:${API_KEY}@api.example.com\n`);
    expect(res.stdout).toContain('token=none\n');
    expect(res.stderr).not.toContain(DB_PASSWORD);

    const added = await addedLayers(image, images.base);
    const gz = added.reduce((n, l) => n + l.gzipBytes, 0);
    console.log(`image size: examples/any-image on Debian adds ${mib(gz)} gzipped (${added.length} layers)`);
  });

  it('on a distroless-like base (no shell, no libatomic, user 65532): vaultrun runs, resolves and execs the command', async () => {
    const { images } = containers();
    const image = await buildImage('any-distroless', {
      dockerfile: RECIPE,
      context: REPO_ROOT,
      buildArgs: { BASE: images.distrolessCc, TOOLS: images.base },
      buildkit: true,
    });
    // The stand-in base really lacks what the recipe brings.
    const bare = await docker(
      ['run', '--rm', ...runLabel(), '--entrypoint', '/bin/sh', images.distrolessCc],
      {
        allowFail: true,
      },
    );
    expect(bare.exitCode).not.toBe(0);
    expect(await inspect(image, '.Config.User')).toBe('65532');

    // vaultrun itself, as the command: it runs with the libraries the recipe copied.
    const version = await runIn(image, ['/usr/local/bin/vaultrun', '--version']);
    expect(version.exitCode, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^vaultrun \S+ \(node v\d+\.\d+\.\d+, commit \S+, single executable\)\n$/);

    // A command that prints its environment: Debian's env (needs only libc), added for the test only.
    const withEnv = uniqueName('any-distroless-env');
    await docker(['build', '-q', ...runLabel(), '-t', `${withEnv}:test`, '-'], {
      input: `FROM ${images.base} AS debian\nFROM ${image}\nCOPY --from=debian /usr/bin/env /usr/bin/env\n`,
      env: { DOCKER_BUILDKIT: '1' },
    });
    const res = await runIn(`${withEnv}:test`, ['/usr/bin/env'], ['--read-only']);
    expect(res.exitCode, res.stderr).toBe(0);
    const env = new Map(
      res.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.get('DB_PASSWORD')).toBe(DB_PASSWORD);
    expect(env.get('API_URL')).toBe(`https://u:${API_KEY}@api.example.com`);
    expect(env.has('VAULT_TOKEN')).toBe(false);

    const added = await addedLayers(image, images.distrolessCc);
    const gz = added.reduce((n, l) => n + l.gzipBytes, 0);
    const exe = added.find((l) => /\/usr\/local\/bin\/vaultrun\b/.test(l.createdBy));
    const tools = added.filter((l) => l !== exe).reduce((n, l) => n + l.gzipBytes, 0);
    console.log(
      `image size: examples/any-image on distroless adds ${mib(added.reduce((n, l) => n + l.bytes, 0))}, ${mib(gz)} gzipped: vaultrun ${mib(exe?.gzipBytes ?? 0)}, tini + libatomic ${mib(tools)}`,
    );
    expect(exe?.bytes).toBeGreaterThanOrEqual((await import('node:fs')).statSync(singleExecutable()).size);
    expect(tools).toBeLessThan(1024 * 1024);
  });
});
