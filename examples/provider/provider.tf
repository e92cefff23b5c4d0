terraform {
  required_providers {
    homelab = {
      source = "terraform-homelab/homelab"
    }
  }
}

# Defaults shared by every resource and data source; each can override them
# in its own ssh {} block.
provider "homelab" {
  ssh {
    user             = "admin"
    private_key      = file("~/.ssh/homelab_ed25519")
    known_hosts_file = "~/.ssh/known_hosts"
    # admin is not root: run privileged commands through passwordless sudo.
    sudo    = true
    timeout = "30s"

    # Reach the rack through a jump host, like OpenSSH's ProxyJump.
    # bastion {
    #   host = "jump.example.net"
    #   user = "jump"
    # }
  }

  bmc {
    username = "ADMIN"
    password = var.bmc_password
    protocol = "auto"
  }

  kubernetes {
    kubeconfig_path = "~/.kube/config"
  }
}

variable "bmc_password" {
  type      = string
  sensitive = true
}
