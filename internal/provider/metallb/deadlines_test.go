package metallb_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
)

// Issue 13, item 12: no read can hang a plan. Each peer is frozen (SIGSTOP)
// during a plan; the plan fails within the configured bound with a clear
// error, and once the peer is resumed the next plan is empty (state kept).

// deadlineSlack is what a failing plan may take beyond the peer's timeout:
// starting OpenTofu, the provider and the refresh of a loaded machine.
const deadlineSlack = 20 * time.Second

// TestAccMetalLBPool_frozenAPIServerFailsWithinTimeout: a Kubernetes API
// server of the test's own is frozen (kube-apiserver: connections are
// accepted by the kernel, the TLS handshake never completes), then its
// etcd (kube-apiserver takes the request and waits on etcd).
func TestAccMetalLBPool_frozenAPIServerFailsWithinTimeout(t *testing.T) {
	k := acctest.StartKube(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, k.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	const timeout = 4 * time.Second
	config := fmt.Sprintf(`
provider "homelab" {
  kubernetes {
    kubeconfig_path = %q
    timeout         = %q
  }
}
`, kubeconfig, timeout.String()) + metallbPool("dmz", `  name      = "dmz"
  addresses = ["10.30.0.0/29"]
  l2 {}`)
	var frozen *acctest.Frozen
	freeze := func(what string, pid int) func() {
		return func() { frozen = acctest.Freeze(t, what, pid) }
	}
	thawAndCheck := func() {
		took := time.Since(frozen.At)
		t.Logf("plan against the frozen %s failed after %s (timeout %s)", frozen, took.Round(time.Millisecond), timeout)
		if took > timeout+deadlineSlack {
			t.Errorf("the plan took %s, more than the %s timeout plus %s", took, timeout, deadlineSlack)
		}
		frozen.Thaw()
	}
	empty := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "dmz"),
		Steps: []resource.TestStep{{
			Config: config,
			Check:  expectObject(t, k, "ipaddresspools", "dmz", map[string]any{"addresses": anyList("10.30.0.0/29")}),
		}, {
			PreConfig:   freeze("kube-apiserver", k.APIServerPID),
			Config:      config,
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Unable to read MetalLB pool metallb-system/dmz", "did not answer within 4s", "the state was kept"),
		}, {
			PreConfig:        thawAndCheck,
			Config:           config,
			ConfigPlanChecks: empty,
		}, {
			PreConfig:   freeze("etcd", k.EtcdPID),
			Config:      config,
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Unable to read MetalLB pool metallb-system/dmz", "did not answer within 4s", "the state was kept"),
		}, {
			PreConfig:        thawAndCheck,
			Config:           config,
			ConfigPlanChecks: empty,
		}},
	})
}
