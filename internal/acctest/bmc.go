package acctest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// StartIPMISim starts an ipmi_sim BMC of the test's own (a simulated
// chassis), stopped when the test ends.
func StartIPMISim(t *testing.T) *testbed.IPMISim {
	t.Helper()
	skipUnlessAcceptance(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := testbed.StartIPMISim(ctx, t.TempDir(), testbed.IPMISimOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting ipmi_sim: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// StartRedfishSim starts the Redfish BMC simulator for the test, stopped
// when the test ends.
func StartRedfishSim(t *testing.T, opts testbed.RedfishSimOptions) *testbed.RedfishSim {
	t.Helper()
	skipUnlessAcceptance(t)
	s, err := testbed.StartRedfishSim(opts)
	if err != nil {
		t.Fatalf("starting the Redfish simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// BMCProvider renders a provider block whose bmc defaults carry the
// credentials, plus any extra provider blocks (e.g. ssh).
func BMCProvider(user, password string, extra ...string) string {
	blocks := ""
	for _, e := range extra {
		blocks += e + "\n"
	}
	return fmt.Sprintf(`
provider "homelab" {
  bmc {
    username = %q
    password = %q
  }
%s}
`, user, password, blocks)
}
