# host:pool/dataset, or host:port:pool/dataset. Import brings every locally set
# property into `properties`, so the plan after import is empty.
terraform import homelab_zfs_dataset.media nas.lan:tank/media
