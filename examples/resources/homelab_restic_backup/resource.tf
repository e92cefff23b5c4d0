# Nightly backup of the media and photos datasets on the storage host,
# keeping 7 daily, 4 weekly and 12 monthly snapshots, with a weekly check.
resource "homelab_restic_backup" "nas" {
  name = "nas-data"
  ssh {
    host = "nas.lan"
  }

  repository          = homelab_restic_repo.nas.repository
  password_wo         = var.restic_password
  password_wo_version = "2026-11"

  paths    = ["/tank/photos", "/tank/documents"]
  exclude  = ["*.tmp", ".cache"]
  tags     = ["nas", "nightly"]
  schedule = "*-*-* 02:30"

  keep {
    daily   = 7
    weekly  = 4
    monthly = 12
  }
  prune          = true
  check_schedule = "Sun 05:00"
}
