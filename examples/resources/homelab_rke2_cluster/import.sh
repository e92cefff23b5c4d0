# The server that initialized the cluster (the one whose config.yaml has no
# `server:` key), by the address the provider reaches it at over SSH with the
# provider's ssh block. The other nodes are found in the cluster's node list
# and reached at their InternalIP with the same credentials.
terraform import homelab_rke2_cluster.k8s 192.168.1.21

# The same, checking that the server is node cp1; or with SSH on another port.
terraform import homelab_rke2_cluster.k8s 192.168.1.21:cp1
terraform import homelab_rke2_cluster.k8s 192.168.1.21:2222:cp1
