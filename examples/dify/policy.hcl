# Vault / OpenBao policy for Dify's containers: read-only on the Dify secrets, nothing else.
# KV v2 keeps data under MOUNT/data/…: vaultrun reads secret/data/dify/<name> for `vault:secret/dify/<name>#key`.
path "secret/data/dify/*" {
  capabilities = ["read"]
}

# Versions and metadata (only needed for `vault:…#key#VERSION` references and for --watch polling).
path "secret/metadata/dify/*" {
  capabilities = ["read"]
}
