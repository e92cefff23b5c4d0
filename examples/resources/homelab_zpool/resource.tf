# The storage box: eight SATA drives as two raidz2 vdevs, a mirrored SLOG and
# an L2ARC on NVMe, and a hot spare. Name disks by /dev/disk/by-id so the
# names survive reboots and controller changes.
resource "homelab_zpool" "tank" {
  name = "tank"

  ssh {
    host = "nas.lan"
  }

  vdev {
    type = "raidz2"
    disks = [
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA1",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA2",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA3",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA4",
    ]
  }

  vdev {
    type = "raidz2"
    disks = [
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA5",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA6",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA7",
      "/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA8",
      # Growing a raidz: append a disk here and apply (OpenZFS 2.3 raidz expansion).
    ]
  }

  vdev {
    role  = "log"
    type  = "mirror"
    disks = ["/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1-part4", "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S2-part4"]
  }

  vdev {
    role  = "cache"
    disks = ["/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1-part5"]
  }

  vdev {
    role  = "spare"
    disks = ["/dev/disk/by-id/ata-WDC_WD80EFZZ-68BTXN0_WD-CA0AAAA9"]
  }

  properties = {
    ashift     = "12"
    autotrim   = "on"
    autoexpand = "on"
  }

  filesystem_properties = {
    compression = "zstd"
    atime       = "off"
    xattr       = "sa"
    mountpoint  = "/tank"
  }

  # A disk failed? The pool shows DEGRADED in health/status and a warning.
  # Replace its path above with the new disk's and apply: zpool replace, then
  # the apply waits for the resilver.

  timeouts {
    update = "12h" # resilvers and raidz expansions of big disks take hours
  }
}
