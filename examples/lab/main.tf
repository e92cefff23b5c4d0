# The local lab: what `make demo` applies against the testbed peers it starts
# on this machine: an OpenSSH host, a qemu VM running OpenZFS (the storage
# box, which also backs itself up with restic and runs a one-node RKE2
# (simulator) cluster), a rest-server as the backup target, a Kubernetes API
# server with MetalLB's CRDs, and an IPMI BMC (ipmi_sim) for a netbooted node.

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

# --- ZFS: a real OpenZFS 2.3 VM with six virtio data disks ---------------

variable "zfs_ssh_host" {
  description = "Address of the lab's OpenZFS VM (SSH is forwarded to loopback)."
  type        = string
}

variable "zfs_ssh_port" {
  description = "Forwarded SSH port of the OpenZFS VM."
  type        = number
}

variable "zfs_private_key_file" {
  description = "Root key of the OpenZFS VM."
  type        = string
}

variable "zfs_known_hosts_file" {
  description = "known_hosts file holding the OpenZFS VM's host key."
  type        = string
}

variable "zfs_disks" {
  description = "The VM's data disks, as /dev/disk/by-id paths."
  type        = list(string)
}

resource "homelab_zpool" "tank" {
  name = "tank"
  ssh {
    host             = var.zfs_ssh_host
    port             = var.zfs_ssh_port
    private_key      = file(var.zfs_private_key_file)
    known_hosts_file = var.zfs_known_hosts_file
  }

  vdev {
    type  = "mirror"
    disks = slice(var.zfs_disks, 0, 2)
  }
  vdev {
    role  = "log"
    disks = [var.zfs_disks[2]]
  }
  vdev {
    role  = "cache"
    disks = [var.zfs_disks[3]]
  }

  properties            = { ashift = "12", autotrim = "on" }
  filesystem_properties = { compression = "zstd", atime = "off" }
  force_destroy         = true # the demo's pool may be destroyed by make demo-down
}

resource "homelab_zfs_dataset" "media" {
  ssh {
    host             = var.zfs_ssh_host
    port             = var.zfs_ssh_port
    private_key      = file(var.zfs_private_key_file)
    known_hosts_file = var.zfs_known_hosts_file
  }
  name       = "${homelab_zpool.tank.name}/media"
  quota      = "500M"
  properties = { recordsize = "1M", "homelab:owner" = "jellyfin" }
}

output "tank" {
  description = "The lab pool as the provider reads it."
  value = {
    health = homelab_zpool.tank.health
    size   = homelab_zpool.tank.size
    vdevs  = [for v in homelab_zpool.tank.status : "${v.role} ${v.name} ${v.state}"]
    media  = homelab_zfs_dataset.media.name
  }
}

# --- Backups: restic on the ZFS VM into the lab's rest-server -------------

variable "restic_repository" {
  description = "The lab's rest-server repository, as the ZFS VM reaches it (no credentials in the URL)."
  type        = string
}

variable "restic_rest_user" {
  description = "rest-server user."
  type        = string
}

variable "restic_rest_password" {
  description = "rest-server password."
  type        = string
  sensitive   = true
}

variable "restic_password" {
  description = "Password of the lab's restic repository."
  type        = string
  sensitive   = true
}

locals {
  zfs_ssh = {
    host             = var.zfs_ssh_host
    port             = var.zfs_ssh_port
    private_key      = file(var.zfs_private_key_file)
    known_hosts_file = var.zfs_known_hosts_file
  }
  rest_credentials = {
    RESTIC_REST_USERNAME = var.restic_rest_user
    RESTIC_REST_PASSWORD = var.restic_rest_password
  }
}

# Created with `restic init` on the first apply, adopted afterwards.
resource "homelab_restic_repo" "lab" {
  ssh {
    host             = local.zfs_ssh.host
    port             = local.zfs_ssh.port
    private_key      = local.zfs_ssh.private_key
    known_hosts_file = local.zfs_ssh.known_hosts_file
  }
  repository  = var.restic_repository
  password    = var.restic_password
  environment = local.rest_credentials
  check {}
}

# Hourly backup of the media dataset (systemd timer on the VM), one run
# during apply so that the repository has a snapshot right away:
#   systemctl list-timers 'homelab-restic-*'   (on the VM)
resource "homelab_restic_backup" "media" {
  name = "media"
  ssh {
    host             = local.zfs_ssh.host
    port             = local.zfs_ssh.port
    private_key      = local.zfs_ssh.private_key
    known_hosts_file = local.zfs_ssh.known_hosts_file
  }
  repository  = homelab_restic_repo.lab.repository
  password    = var.restic_password
  environment = local.rest_credentials

  paths    = ["/${homelab_zfs_dataset.media.name}"] # its default mountpoint
  tags     = ["lab", "media"]
  schedule = "hourly"
  keep {
    hourly = 24
    daily  = 7
  }
  prune   = true
  run_now = true
}

data "homelab_restic_snapshots" "media" {
  ssh {
    host             = local.zfs_ssh.host
    port             = local.zfs_ssh.port
    private_key      = local.zfs_ssh.private_key
    known_hosts_file = local.zfs_ssh.known_hosts_file
  }
  repository  = homelab_restic_backup.media.repository
  password    = var.restic_password
  environment = local.rest_credentials
  tags        = ["media"]
}

check "media_backup_fresh" {
  assert {
    condition     = data.homelab_restic_snapshots.media.latest_age_seconds != null && data.homelab_restic_snapshots.media.latest_age_seconds < 7200
    error_message = "The newest snapshot of the media dataset is older than two hours."
  }
}

output "backups" {
  description = "The lab's restic repository and backup schedule as the provider reads them."
  value = {
    repository_id = homelab_restic_repo.lab.repository_id
    next_run      = homelab_restic_backup.media.next_run
    last_result   = homelab_restic_backup.media.last_result
    snapshots     = length(data.homelab_restic_snapshots.media.snapshots)
    latest        = data.homelab_restic_snapshots.media.latest_time
  }
}

# --- Kubernetes: a real kube-apiserver + etcd with MetalLB's CRDs ----------

variable "kubeconfig_path" {
  description = "Kubeconfig of the lab's Kubernetes API."
  type        = string
}

# The users' layout: an internal pool and an internet-facing one with an
# IPv6 range, both announced in layer 2 mode. This API server has no MetalLB
# controller (nothing hands the addresses out), but it stores and validates
# the objects exactly as a cluster with MetalLB would:
#   kubectl --kubeconfig <kubeconfig_path> get ipaddresspools,l2advertisements -A
resource "homelab_metallb_pool" "internal" {
  kubeconfig = file(var.kubeconfig_path)
  name       = "internal"
  addresses  = ["192.168.1.200-192.168.1.239"]
  l2 {}
}

resource "homelab_metallb_pool" "internet" {
  kubeconfig  = file(var.kubeconfig_path)
  name        = "internet"
  addresses   = ["192.168.1.240-192.168.1.250", "fd00:42:1::100-fd00:42:1::1ff"]
  auto_assign = false
  l2 {
    node_selectors = [{ "kubernetes.io/arch" = "amd64" }]
  }
}

output "metallb_pools" {
  description = "The lab's MetalLB pools as the API server stores them."
  value       = { for p in [homelab_metallb_pool.internal, homelab_metallb_pool.internet] : p.id => p.addresses }
}

# --- RKE2: a one-node cluster on the storage VM, with a MetalLB pool -------
# The testbed's RKE2 *simulator* (no real RKE2 can run here): packaged like
# RKE2's airgap artifacts and installed by the provider the way it installs
# a real release. Its server runs a real etcd and kube-apiserver on the VM.
#   tofu output -raw rke2_kubeconfig > k && kubectl --kubeconfig k get nodes

variable "zfs_lan_ip" {
  description = "The storage VM's address on the lab LAN (reachable from this machine)."
  type        = string
}

variable "rke2_version" {
  description = "RKE2 version of the lab cluster."
  type        = string
}

variable "rke2_artifacts_dir" {
  description = "Directory with the airgap artifacts of that version."
  type        = string
}

variable "metallb_crds_file" {
  description = "MetalLB's CRDs and namespace, for the cluster's manifests directory."
  type        = string
}

resource "homelab_rke2_cluster" "lab" {
  version = var.rke2_version
  airgap {
    artifacts_dir = var.rke2_artifacts_dir
  }
  # Applied by the server like any file in server/manifests (in a real
  # cluster: MetalLB's Helm chart through a HelmChart manifest).
  manifests = { metallb = file(var.metallb_crds_file) }

  server {
    name   = "zfs-lab"
    config = { "node-ip" = var.zfs_lan_ip }
    ssh {
      host             = local.zfs_ssh.host
      port             = local.zfs_ssh.port
      private_key      = local.zfs_ssh.private_key
      known_hosts_file = local.zfs_ssh.known_hosts_file
    }
  }
}

resource "homelab_metallb_pool" "cluster" {
  kubeconfig = homelab_rke2_cluster.lab.kubeconfig
  name       = "services"
  addresses  = ["10.231.255.200-10.231.255.220"]
  l2 {}
}

output "rke2" {
  description = "The lab cluster as the provider reads it."
  value = {
    cluster_id   = homelab_rke2_cluster.lab.cluster_id
    api_endpoint = homelab_rke2_cluster.lab.api_endpoint
    pool         = homelab_metallb_pool.cluster.id
  }
}

output "rke2_kubeconfig" {
  description = "Kubeconfig of the lab cluster."
  value       = homelab_rke2_cluster.lab.kubeconfig
  sensitive   = true
}

# --- Bare metal: a node behind an IPMI BMC (Debian's ipmi_sim) -------------

variable "bmc_host" {
  description = "Address of the lab's IPMI BMC."
  type        = string
}

variable "bmc_port" {
  description = "UDP port of the lab's IPMI BMC."
  type        = number
}

variable "bmc_user" {
  description = "BMC user."
  type        = string
}

variable "bmc_password" {
  description = "BMC password."
  type        = string
  sensitive   = true
}

variable "netboot_dir" {
  description = "Directory the lab's netboot server would serve over TFTP."
  type        = string
}

# Powered on, booting once from the network into a Debian installer whose
# iPXE script and pxelinux file the provider writes into the netboot
# directory. Power it off with
#   ipmitool -I lanplus -H <bmc_host> -p <bmc_port> -U <bmc_user> -P <password> chassis power off
# and the next `tofu plan` shows it.
resource "homelab_node" "compute1" {
  name  = "compute1"
  power = "on"

  bmc {
    address  = var.bmc_host
    port     = var.bmc_port
    username = var.bmc_user
    password = var.bmc_password
    protocol = "ipmi"
  }

  boot {
    device = "pxe"
  }

  pxe {
    mac     = "52:54:00:00:10:01"
    kernel  = "debian/linux"
    initrd  = ["debian/initrd.gz"]
    cmdline = "auto=true priority=critical console=ttyS0"
    server {
      local_dir = var.netboot_dir
    }
  }
}

output "compute1" {
  description = "The lab node as its BMC reports it."
  value = {
    power_state = homelab_node.compute1.power_state
    protocol    = homelab_node.compute1.bmc_protocol
    bmc         = homelab_node.compute1.bmc_firmware
    pxe_files   = keys(homelab_node.compute1.pxe_files)
  }
}
