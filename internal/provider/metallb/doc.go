// Package metallb holds the homelab_metallb_pool resource, which manages a
// MetalLB IPAddressPool and its advertisements through the Kubernetes API.
package metallb
