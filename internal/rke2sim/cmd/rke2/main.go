// Command rke2 is the RKE2 SIMULATOR's binary (see package rke2sim): it
// answers `rke2 --version`, `rke2 server` and `rke2 agent` like RKE2 does,
// without running any workload.
package main

import (
	"os"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2sim"
)

func main() {
	os.Exit(rke2sim.Main(os.Args[1:]))
}
