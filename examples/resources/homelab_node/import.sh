# name@bmc-address[:port]: reads power and inventory from the BMC with the
# provider's bmc credentials.
terraform import homelab_node.nas nas@10.0.0.21

# name alone, for a node without a BMC (a Raspberry Pi): the next plan
# writes its PXE files from the configuration.
terraform import homelab_node.pi1 pi1
