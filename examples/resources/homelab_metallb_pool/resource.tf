# Two pools on one flat LAN, announced in layer 2 mode: one for internal
# services, one for internet-facing services with an IPv6 range (open in the
# firewall). Services pick the internet pool explicitly with the
# metallb.io/address-pool annotation; everything else gets an internal
# address.
resource "homelab_metallb_pool" "internal" {
  name      = "internal"
  addresses = ["192.168.1.200-192.168.1.239"]
  l2 {}
}

resource "homelab_metallb_pool" "internet" {
  name        = "internet"
  addresses   = ["192.168.1.240-192.168.1.250", "2001:db8:42:1::100-2001:db8:42:1::1ff"]
  auto_assign = false

  l2 {
    # Only the x86 node and the nodes labelled as edge (Pis that can take
    # over) may announce these addresses; selectors are ORed.
    node_selectors = [{ "kubernetes.io/arch" = "amd64" }, { "node-role.homelab/edge" = "true" }]
  }
}

# A pool announced over BGP to the router, for users who run BGP.
resource "homelab_metallb_pool" "routed" {
  name      = "routed"
  addresses = ["10.99.0.0/26"]

  service_allocation {
    priority   = 10
    namespaces = ["ingress"]
  }

  bgp {
    peers       = ["edge-router"]
    communities = ["64512:100"]
  }
}

# A cluster built in the same apply: the pool reaches it through the
# cluster's kubeconfig (any attribute that holds one, such as the output of
# the resource that builds the cluster), with no provider configured from
# it, and waits for MetalLB, installed in the same apply, to be ready.
variable "lab_kubeconfig" {
  description = "Kubeconfig content of the lab cluster."
  type        = string
  sensitive   = true
}

resource "homelab_metallb_pool" "lab" {
  name       = "lab"
  addresses  = ["192.168.50.0/28"]
  kubeconfig = var.lab_kubeconfig
  l2 {}

  timeouts {
    create = "15m"
  }
}
