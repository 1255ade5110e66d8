#!/usr/bin/env bash
# Runs a command inside a root filesystem (e.g. .tools/rootfs-bookworm from scripts/rootfs.sh) the
# way a container runs its ENTRYPOINT, without a container engine:
#
#   bash scripts/rootfs-exec.sh ROOT CMD [ARGS...]
#   e.g. bash scripts/rootfs-exec.sh .tools/rootfs-bookworm /usr/bin/tini -- /usr/local/bin/vaultrun sh -c 'env'
#
# - new PID namespace: CMD is PID 1 (so tini runs as PID 1 and does not warn), and every process
#   of the "container" is killed when PID 1 exits;
# - new mount namespace, private: a fresh /proc (for the new PID namespace) and a bind of the
#   host's /dev are mounted in ROOT only for the command; they vanish with the namespace and are
#   never visible on the host (ROOT/proc and ROOT/dev stay as they were);
# - network, hostname, users and cgroups are the host's (127.0.0.1 reaches services on the host);
# - the environment is passed through as is: use `env -i VAR=... CMD` to control it.
#
# Without /proc, Node.js still starts, but os.cpus() is empty, /proc/self/fd is missing and tini
# is not PID 1.
# Exit status: CMD's (128+N if it was killed by signal N). Signals: unshare ignores SIGINT and
# SIGTERM while it waits, so send signals to PID 1 of the namespace (the only child of this
# process: `cat /proc/PID/task/PID/children`); if this process dies, PID 1 gets SIGKILL.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo 'usage: scripts/rootfs-exec.sh ROOT CMD [ARGS...]' >&2
  exit 2
fi
[[ $(id -u) == 0 ]] || {
  echo 'rootfs-exec: must run as root' >&2
  exit 2
}
root=$(realpath -e -- "$1")
shift
[[ -d $root/proc && -d $root/dev ]] || {
  echo "rootfs-exec: $root has no /proc or /dev directory (not a root filesystem?)" >&2
  exit 2
}

# Absolute tool paths: the caller's PATH may lack the sbin directories, and it is passed on to CMD
# unchanged.
tool() { PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$1" || { echo "rootfs-exec: $1 not found" >&2; exit 2; }; }
unshare=$(tool unshare)
mount=$(tool mount)
chroot=$(tool chroot)

# The inner shell runs as PID 1 of the new namespace, mounts, then execs chroot, which execs CMD
# (so CMD becomes PID 1).
# shellcheck disable=SC2016
exec "$unshare" --mount --propagation private --pid --fork --kill-child -- /bin/bash -c '
  set -e
  mount=$1 chroot=$2 root=$3
  shift 3
  "$mount" -t proc -o nosuid,nodev,noexec proc "$root/proc"
  "$mount" --rbind /dev "$root/dev"
  exec "$chroot" "$root" "$@"
' rootfs-exec "$mount" "$chroot" "$root" "$@"
