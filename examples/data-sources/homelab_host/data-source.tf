# Facts about the storage server, read over SSH.
data "homelab_host" "nas" {
  ssh {
    host = "nas.lan"
    # Pin the host key instead of relying on known_hosts.
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkW0CRWLTpKmQzSzjHxKHn1sCgYtUaPvtbGDtH5t4vv"
  }
}

# The machine Terraform runs on, without SSH.
data "homelab_host" "workstation" {
  ssh {
    host  = "localhost"
    local = true
  }
}

# Warn when the NAS lacks a ZFS that can grow raidz vdevs (OpenZFS 2.3+).
locals {
  nas_zfs = [for n in split(".", coalesce(data.homelab_host.nas.zfs_version, "0.0.0")) : tonumber(n)]
}

check "nas_zfs_supports_raidz_expansion" {
  assert {
    condition     = local.nas_zfs[0] > 2 || (local.nas_zfs[0] == 2 && local.nas_zfs[1] >= 3)
    error_message = "nas.lan runs OpenZFS ${coalesce(data.homelab_host.nas.zfs_version, "(none)")}; raidz expansion needs 2.3 or later."
  }
}

output "nas" {
  value = {
    os     = data.homelab_host.nas.os_pretty_name
    kernel = data.homelab_host.nas.kernel
    arch   = data.homelab_host.nas.architecture
    cpus   = data.homelab_host.nas.cpu_count
    memory = data.homelab_host.nas.memory_bytes
    zfs    = data.homelab_host.nas.zfs_version
  }
}
