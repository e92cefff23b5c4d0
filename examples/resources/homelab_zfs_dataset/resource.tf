resource "homelab_zfs_dataset" "media" {
  ssh {
    host = "nas.lan"
  }
  name       = "tank/media"
  mountpoint = "/srv/media"
  quota      = "4T"
  properties = {
    recordsize      = "1M"
    compression     = "zstd"
    "homelab:owner" = "jellyfin"
  }
}

# A zvol for a VM disk.
resource "homelab_zfs_dataset" "vm_disk" {
  ssh {
    host = "nas.lan"
  }
  name         = "tank/vm/k8s-1"
  type         = "volume"
  volume_size  = "64G"
  volblocksize = "16K"
  sparse       = true
}

# An encrypted dataset. The passphrase is write-only: it reaches zfs on
# standard input and is never stored in the state. Bump key_wo_version to
# change it (zfs change-key).
variable "backups_passphrase" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "homelab_zfs_dataset" "backups" {
  ssh {
    host = "nas.lan"
  }
  name = "tank/backups"
  encryption {
    format         = "passphrase"
    key_wo         = var.backups_passphrase
    key_wo_version = 1
  }
}
