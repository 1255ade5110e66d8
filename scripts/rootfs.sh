#!/usr/bin/env bash
# Builds and caches a minimal Debian bookworm root filesystem (the base of Dify's api image,
# python:3.12-slim-bookworm) in .tools/rootfs-bookworm, for running the single executable
# (dist/vaultrun) the way it runs in a container, without a Docker engine:
#
#   bash scripts/rootfs.sh            # build once; later runs only check the marker (fast)
#   bash scripts/rootfs.sh --force    # rebuild from scratch
#
# Environment:
#   VAULTRUN_ROOTFS          target directory (default: <repo>/.tools/rootfs-bookworm)
#   VAULTRUN_DEBIAN_MIRROR   Debian mirror URL (default: the one this machine's apt uses for bookworm)
#
# Contents: `debootstrap --variant=minbase bookworm` plus tini and the shared libraries the
# executable needs beyond minbase (ldd of dist/vaultrun: libstdc++.so.6, libatomic.so.1; libc,
# libm, libdl, libpthread and libgcc_s are already in minbase). They are installed with
# debootstrap --include, so apt never runs inside the root and nothing needs mounting for it.
# It also gets a Docker-like /etc/hosts. A marker file records what was built; if it matches, the
# script does nothing (bump rev= below when changing what is built).
# debootstrap runs inside `unshare --mount`, so the /proc etc. it mounts in the target are
# dropped when it exits and never leak onto the host.
set -euo pipefail

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${VAULTRUN_ROOTFS:-$repo/.tools/rootfs-bookworm}
suite=bookworm
variant=minbase
packages=(tini libstdc++6 libatomic1)
marker_name=.vaultrun-rootfs
force=0

for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
      exit 0
      ;;
    *) die "unknown argument: $arg (usage: scripts/rootfs.sh [--force])" ;;
  esac
done

[[ $(id -u) == 0 ]] || die 'must run as root (debootstrap, chroot)'

# The mirror apt uses for "$suite": one-line (deb URI suite comps) and deb822 (.sources) formats.
apt_mirror() {
  local files=() f
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && files+=("$f"); done
  for f in "${files[@]}"; do
    awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # One stanza per blank-line-separated paragraph; comment lines are ignored.
    awk -v suite="$suite" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1
        }
        types = ""; suites = ""; uris = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "") }
      key == "types" { types = $0 }
      key == "suites" { suites = $0 }
      key == "uris" { uris = $0 }
      END { if (!found) flush() }' "$f"
  done
}

mirror=${VAULTRUN_DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}
[[ -n $mirror ]] || die "no apt source for $suite found in /etc/apt; set VAULTRUN_DEBIAN_MIRROR"
mirror=${mirror%/}

want="rev=2 suite=$suite variant=$variant arch=$(dpkg --print-architecture) mirror=$mirror packages=${packages[*]}"
if [[ $force == 0 && -f $target/$marker_name && $(<"$target/$marker_name") == "$want" ]]; then
  log "up to date: $target"
  exit 0
fi

# Refuse to delete a directory something is still mounted in (rm -rf would recurse into it).
mounted_under() {
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo
}
for d in "$target" "$target.tmp"; do
  [[ -z $(mounted_under "$d") ]] || die "something is mounted under $d: $(mounted_under "$d" | tr '\n' ' ')"
done

if ! command -v debootstrap >/dev/null; then
  log 'installing debootstrap (apt-get)'
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

start=$(date +%s)
mkdir -p "$(dirname "$target")"
rm -rf "$target.tmp"
include=$(
  IFS=,
  echo "${packages[*]}"
)
log "debootstrap --variant=$variant --include=$include $suite $target from $mirror"
if ! unshare --mount --propagation private \
  debootstrap --variant="$variant" --include="$include" "$suite" "$target.tmp" "$mirror" >&2; then
  log "debootstrap failed; see $target.tmp/debootstrap/debootstrap.log"
  exit 1
fi

# Trim what a container image would not ship: downloaded .debs and apt lists.
rm -rf "$target.tmp"/var/cache/apt/archives/*.deb "$target.tmp"/var/lib/apt/lists/*
# A container engine provides /etc/hosts (and resolv.conf, hostname); debootstrap writes no hosts
# file, and without one "localhost" does not resolve inside the root.
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$target.tmp/etc/hosts"
# tini must run in the root (it is the container's PID 1 in the image).
chroot "$target.tmp" /usr/bin/tini --version >&2 || die 'tini --version failed inside the root'

rm -rf "$target"
mv "$target.tmp" "$target"
printf '%s\n' "$want" >"$target/$marker_name"
log "done in $(($(date +%s) - start))s: $target ($(du -sh "$target" | cut -f1))"
