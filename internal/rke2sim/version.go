package rke2sim

import (
	"fmt"
	"runtime"
)

// Version is the RKE2 release the simulator pretends to be, set at build
// time with
//
//	-ldflags "-X github.com/terraform-homelab/terraform-provider-homelab/internal/rke2sim.Version=v1.31.4+rke2r1"
//
// It is what `rke2 --version` prints and every Node's kubeletVersion.
var Version = "v0.0.0+rke2sim.dev"

// VersionText is what `rke2 --version` prints: two lines, the first being
// "rke2 version <Version> (simulator)" (real RKE2 prints its git commit in
// the parentheses), the second the Go version.
func VersionText() string {
	return fmt.Sprintf("rke2 version %s (simulator)\ngo version %s\n", Version, runtime.Version())
}
