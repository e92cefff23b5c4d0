// Package zfs holds everything of the provider about ZFS: the homelab_zpool
// and homelab_zfs_dataset resources, the homelab_zpool and
// homelab_zfs_datasets data sources, and what they share (the vdev status
// schema, descriptions, error explanations). The commands are internal/zfs's.
package zfs
