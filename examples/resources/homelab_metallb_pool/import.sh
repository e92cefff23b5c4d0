# namespace/name of the IPAddressPool; its L2Advertisement or
# BGPAdvertisement of the same name comes with it.
terraform import homelab_metallb_pool.internal metallb-system/internal
