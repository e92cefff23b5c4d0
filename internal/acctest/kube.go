package acctest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// MetalLBNamespace is the namespace MetalLB objects live in by default.
const MetalLBNamespace = "metallb-system"

var sharedKube sharedPeer[*testbed.Kube]

// Kube returns the package's Kubernetes API (a real kube-apiserver with
// etcd), starting it on first use, reset to MetalLB's CRDs freshly
// installed with no MetalLB objects and the metallb-system namespace
// present. The test holds the API server until it ends.
func Kube(t *testing.T) *testbed.Kube {
	t.Helper()
	k := sharedKube.acquire(t, "kube", func(dir string, logf func(string, ...any)) (*testbed.Kube, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		k, err := testbed.StartKube(ctx, dir, testbed.KubeOptions{Logf: logf})
		if err != nil {
			return nil, nil, err
		}
		return k, func() { _ = k.Stop() }, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Deleting the CRDs deletes every MetalLB object with them; namespaces
	// stay (nothing here would finalize their deletion).
	if err := k.DeleteMetalLBCRDs(ctx); err != nil {
		t.Fatalf("resetting the Kubernetes API: %v", err)
	}
	if err := k.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatalf("resetting the Kubernetes API: %v", err)
	}
	if err := k.EnsureNamespace(ctx, MetalLBNamespace); err != nil {
		t.Fatalf("resetting the Kubernetes API: %v", err)
	}
	return k
}

// KubeProvider renders a provider block whose kubernetes block reads the
// given kubeconfig file.
func KubeProvider(kubeconfigPath string) string {
	return fmt.Sprintf(`
provider "homelab" {
  kubernetes {
    kubeconfig_path = %q
  }
}
`, kubeconfigPath)
}
