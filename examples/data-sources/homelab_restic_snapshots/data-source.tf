# "Is my backup fresh?": warn on every plan when the newest snapshot of the
# NAS's nightly backup is older than a day. The password file lives on the
# host that runs restic, so the password stays out of the state.
data "homelab_restic_snapshots" "nas" {
  repository    = "sftp:backup@nas.lan:/tank/restic"
  password_file = "/etc/homelab/restic.pass"
  tags          = ["nightly"]
  ssh {
    host = "nas.lan"
  }
}

check "nas_backup_fresh" {
  assert {
    condition     = data.homelab_restic_snapshots.nas.latest_age_seconds != null && data.homelab_restic_snapshots.nas.latest_age_seconds < 86400
    error_message = "The newest snapshot of the NAS is older than a day (${coalesce(data.homelab_restic_snapshots.nas.latest_time, "none yet")})."
  }
}
