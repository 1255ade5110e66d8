#!/usr/bin/env bash
# Everything `npm test` needs beyond npm's own dependencies, checked and brought before the suite runs (it is
# the first step of `npm test`'s pretest, and of .ci/run), so that `npm ci && npm test` passes on a fresh
# Debian/Ubuntu machine:
#   1. Debian packages: postgresql (rotation tests), tini (PID 1 tests), debootstrap (the slim root),
#      iproute2, binutils (`strip`, for the single executable), openssl (test certificates), util-linux
#      (unshare, setpriv, script), docker.io and docker-compose (test/containers: a real engine, started by the
#      tests' global setup), and python3 with pip (for the OpenBao wheel).
#      Missing ones are installed when running as root (one `apt-get update`, then one `apt-get install`);
#      otherwise the exact command to run is printed and the script fails.
#   2. root itself: the suite makes PID and mount namespaces, chroots, and runs commands as other users.
#   3. OpenBao in .tools/ (scripts/tools.sh) and the slim Debian root in .tools/rootfs-bookworm
#      (scripts/rootfs.sh), each a quick no-op when already there.
#
#   bash scripts/prerequisites.sh
#
# Environment: VAULTRUN_PREREQUISITES_EXTRA  more Debian packages to require (space-separated; for tests).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'prerequisites: %s\n' "$*" >&2; }

packages=(postgresql tini debootstrap iproute2 binutils openssl util-linux docker.io docker-compose)
# python3 and pip: whatever provides them (a pyenv or the system); Debian's packages only when neither does.
command -v python3 >/dev/null 2>&1 || packages+=(python3)
if ! python3 -m pip --version >/dev/null 2>&1; then packages+=(python3-pip); fi
read -r -a extra <<<"${VAULTRUN_PREREQUISITES_EXTRA:-}"
packages+=("${extra[@]}")

# Installed means dpkg's package state "installed" (`dpkg -s` also succeeds for a package removed with its
# configuration files left behind; the selection, e.g. "deinstall" after a refused `dpkg -r`, does not matter).
installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]; }
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

root=0
[[ $(id -u) == 0 ]] && root=1

if ((${#missing[@]})); then
  if ((!root)); then
    log "missing Debian packages: ${missing[*]}"
    log 'install them, then run npm test again (as root: the suite needs it too):'
    printf '  sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  for p in "${missing[@]}"; do
    installed "$p" || {
      log "error: $p is still not installed after apt-get install"
      exit 1
    }
  done
else
  log "Debian packages present: ${packages[*]}"
fi

if ((!root)); then
  log "the suite needs root (PID and mount namespaces, chroot, --user); uid is $(id -u)"
  printf '  sudo npm test      # or only the unit tests, without root: npm run test:unit\n' >&2
  exit 1
fi

bash "$repo/scripts/tools.sh"
bash "$repo/scripts/rootfs.sh"
