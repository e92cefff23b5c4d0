// Package host holds the homelab_host data source: the facts of a machine
// reached over SSH or the machine Terraform runs on.
package host
