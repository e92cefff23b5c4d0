variable "restic_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

# A repository on the NAS, reached over SFTP by the restic on this machine.
# Create adopts it when it already exists and opens with this password; it
# never runs `restic init` over an existing repository.
resource "homelab_restic_repo" "nas" {
  repository          = "sftp:backup@nas.lan:/tank/restic"
  password_wo         = var.restic_password
  password_wo_version = "2026-11"
}

# A rest-server repository checked on create and on every refresh, reading
# 5% of the data each time.
resource "homelab_restic_repo" "offsite" {
  repository = "rest:https://backup.example.net/homelab/"
  password   = var.restic_password # stored (sensitive) so refresh can open it
  environment = {
    RESTIC_REST_USERNAME = "homelab"
    RESTIC_REST_PASSWORD = var.restic_password
  }
  check {
    read_data_subset = "5%"
  }
  check_on_refresh = true
}
