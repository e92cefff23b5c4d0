# The local lab: what `make demo` applies against the testbed peers it starts
# on this machine (for now an OpenSSH host standing in for the storage
# server). Later resources join this stack as their peers join the lab.

terraform {
  required_providers {
    homelab = {
      source = "terraform-homelab/homelab"
    }
  }
}

variable "ssh_host" {
  description = "Address of the lab's storage host."
  type        = string
}

variable "ssh_port" {
  description = "SSH port of the lab's storage host."
  type        = number
}

variable "ssh_user" {
  description = "User to log in as."
  type        = string
  default     = "root"
}

variable "ssh_private_key_file" {
  description = "Private key the lab authorized for that user."
  type        = string
}

variable "known_hosts_file" {
  description = "known_hosts file holding the lab host's key: host keys are verified, even in the lab."
  type        = string
}

provider "homelab" {
  ssh {
    user             = var.ssh_user
    private_key      = file(var.ssh_private_key_file)
    known_hosts_file = var.known_hosts_file
  }
}

data "homelab_host" "storage" {
  ssh {
    host = var.ssh_host
    port = var.ssh_port
  }
}

output "storage" {
  description = "Facts the provider read from the lab's storage host."
  value = {
    hostname     = data.homelab_host.storage.hostname
    os           = data.homelab_host.storage.os_pretty_name
    kernel       = data.homelab_host.storage.kernel
    architecture = data.homelab_host.storage.architecture
    cpu_count    = data.homelab_host.storage.cpu_count
    memory_gib   = floor(data.homelab_host.storage.memory_bytes / 1073741824)
    zfs_version  = data.homelab_host.storage.zfs_version
  }
}
