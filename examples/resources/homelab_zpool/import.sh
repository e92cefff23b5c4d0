# host:pool, or host:port:pool for SSH on another port.
terraform import homelab_zpool.tank nas.lan:tank
