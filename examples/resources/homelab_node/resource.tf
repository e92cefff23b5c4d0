# Credentials shared by the rack's BMCs live in the provider's bmc block.
provider "homelab" {
  bmc {
    username = "ADMIN"
    password = var.bmc_password
  }
}

variable "bmc_password" {
  type      = string
  sensitive = true
}

# A Supermicro storage server over IPMI: kept powered on, always booting
# from disk.
resource "homelab_node" "nas" {
  name  = "nas"
  power = "on"

  bmc {
    address  = "10.0.0.21"
    protocol = "ipmi"
  }

  boot {
    device     = "disk"
    persistent = true
    efi        = true
  }
}

# A newer server with Redfish, reinstalled over the network whenever its
# boot configuration or image version changes. The netboot server's DHCP
# hands out boot.ipxe, which chains ${net0/mac:hexhyp}.ipxe: the file this
# resource writes.
variable "image_version" {
  type    = string
  default = "2026.11"
}

resource "homelab_node" "compute1" {
  name                = "compute1"
  power               = "on"
  reprovision         = true
  reprovision_trigger = var.image_version

  bmc {
    address      = "10.0.0.31"
    protocol     = "redfish"
    insecure_tls = true # the BMC's certificate is self-signed
  }

  pxe {
    mac     = "3c:ec:ef:12:34:56"
    root    = "/srv/tftp"
    kernel  = "debian/bookworm/linux"
    initrd  = ["debian/bookworm/initrd.gz"]
    cmdline = "auto=true priority=critical url=http://10.0.0.2/preseed/compute1.cfg console=ttyS1,115200"

    server {
      ssh {
        host = "netboot.lan"
      }
    }
  }

  wait_for_ssh {
    host    = "compute1.lan"
    timeout = "40m"
  }

  timeouts {
    create = "45m"
    update = "45m"
  }
}

# A Raspberry Pi 4 booting over the network: no BMC, only its TFTP folder
# (named by its serial) with cmdline.txt and config.txt.
resource "homelab_node" "pi1" {
  name = "pi1"

  pxe {
    root    = "/srv/tftp"
    cmdline = "console=serial0,115200 root=/dev/nfs nfsroot=10.0.0.2:/srv/nfs/pi1,vers=4.1 rw ip=dhcp rootwait"

    raspberrypi {
      serial = "1a2b3c4d"
      config = <<-EOT
        arm_64bit=1
        enable_uart=1
      EOT
    }

    server {
      ssh {
        host = "netboot.lan"
      }
    }
  }
}

# A BMC password that is never stored in state: used during apply only.
# Refresh reads the BMC with the provider's bmc.password.
variable "lab_bmc_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "homelab_node" "lab1" {
  name  = "lab1"
  power = "off"

  bmc {
    address             = "10.0.0.41"
    password_wo         = var.lab_bmc_password
    password_wo_version = "2026-11"
  }
}
