#!/bin/sh
# Vault / OpenBao side of the Dify examples: the `dify` policy (policy.hcl next to this script) and an AppRole
# `dify` whose tokens have only that policy; writes its role_id and secret_id to files for the containers
# (compose `secrets:` → /run/secrets/role_id, /run/secrets/secret_id; Kubernetes: a Secret).
#
#   VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=<admin token> sh setup-approle.sh [OUT_DIR]
#
# OUT_DIR defaults to ./approle. Works with `vault` or `bao` (VAULT_CLI picks one; BAO_ADDR/BAO_TOKEN work for
# bao). Idempotent, except that each run issues a new secret_id (the old ones stay valid until revoked).
# test/integration/examples.test.ts runs this script against a real OpenBao.
#
# The secrets themselves (paths and keys: secrets.json next to this script), for example:
#   bao kv put secret/dify/db username=dify password="$(openssl rand -base64 24)"
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-./approle}
cli=${VAULT_CLI:-$(command -v bao || command -v vault || true)}
[ -n "$cli" ] || {
  echo 'setup-approle: neither bao nor vault found; set VAULT_CLI' >&2
  exit 1
}

# AppRole login, once.
if ! "$cli" auth list -format=json | grep -q '"approle/"'; then
  "$cli" auth enable approle
fi

"$cli" policy write dify "$here/policy.hcl"

# - token_policies: the role's tokens can read the Dify secrets and nothing else.
# - vaultrun logs in once at each container start and reads everything within seconds: short token TTLs.
#   (Raise token_max_ttl if you run vaultrun --supervise with rotation, which renews the token.)
# - secret_id_num_uses=0 and no secret_id_ttl: containers restart (restart: always) and read the same
#   secret_id file again. Tighten where you can: secret_id_bound_cidrs / token_bound_cidrs to the containers'
#   network, a secret_id per service, or a response-wrapped secret_id (VAULTRUN_SECRET_ID_WRAPPED=true) for
#   containers that start once.
"$cli" write auth/approle/role/dify \
  token_policies=dify \
  token_ttl=5m \
  token_max_ttl=30m \
  secret_id_num_uses=0 \
  secret_id_ttl=0

mkdir -p "$out"
umask 077
"$cli" read -field=role_id auth/approle/role/dify/role-id >"$out/role_id"
"$cli" write -f -field=secret_id auth/approle/role/dify/secret-id >"$out/secret_id"
echo "setup-approle: wrote $out/role_id and $out/secret_id (mode 0600)" >&2
# Compose mounts these files as they are, owner and mode included, and Dify's api image runs as uid 1001:
#   chown 1001 "$out"/role_id "$out"/secret_id   (the plugin daemon runs as root and can read them anyway)
