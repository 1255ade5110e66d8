# Vault Agent / OpenBao Agent for the sidecar variant (docker-compose.vault-agent.yaml): logs in with the AppRole,
# renders one dotenv file per consumer from the templates, and keeps them current. The server address comes
# from VAULT_ADDR in the agent's environment. vaultrun reads a rendered file with --env-file (VAULTRUN_ENV_FILE)
# and needs no Vault access of its own.
#
# test/integration/examples.test.ts runs a real `bao agent` with this file (its /run/secrets, /vault/config and
# /vault/secrets mapped to temporary directories) and checks what vaultrun then gives each service.

auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "/run/secrets/role_id"
      secret_id_file_path                 = "/run/secrets/secret_id"
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  # KV secrets have no lease: re-read them every 5 minutes (a change re-renders the file; the apps see it at
  # their next start).
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = true
}

# api, worker, worker_beat
template {
  source      = "/vault/config/dify.env.ctmpl"
  destination = "/vault/secrets/dify.env"
  perms       = "0400"
}

# plugin_daemon
template {
  source      = "/vault/config/plugin_daemon.env.ctmpl"
  destination = "/vault/secrets/plugin_daemon.env"
  perms       = "0400"
}
