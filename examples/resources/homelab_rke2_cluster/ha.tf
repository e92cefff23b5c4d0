# Three servers behind a virtual IP (kube-vip, deployed by the first server
# from a manifest) and three agents. Nodes join through the VIP, which is
# also added to every server's certificate; the kubeconfig points at it.
# The token comes from a secret store through a write-only attribute and is
# never stored in state.
variable "cluster_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

# Credentials of the S3 bucket etcd snapshots go to.
variable "s3_access_key" {
  type      = string
  sensitive = true
}

variable "s3_secret_key" {
  type      = string
  sensitive = true
}

locals {
  vip     = "192.168.10.10"
  servers = { k8s-cp1 = "192.168.10.11", k8s-cp2 = "192.168.10.12", k8s-cp3 = "192.168.10.13" }
  agents  = { k8s-w1 = "192.168.10.21", k8s-w2 = "192.168.10.22", k8s-w3 = "192.168.10.23" }
}

resource "homelab_rke2_cluster" "prod" {
  version          = "v1.31.4+rke2r1"
  api_endpoint     = local.vip
  token_wo         = var.cluster_token
  token_wo_version = "1"

  cni          = "cilium"
  tls_san      = ["k8s.home.example"]
  cluster_cidr = "10.52.0.0/16"
  service_cidr = "10.53.0.0/16"
  config = {
    "write-kubeconfig-mode" = "0600"
    "kubelet-arg"           = "max-pods=150"
    "etcd-s3"               = "true"
    "etcd-s3-endpoint"      = "s3.home.example"
    "etcd-s3-bucket"        = "k8s-snapshots"
  }
  # Secrets go to config.yaml through sensitive_config: hidden in plans and
  # logs. `config` refuses them.
  sensitive_config = {
    "etcd-s3-access-key" = var.s3_access_key
    "etcd-s3-secret-key" = var.s3_secret_key
  }

  # kube-vip announces the VIP from whichever server holds the lease.
  manifests = {
    "kube-vip" = templatefile("${path.module}/kube-vip.yaml.tftpl", { vip = local.vip, interface = "eno1" })
  }

  dynamic "server" {
    for_each = local.servers
    content {
      name   = server.key
      config = { "node-ip" = server.value }
      labels = { "topology.kubernetes.io/zone" = "rack1" }
      taints = ["node-role.kubernetes.io/control-plane=true:NoSchedule"]
      ssh {
        host = server.value
      }
    }
  }

  dynamic "agent" {
    for_each = local.agents
    content {
      name   = agent.key
      config = { "node-ip" = agent.value }
      labels = { "topology.kubernetes.io/zone" = "rack1", "homelab/storage" = "ssd" }
      ssh {
        host = agent.value
      }
    }
  }

  # Upgrades drain each node first (drain = true is the default).
  timeouts {
    create = "45m"
    update = "2h"
  }
}
