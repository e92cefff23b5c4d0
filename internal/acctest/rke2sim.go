package acctest

import (
	"context"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// RKE2Artifacts returns the directory of the RKE2 simulator's airgap
// artifacts for version (rke2.linux-amd64.tar.gz,
// rke2-images.linux-amd64.tar.gz and sha256sum-amd64.txt, see
// testbed.RKE2SimArtifacts), building them on first use. It fails the test
// when they cannot be built.
func RKE2Artifacts(t *testing.T, version string) string {
	t.Helper()
	skipUnlessAcceptance(t)
	// A cold build includes kube-apiserver's (about 3.5 minutes).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir, err := testbed.RKE2SimArtifacts(ctx, version, t.Logf)
	if err != nil {
		t.Fatalf("building the RKE2 simulator artifacts %s: %v", version, err)
	}
	return dir
}
