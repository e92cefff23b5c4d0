package node_test

import (
	"context"
	"fmt"
	"strconv"
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

// TestAccNode_frozenBMCFailsWithinTimeout: ipmi_sim is stopped while the
// provider's ipmitool is talking to it during a refresh.
func TestAccNode_frozenBMCFailsWithinTimeout(t *testing.T) {
	s := acctest.StartIPMISim(t)
	const timeout = 4 * time.Second
	config := fmt.Sprintf(`
provider "homelab" {
  bmc {
    username = %q
    password = %q
    timeout  = %q
  }
}
resource "homelab_node" "n1" {
  name  = "node1"
  power = "on"
  bmc {
    address  = %q
    port     = %d
    protocol = "ipmi"
  }
}
`, s.User, s.Password, timeout.String(), s.Host, s.Port)
	var began time.Time
	var waitFreeze func() *acctest.Frozen
	cancelWatch := func() {}
	t.Cleanup(func() { cancelWatch() })
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			Check:  expectPower(t, s, true),
		}, {
			// Freeze ipmi_sim as soon as the refresh runs ipmitool against it.
			PreConfig: func() {
				var ctx context.Context
				ctx, cancelWatch = context.WithTimeout(context.Background(), time.Minute)
				waitFreeze = acctest.FreezeWhen(ctx, t, "ipmi_sim", s.PID, "ipmitool", " "+strconv.Itoa(s.Port))
				began = time.Now()
			},
			Config:      config,
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Unable to read power state of node node1", "did not answer within 4s", "the state was kept"),
		}, {
			PreConfig: func() {
				took := time.Since(began)
				cancelWatch()
				f := waitFreeze()
				if f == nil {
					t.Fatal("the plan never ran ipmitool against ipmi_sim, so nothing was frozen mid-command")
				}
				t.Logf("plan against the frozen BMC failed after %s (frozen %s after the plan started; timeout %s)",
					took.Round(time.Millisecond), f.At.Sub(began).Round(time.Millisecond), timeout)
				if took > timeout+deadlineSlack {
					t.Errorf("the plan took %s, more than the %s timeout plus %s", took, timeout, deadlineSlack)
				}
				f.Thaw()
			},
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}
