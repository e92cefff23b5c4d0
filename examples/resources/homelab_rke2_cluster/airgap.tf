# Nodes without internet access: the provider uploads the release's airgap
# artifacts from this machine (rke2.linux-amd64.tar.gz,
# rke2-images.linux-amd64.tar.gz and sha256sum-amd64.txt, as published on
# https://github.com/rancher/rke2/releases) and installs them. To upgrade,
# put the next release's artifacts in a directory and change both values:
# the nodes are upgraded one at a time.
resource "homelab_rke2_cluster" "airgapped" {
  version = "v1.31.4+rke2r1"

  airgap {
    artifacts_dir = "${path.module}/rke2-artifacts/v1.31.4+rke2r1"
  }

  server {
    name   = "edge1"
    config = { "node-ip" = "10.20.0.11" }
    ssh {
      host = "10.20.0.11"
      user = "admin"
      sudo = true
    }
  }

  agent {
    name   = "edge2"
    config = { "node-ip" = "10.20.0.12" }
    ssh {
      host = "10.20.0.12"
      user = "admin"
      sudo = true
    }
  }
}
