// Global setup of the `containers` vitest project (vitest.config.ts): runs once per `vitest run` that selects a
// file under test/containers/, in the main process, before any of them; its teardown runs after all of them.
//
// Setup: a Docker engine (this one's dockerd, started in the background when none answers — and then stopped by
// the teardown, which never stops an engine it did not start), the Debian base image and the images built FROM
// it that every test uses (cached on this machine by name and content hash: built once, reused by later runs).
// Teardown: every container, network and image labelled with this run's id is removed, whatever the tests left.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  BAO_BIN,
  type ContainersContext,
  DOCKERD,
  docker,
  engineRunning,
  ensureBaseImage,
  ensureCachedImage,
  LABEL,
  NODE_BIN,
  REPO_ROOT,
  removeLabelled,
  run,
} from '../support/docker.js';

async function startEngine(): Promise<{ child: ChildProcess; log: string }> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the container tests start dockerd when no engine runs, which needs root (CI runs as root)',
    );
  }
  if (!existsSync(DOCKERD)) {
    throw new Error(
      `no Docker engine answers and ${DOCKERD} is missing: apt-get install docker.io docker-compose`,
    );
  }
  const log = join(tmpdir(), `vaultrun-test-dockerd-${process.pid}.log`);
  const fd = openSync(log, 'a');
  // Its own session: the engine is not part of vitest's process group, and outlives nothing but this run.
  const child = spawn(DOCKERD, ['--log-level=warn'], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (await engineRunning()) return { child, log };
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 300)),
    ]);
    if (gone || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd did not start:\n${readFileSync(log, 'utf8').slice(-3000)}`);
    }
  }
}

async function stopEngine(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  let engine: { child: ChildProcess; log: string } | undefined;
  if (!(await engineRunning())) engine = await startEngine();
  const teardown = async () => {
    try {
      await removeLabelled(`${LABEL}=${runId}`);
      // BuildKit's cache holds a copy of every dist/vaultrun it was given: dropped with an engine this run
      // started (an engine that was already running keeps its cache, as its owner left it).
      if (engine)
        await docker(['builder', 'prune', '-af'], { allowFail: true, env: { DOCKER_BUILDKIT: '1' } });
    } finally {
      if (engine) await stopEngine(engine.child);
    }
  };
  try {
    // The Debian root the base image is made of (minutes the first time on a machine; a marker check after).
    await run(['bash', join(REPO_ROOT, 'scripts/rootfs.sh')], { timeoutMs: 15 * 60_000 });
    const base = await ensureBaseImage();
    const [openbao, difyApi, distrolessCc] = await Promise.all([
      ensureCachedImage('openbao', base, { bao: BAO_BIN }),
      ensureCachedImage('dify-api', base),
      ensureCachedImage('distroless-cc', base),
    ]);
    const difyApiNode = await ensureCachedImage('node', difyApi, { node: NODE_BIN });
    const ctx: ContainersContext = { runId, images: { base, openbao, difyApi, difyApiNode, distrolessCc } };
    project.provide('containers', ctx);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}
