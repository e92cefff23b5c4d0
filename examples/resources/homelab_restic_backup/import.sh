# name (the units homelab-restic-<name>.* on the provider's default ssh host),
# host:name or host:port:name. Every setting is read back from the installed
# units, so the plan after import shows only the password, if the configuration
# sets one instead of password_file.
terraform import homelab_restic_backup.data nas.lan:data
