// Package rke2sim is an RKE2 SIMULATOR, not RKE2. It exists so that tests of
// the provider's homelab_rke2_cluster resource can run where real RKE2
// cannot (no containerd, no kubelet, no CNI). It honours the contract the
// provider relies on (written down in CONTRACT.md next to this file):
//
//   - `rke2 --version` prints "rke2 version <Version> (simulator)" and the Go
//     version;
//   - `rke2 server` reads /etc/rancher/rke2/config.yaml (and config.yaml.d),
//     runs a real etcd and a real kube-apiserver taken from the images
//     tarball in /var/lib/rancher/rke2/agent/images, writes the token files
//     and rke2.yaml, serves the supervisor (join) API on port 9345, registers
//     its Node and keeps it Ready, and applies the manifests in
//     /var/lib/rancher/rke2/server/manifests;
//   - `rke2 agent` joins a server with the token and registers its Node.
//
// Nothing runs pods: there is no kubelet, scheduler, controller-manager,
// container runtime or network. Nodes are objects the simulator keeps
// Ready by posting their status every 10 seconds. Joining servers run their
// own kube-apiserver against the first server's etcd; no etcd cluster is
// formed. The join endpoints under /v1-rke2-sim/ are private to the
// simulator; real RKE2 has a different protocol.
//
// Setting RKE2_SIM_ROOT=<dir> prefixes every absolute path the simulator
// uses, so that several simulated nodes can run on one host.
package rke2sim
