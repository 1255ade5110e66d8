// The slim Debian root (scripts/rootfs.sh: debootstrap minbase bookworm + tini, libstdc++6, libatomic1, cached
// in .tools/rootfs-bookworm) and running a command in it like a container (scripts/rootfs-exec.sh: chroot, new
// PID and mount namespaces, the host's network).
//
// Host directories are bind-mounted into the root for one run only (in a private mount namespace around
// rootfs-exec.sh), so the cached root is never modified: the executable goes in with a bind of a directory
// holding it onto the root's (empty) /usr/local/bin, test files with a bind onto /mnt, and so on.
import { join, resolve } from 'node:path';
import { requireRoot, requireTool, type Spawned, spawnCaptured } from './namespaces.js';
import { REPO_ROOT } from './openbao.js';

export const ROOTFS = resolve(REPO_ROOT, process.env.VAULTRUN_ROOTFS ?? '.tools/rootfs-bookworm');

/** Builds the root if missing or outdated (minutes, from the Debian mirror), else returns at once. */
export async function ensureRootfs(): Promise<string> {
  requireRoot('the slim Debian root (debootstrap, chroot)');
  requireTool('unshare');
  requireTool('chroot');
  const res = await spawnCaptured(['bash', join(REPO_ROOT, 'scripts/rootfs.sh')], {
    env: { ...(process.env as Record<string, string>), VAULTRUN_ROOTFS: ROOTFS },
    timeoutMs: 15 * 60_000,
  }).result;
  if (res.exitCode !== 0) {
    throw new Error(
      `scripts/rootfs.sh failed (exit ${res.exitCode ?? res.signal}):\n${res.stderr.slice(-4000)}`,
    );
  }
  return ROOTFS;
}

export interface Bind {
  /** A host directory. */
  from: string;
  /** An existing directory in the root, e.g. /usr/local/bin, /mnt. */
  to: string;
}

/** Runs argv inside the root (scripts/rootfs-exec.sh) with the binds; env is passed to argv unchanged. */
export function spawnInRootfs(
  root: string,
  binds: Bind[],
  argv: string[],
  opts: { env: Record<string, string>; timeoutMs?: number },
): Spawned {
  requireRoot('running a command in the slim Debian root');
  const unshare = requireTool('unshare');
  const mount = requireTool('mount');
  const script = [
    'set -e',
    'mount=$1 root=$2 exec_script=$3',
    'shift 3',
    'while [ "$1" != -- ]; do "$mount" --bind "$1" "$root$2"; shift 2; done',
    'shift',
    'exec bash "$exec_script" "$root" "$@"',
  ].join('\n');
  return spawnCaptured(
    [
      unshare,
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      script,
      'rootfs-binds',
      mount,
      root,
      join(REPO_ROOT, 'scripts/rootfs-exec.sh'),
      ...binds.flatMap((b) => [b.from, b.to]),
      '--',
      ...argv,
    ],
    opts,
  );
}
