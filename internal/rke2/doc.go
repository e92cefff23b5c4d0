// Package rke2 installs, configures, upgrades and removes RKE2 on hosts
// reached through a remote.Runner. It imports nothing from Terraform.
//
// It relies only on what real RKE2 documents and does (the contract the
// testbed's simulator also follows):
//
//   - configuration in /etc/rancher/rke2/config.yaml (written 0600), a YAML
//     map of flag names without "--";
//   - airgap artifacts as RKE2 publishes them per release
//     (rke2.linux-<arch>.tar.gz, rke2-images.linux-<arch>.tar.gz and
//     sha256sum-<arch>.txt): uploaded to StagingDir, checked with
//     sha256sum -c --ignore-missing, the tarball extracted under /usr/local,
//     the images copied into /var/lib/rancher/rke2/agent/images/;
//   - the online installer (curl -sfL https://get.rke2.io | INSTALL_RKE2_VERSION=...
//     INSTALL_RKE2_TYPE=... sh -);
//   - the rke2-server and rke2-agent systemd units (Type=notify: "active"
//     means the node is up), rke2-uninstall.sh, rke2 --version;
//   - the server's token (/var/lib/rancher/rke2/server/token), admin
//     kubeconfig (/etc/rancher/rke2/rke2.yaml) and auto-deploy manifests
//     directory (/var/lib/rancher/rke2/server/manifests).
//
// Secrets (the cluster token) travel on stdin (file uploads), never in argv.
// Every user value reaches the host as an argument of remote.Command or as a
// positional parameter of a constant remote.Script.
//
// A file read back that is not on the node (ReadConfig, ReadManifest) is an
// error matching ErrNotFound under errors.Is; every other failure, an
// unreachable node above all, is not.
package rke2
