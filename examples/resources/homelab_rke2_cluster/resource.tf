# A single-server cluster on one machine, installed with RKE2's online
# installer (the node downloads the release from the internet). The token
# is generated and kept (sensitive) in state; the kubeconfig points at the
# server's address.
resource "homelab_rke2_cluster" "lab" {
  version = "v1.31.4+rke2r1"
  disable = ["rke2-ingress-nginx"]

  server {
    name   = "k8s1"
    config = { "node-ip" = "192.168.1.21" }

    ssh {
      host = "k8s1.lan"
    }
  }
}

# Use the cluster in the same configuration, e.g. for a MetalLB pool.
resource "homelab_metallb_pool" "lab" {
  name       = "lab"
  addresses  = ["192.168.1.200-192.168.1.220"]
  kubeconfig = homelab_rke2_cluster.lab.kubeconfig
  l2 {}
}

output "kubeconfig" {
  value     = homelab_rke2_cluster.lab.kubeconfig
  sensitive = true
}
