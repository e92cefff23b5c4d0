# REPOSITORY (restic runs on the provider's default ssh host, or here when the
# provider names none, with the `restic` on its PATH), host:REPOSITORY or
# host:port:REPOSITORY. The ID holds no password: the import checks that a
# repository is there without it, and the first plan shows only the configured
# password. A backend that needs credentials to answer at all (a rest-server
# with authentication, a bucket) cannot be checked so: create adopts an
# existing repository that opens with the password instead.
terraform import homelab_restic_repo.nas nas.lan:/srv/restic
terraform import homelab_restic_repo.usb /mnt/usb/restic
