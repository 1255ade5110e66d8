// Dockerfile.example in a real Docker engine: the very file a Dify operator copies, built FROM a local stand-in
// for Dify's api image (test/containers/images/dify-api: bookworm, /bin/bash /entrypoint.sh dispatching on MODE
// and exec-ing, user dify 1001), then run against OpenBao in a container on a user-defined network: tini as PID 1,
// signals and exit statuses through `docker stop`, `docker run --init` and no init, a read-only root with a tmpfs
// on /run, --user 1001, and the light dify-api-node target (vaultrun.cjs on the image's Node).
import { chmodSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addedLayers,
  type BaoContainer,
  buildImage,
  containers,
  createNetwork,
  docker,
  hashOf,
  inspect,
  logs,
  mib,
  runDetached,
  startBaoContainer,
  uniqueName,
  waitExit,
  waitForLogs,
} from '../support/docker.js';
import { singleExecutable } from '../support/exe.js';
import { REPO_ROOT } from '../support/openbao.js';
import { workDir, writeFile } from '../support/processes.js';

const SECRETS = {
  secretKey: 'sk-3c1f0a9e-container-secret',
  dbPassword: 'db-pass with spaces & $ymbols',
  redisPassword: 'redis-7d0e55',
  s3SecretKey: 's3-secret-5b8c21',
};
const POLICY = 'path "secret/data/dify/*" {\n  capabilities = ["read"]\n}\n';
const ENTRYPOINT = ['/usr/bin/tini', '--', '/usr/local/bin/vaultrun', '--', '/bin/bash', '/entrypoint.sh'];

interface Report {
  start: Record<string, string>;
  env: Map<string, string>;
  files: Map<string, Record<string, string>>;
  lines: string[];
}

/** The stand-in app's report (test/containers/images/dify-api/standin-app.sh) from a container's logs. */
function report(text: string): Report {
  const lines = text.split('\n').filter((l) => l.startsWith('standin '));
  const fields = (s: string) =>
    Object.fromEntries(
      s
        .split(' ')
        .filter((w) => w.includes('='))
        .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
    );
  const startLine = lines.find((l) => l.startsWith('standin start '));
  if (!startLine) throw new Error(`no stand-in report in:\n${text.slice(-3000)}`);
  const start = fields(startLine.slice(0, startLine.indexOf(' args=')));
  start.args = startLine.slice(startLine.indexOf(' args=') + 6);
  const env = new Map<string, string>();
  const files = new Map<string, Record<string, string>>();
  for (const l of lines) {
    const w = l.split(' ');
    if (w[1] === 'env' && w[2] && w[3]) env.set(w[2], w[3]);
    if (w[1] === 'file' && w[2] && w[3]) files.set(w[2], { path: w[3], ...fields(w.slice(4).join(' ')) });
  }
  return { start, env, files, lines };
}

describe('Dockerfile.example in a real Docker engine', () => {
  let network: string;
  let bao: BaoContainer;
  let image: string;
  let secretsDir: string;

  const vaultEnv = () => [
    '-e',
    `VAULT_ADDR=${bao.addr}`,
    '-e',
    'VAULT_ROLE_ID_FILE=/run/secrets/role_id',
    '-e',
    'VAULT_SECRET_ID_FILE=/run/secrets/secret_id',
    '-e',
    'SECRET_KEY=vault:secret/dify/app#secret_key',
    '-e',
    'DB_PASSWORD=vault:secret/dify/db#password',
    '-e',
    'CELERY_BROKER_URL=redis://:${vault:secret/dify/redis#password}@redis:6379/1',
    '-v',
    `${secretsDir}:/run/secrets:ro`,
    '--network',
    network,
  ];

  const expectResolved = (r: Report) => {
    expect(r.env.get('SECRET_KEY')).toBe(hashOf(SECRETS.secretKey));
    expect(r.env.get('DB_PASSWORD')).toBe(hashOf(SECRETS.dbPassword));
    expect(r.env.get('CELERY_BROKER_URL')).toBe(hashOf(`redis://:${SECRETS.redisPassword}@redis:6379/1`));
    // The image's own environment is untouched.
    expect(r.env.get('FLASK_APP')).toBe(hashOf('app.py'));
  };

  beforeAll(async () => {
    singleExecutable();
    const { images } = containers();
    network = await createNetwork();
    bao = await startBaoContainer(network);
    await bao.kvPut('dify/app', { secret_key: SECRETS.secretKey });
    await bao.kvPut('dify/db', { password: SECRETS.dbPassword });
    await bao.kvPut('dify/redis', { password: SECRETS.redisPassword });
    await bao.kvPut('dify/storage', { s3_secret_key: SECRETS.s3SecretKey });
    const { roleId, secretId } = await bao.appRole('dify', POLICY);
    // As compose mounts secrets: files of the host, readable by the image's user (dify, 1001).
    secretsDir = workDir('vaultrun-docker-secrets-');
    chmodSync(secretsDir, 0o755);
    for (const [name, value] of [
      ['role_id', roleId],
      ['secret_id', secretId],
    ] as const) {
      writeFile(`${secretsDir}/${name}`, value, 0o400);
      await docker([
        'run',
        '--rm',
        '-v',
        `${secretsDir}:/s`,
        images.base,
        'chown',
        '1001:1001',
        `/s/${name}`,
      ]);
    }
    image = await buildImage('dify-api', {
      dockerfile: `${REPO_ROOT}/Dockerfile.example`,
      context: REPO_ROOT,
      target: 'dify-api',
      buildArgs: { DIFY_API_IMAGE: images.difyApi },
    });
  });

  afterAll(async () => {
    // Containers of this file; the run's teardown removes anything left by label as well.
    if (bao) await docker(['rm', '-f', bao.name], { allowFail: true });
  });

  it('builds offline with the classic builder and with BuildKit: tini → vaultrun → Dify entrypoint, user dify, no CMD', async () => {
    const bk = await buildImage('dify-api-buildkit', {
      dockerfile: `${REPO_ROOT}/Dockerfile.example`,
      context: REPO_ROOT,
      target: 'dify-api',
      buildArgs: { DIFY_API_IMAGE: containers().images.difyApi },
      buildkit: true,
    });
    for (const img of [image, bk]) {
      expect(await inspect(img, '.Config.Entrypoint')).toEqual(ENTRYPOINT);
      expect(await inspect(img, '.Config.User')).toBe('dify');
      expect(await inspect(img, '.Config.Cmd')).toBeNull();
    }
    const res = await docker(['run', '--rm', '--entrypoint', '/usr/local/bin/vaultrun', image, '--version']);
    expect(res.stdout).toMatch(/^vaultrun \S+ \(node v\d+\.\d+\.\d+, commit \S+, single executable\)\n$/);
  });

  it('MODE=api: tini is PID 1, the secrets come from the OpenBao container, docker stop → SIGTERM → the app’s status', async () => {
    const c = await runDetached([...vaultEnv(), '-e', 'MODE=api', '-e', 'STANDIN_TERM_STATUS=42', image]);
    const r = report(await waitForLogs(c, /standin ready/));
    expect(r.start).toMatchObject({ app: 'gunicorn', pid1: 'tini', uid: '1001', gid: '1001' });
    expect(r.start.pid).not.toBe('1');
    expect(r.start.args).toBe('--bind 0.0.0.0:5001 --workers 1 app:app');
    expectResolved(r);
    await docker(['stop', '-t', '60', c]);
    expect(await waitExit(c)).toBe(42);
    expect(await logs(c)).toContain('standin signal TERM');
  });

  it('MODE=worker with a read-only root, --user 1001 and a tmpfs for the secret files: they land on the tmpfs', async () => {
    const worker = (tmpfs: string) =>
      runDetached([
        ...vaultEnv(),
        '--read-only',
        '--tmpfs',
        tmpfs,
        '--user',
        '1001',
        '-e',
        'MODE=worker',
        '-e',
        'S3_SECRET_KEY_FILE=vault:secret/dify/storage#s3_secret_key',
        image,
      ]);
    // A tmpfs for vaultrun's runtime directory itself, owned by the user: the default path is used.
    const own = await worker('/run/vaultrun:uid=1001,gid=1001,mode=0700');
    // A tmpfs on /run is root's (0755) and the user cannot make /run/vaultrun in it: the memory-backed fallback.
    const run = await worker('/run');
    // Each start writes into a directory of its own inside the runtime directory: RUNTIME/PID-XXXXXX/NAME.
    for (const [c, path] of [
      [own, /^\/run\/vaultrun\/\d+-[A-Za-z0-9]{6}\/S3_SECRET_KEY$/],
      [run, /^\/dev\/shm\/vaultrun-1001\/\d+-[A-Za-z0-9]{6}\/S3_SECRET_KEY$/],
    ] as const) {
      const r = report(await waitForLogs(c, /standin ready/));
      expect(r.start).toMatchObject({ app: 'celery', pid1: 'tini', uid: '1001' });
      expect(r.start.args).toMatch(/^-A app\.celery worker /);
      expectResolved(r);
      expect(r.files.get('S3_SECRET_KEY_FILE')).toEqual({
        path: expect.stringMatching(path),
        mode: '400',
        uid: '1001',
        fs: 'tmpfs',
        sha256: hashOf(SECRETS.s3SecretKey),
      });
    }
    // The root really is read-only for the app.
    const probe = await docker(['exec', own, 'touch', '/app/api/storage/x'], { allowFail: true });
    expect(probe.exitCode).not.toBe(0);
    expect(probe.stderr).toMatch(/Read-only file system/);
    for (const c of [own, run]) {
      await docker(['stop', c]);
      expect(await waitExit(c)).toBe(0);
    }
  });

  it('MODE=job: the container’s arguments reach Dify’s entrypoint, and its exit status is the container’s', async () => {
    const name = uniqueName('job');
    const res = await docker(
      [
        'run',
        '--name',
        name,
        '--label',
        `vaultrun-test=${containers().runId}`,
        ...vaultEnv(),
        '-e',
        'MODE=job',
        '-e',
        'STANDIN_EXIT_STATUS=3',
        image,
        'upgrade-db',
        '--force',
      ],
      { allowFail: true },
    );
    expect(res.exitCode).toBe(3);
    const r = report(res.stdout);
    expect(r.start).toMatchObject({ app: 'flask', args: 'upgrade-db --force', pid1: 'tini' });
    expectResolved(r);
  });

  it('docker run --init: docker-init is PID 1 in front of the image’s tini, and docker stop still reaches the app', async () => {
    const c = await runDetached([...vaultEnv(), '--init', '-e', 'STANDIN_TERM_STATUS=42', image]);
    const text = await waitForLogs(c, /standin ready/);
    const r = report(text);
    expect(r.start.pid1).toBe('docker-init');
    // Harmless (docker-init, PID 1, reaps orphans), but noisy: the image's tini says it cannot.
    expect(text).toContain('Tini is not running as PID 1');
    expectResolved(r);
    await docker(['stop', '-t', '60', c]);
    expect(await waitExit(c)).toBe(42);
  });

  it('docker run --init with vaultrun as the entrypoint (no tini in the image): SIGTERM reaches the app', async () => {
    const c = await runDetached([
      ...vaultEnv(),
      '--init',
      '--entrypoint',
      '/usr/local/bin/vaultrun',
      '-e',
      'STANDIN_TERM_STATUS=42',
      image,
      '--',
      '/bin/bash',
      '/entrypoint.sh',
    ]);
    const r = report(await waitForLogs(c, /standin ready/));
    expect(r.start).toMatchObject({ pid1: 'docker-init', app: 'gunicorn' });
    expectResolved(r);
    await docker(['stop', '-t', '60', c]);
    expect(await waitExit(c)).toBe(42);
  });

  it('no init at all: the app is PID 1 and ends on docker stop only because it handles SIGTERM', async () => {
    const entry = ['--entrypoint', '/usr/local/bin/vaultrun'];
    const cmd = ['--', '/bin/bash', '/entrypoint.sh'];
    const handles = await runDetached([
      ...vaultEnv(),
      ...entry,
      '-e',
      'STANDIN_TERM_STATUS=42',
      image,
      ...cmd,
    ]);
    const ignores = await runDetached([
      ...vaultEnv(),
      ...entry,
      '-e',
      'STANDIN_ON_TERM=ignore',
      image,
      ...cmd,
    ]);
    for (const c of [handles, ignores]) {
      const r = report(await waitForLogs(c, /standin ready/));
      // vaultrun replaced itself with bash, which exec'd the app: all PID 1.
      expect(r.start).toMatchObject({ pid: '1', pid1: 'gunicorn' });
      expectResolved(r);
    }
    await docker(['stop', '-t', '60', handles]);
    expect(await waitExit(handles)).toBe(42);
    // No handler: the kernel drops SIGTERM to PID 1; the engine SIGKILLs it after the grace period.
    await docker(['stop', '-t', '2', ignores]);
    expect(await waitExit(ignores)).toBe(137);
    expect(await logs(ignores)).not.toContain('standin signal TERM');
  });

  it('vaultrun --supervise as PID 1 warns that it does not reap orphans, and passes SIGTERM and the status on', async () => {
    const c = await runDetached([
      ...vaultEnv(),
      '--entrypoint',
      '/usr/local/bin/vaultrun',
      '-e',
      'STANDIN_TERM_STATUS=42',
      image,
      '--supervise',
      '--',
      '/bin/bash',
      '/entrypoint.sh',
    ]);
    const text = await waitForLogs(c, /standin ready/);
    expect(text).toContain('vaultrun is PID 1 in supervise mode: orphaned grandchildren will not be reaped');
    const r = report(text);
    // vaultrun (Node: its main thread is named node-MainThread) is PID 1, the app its child.
    expect(r.start.pid1).toMatch(/^(vaultrun|node)/);
    expect(r.start.pid).not.toBe('1');
    expectResolved(r);
    await docker(['stop', '-t', '60', c]);
    expect(await waitExit(c)).toBe(42);
  });

  it('dify-api-node (the light option): vaultrun.cjs on the image’s Node resolves the same way; the layers it adds, measured', async () => {
    const { images } = containers();
    const light = await buildImage('dify-api-node', {
      dockerfile: `${REPO_ROOT}/Dockerfile.example`,
      context: REPO_ROOT,
      target: 'dify-api-node',
      buildArgs: { DIFY_API_IMAGE: images.difyApiNode },
      // BuildKit builds only the target's stage; the classic builder would build dify-api (above it) too.
      buildkit: true,
    });
    expect(await inspect(light, '.Config.Entrypoint')).toEqual([
      '/usr/bin/tini',
      '--',
      'node',
      '--',
      '/usr/local/lib/vaultrun/vaultrun.cjs',
      '--',
      '/bin/bash',
      '/entrypoint.sh',
    ]);
    const c = await runDetached([
      ...vaultEnv(),
      '--read-only',
      '--tmpfs',
      '/run',
      '-e',
      'STANDIN_TERM_STATUS=42',
      '-e',
      'S3_SECRET_KEY_FILE=vault:secret/dify/storage#s3_secret_key',
      light,
    ]);
    const r = report(await waitForLogs(c, /standin ready/));
    expect(r.start).toMatchObject({ app: 'gunicorn', pid1: 'tini', uid: '1001' });
    expectResolved(r);
    expect(r.files.get('S3_SECRET_KEY_FILE')).toMatchObject({ fs: 'tmpfs', mode: '400', uid: '1001' });
    await docker(['stop', '-t', '60', c]);
    expect(await waitExit(c)).toBe(42);

    // What each target adds to Dify's image. The stand-ins already have tini and libatomic1, so the install
    // steps add (next to) nothing, as on an image that has them; on Dify's real image, apt adds tini (~0.3 MiB)
    // and libatomic1 (~0.05 MiB).
    const exe = await addedLayers(image, images.difyApi);
    const cjs = await addedLayers(light, images.difyApiNode);
    const total = (ls: { gzipBytes: number }[]) => ls.reduce((n, l) => n + l.gzipBytes, 0);
    const exeLayer = exe.find((l) => /COPY .* \/usr\/local\/bin\/vaultrun\b/.test(l.createdBy));
    const cjsLayer = cjs.find((l) =>
      /COPY .* \/usr\/local\/lib\/vaultrun\/vaultrun\.cjs\b/.test(l.createdBy),
    );
    if (!exeLayer || !cjsLayer) throw new Error(`no COPY layer in ${JSON.stringify([exe, cjs])}`);
    console.log(
      `image size: dify-api adds ${mib(total(exe))} gzipped (the COPY of dist/vaultrun: ${mib(exeLayer.bytes)}, ${mib(exeLayer.gzipBytes)} gzipped); ` +
        `dify-api-node adds ${mib(total(cjs))} gzipped (the COPY of dist/vaultrun.cjs: ${mib(cjsLayer.bytes)}, ${mib(cjsLayer.gzipBytes)} gzipped)`,
    );
    const { statSync } = await import('node:fs');
    const exeSize = statSync(singleExecutable()).size;
    // The layer is the file (plus tar headers): the whole executable, uncompressed in the image.
    expect(exeLayer.bytes).toBeGreaterThanOrEqual(exeSize);
    expect(exeLayer.bytes).toBeLessThan(exeSize + 64 * 1024);
    expect(cjsLayer.bytes).toBeGreaterThanOrEqual(statSync(`${REPO_ROOT}/dist/vaultrun.cjs`).size);
    expect(total(cjs)).toBeLessThan(1024 * 1024);
  });
});
