// Package node holds the homelab_node resource: power and boot through the
// node's BMC, its netboot files, and the wait for its SSH server.
package node
