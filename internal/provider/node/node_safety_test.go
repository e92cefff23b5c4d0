package node_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// These tests guard the destructive paths of homelab_node (DESIGN.md,
// "Destructive actions"): what power-cycles a machine into a reinstall.
// The BMC is ipmi_sim with a simulated chassis, whose chassis history is
// the BMC's own record of every power operation; the netboot server is a
// local directory.

const safetyMAC = "52:54:00:5a:fe:01"

// provisionedNode renders a homelab_node with reprovision = true on an
// ipmi_sim BMC and netboot files in root.
func provisionedNode(s *testbed.IPMISim, name, root, cmdline, extra string) string {
	return acctest.BMCProvider(s.User, s.Password) + fmt.Sprintf(`
resource "homelab_node" "n1" {
  name        = %q
  reprovision = true
  bmc {
    address  = %q
    port     = %d
    protocol = "ipmi"
  }
  pxe {
    mac     = %q
    kernel  = "debian/vmlinuz"
    initrd  = ["debian/initrd.gz"]
    cmdline = %q
    server {
      local_dir = %q
    }
  }
%s
}
`, name, s.Host, s.Port, safetyMAC, cmdline, root, extra)
}

// expectChassisHistory checks every power operation the BMC performed so
// far, in order.
func expectChassisHistory(t *testing.T, s *testbed.IPMISim, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := s.ChassisHistory()
		if err != nil {
			return err
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("the BMC performed the power operations %q, want %q", got, want)
		}
		return nil
	}
}

// expectReprovisionedOnce checks that the BMC powered the machine on (the
// create) and power-cycled it once: ipmi_sim records a cycle as "power 0"
// at once and "power 1" a moment later.
func expectReprovisionedOnce(t *testing.T, s *testbed.IPMISim) resource.TestCheckFunc {
	return func(st *terraform.State) error {
		if expectChassisHistory(t, s, "power 1", "power 0", "power 1")(st) == nil {
			return nil
		}
		return expectChassisHistory(t, s, "power 1", "power 0")(st)
	}
}

// netbootRoot returns an existing netboot root directory and the paths of
// the node's iPXE script and pxelinux file in it.
func netbootRoot(t *testing.T) (root, ipxe, pxelinux string) {
	root = filepath.Join(t.TempDir(), "tftp")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, filepath.Join(root, "52-54-00-5a-fe-01.ipxe"), filepath.Join(root, "pxelinux.cfg", "01-52-54-00-5a-fe-01")
}

func fileContains(p, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("%s does not contain %q:\n%s", p, want, b)
		}
		return nil
	}
}

// TestAccNode_renameInPlace: a name is a label. Renaming a node with
// reprovision = true is an in-place update that touches neither the
// netboot files nor the machine's power.
func TestAccNode_renameInPlace(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, _ := netbootRoot(t)
	addr := "homelab_node.n1"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Destroy leaves power alone: still only the create's power on.
		CheckDestroy: expectChassisHistory(t, s, "power 1"),
		Steps: []resource.TestStep{{
			// Create boots the machine into its PXE configuration: one power on.
			Config: provisionedNode(s, "node1", root, "console=ttyS0", ""),
			Check:  resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(ipxe, "console=ttyS0")),
		}, {
			Config: provisionedNode(s, "node1-renamed", root, "console=ttyS0", ""),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("node1-renamed")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("name"), knownvalue.StringExact("node1-renamed")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("node1-renamed")),
			},
			// No power cycle, no second power on.
			Check: resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(ipxe, "console=ttyS0")),
		}, {
			Config:           provisionedNode(s, "node1-renamed", root, "console=ttyS0", ""),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}

// TestAccNode_pxeDriftNeverReprovisions: files deleted or edited on the
// netboot server are rewritten by an in-place update that does not touch
// the machine, even with reprovision = true; a netboot root that is gone
// (not mounted) is an error that keeps state; only a change of the
// configuration reprovisions.
func TestAccNode_pxeDriftNeverReprovisions(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, pxelinux := netbootRoot(t)
	addr := "homelab_node.n1"
	config := func(cmdline string) string { return provisionedNode(s, "node1", root, cmdline, "") }
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			for _, p := range []string{ipxe, pxelinux} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					return fmt.Errorf("%s still exists after destroy (%v)", p, err)
				}
			}
			// Destroy leaves power alone.
			return expectReprovisionedOnce(t, s)(nil)
		},
		Steps: []resource.TestStep{{
			Config: config("console=ttyS0"),
			Check:  resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(ipxe, "console=ttyS0")),
		}, {
			// Deleted on the server: rewritten, the machine is left alone.
			PreConfig: func() {
				if err := os.Remove(ipxe); err != nil {
					t.Fatal(err)
				}
			},
			Config: config("console=ttyS0"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(ipxe, "console=ttyS0")),
		}, {
			// Edited on the server: the same.
			PreConfig: func() {
				if err := os.WriteFile(pxelinux, []byte("DEFAULT local\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			Config: config("console=ttyS0"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(pxelinux, "debian/vmlinuz")),
		}, {
			// The netboot root is gone (an unmounted automount, a server
			// rebuilt): an error that keeps state, nothing written.
			PreConfig: func() {
				if err := os.Rename(root, root+".away"); err != nil {
					t.Fatal(err)
				}
			},
			Config:      config("console=ttyS0"),
			ExpectError: acctest.ErrorRe("Unable to read PXE files of node node1", "does not exist", root, "the state was kept"),
		}, {
			PreConfig: func() {
				if _, err := os.Stat(root); !os.IsNotExist(err) {
					t.Fatalf("the missing netboot root was recreated: %v", err)
				}
				if err := os.Rename(root+".away", root); err != nil {
					t.Fatal(err)
				}
			},
			Config:           config("console=ttyS0"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            expectChassisHistory(t, s, "power 1"),
		}, {
			// A changed configuration does reprovision: one power cycle.
			Config: config("console=ttyS0 auto=true"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(expectReprovisionedOnce(t, s), fileContains(ipxe, "auto=true")),
		}},
	})
}

// TestAccNode_failedCreateKeepsState: a create that fails after the power
// cycle (wait_for_ssh runs out) saves the node, so Terraform taints it:
// the next plan proposes a visible replacement, not a silent create.
func TestAccNode_failedCreateKeepsState(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, _ := netbootRoot(t)
	addr := "homelab_node.n1"
	// A port nothing listens on: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	config := provisionedNode(s, "node1", root, "console=ttyS0", fmt.Sprintf(`  wait_for_ssh {
    host    = "127.0.0.1"
    port    = %d
    timeout = "3s"
  }`, port))
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Destroying the tainted node removes its files and leaves power alone.
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(ipxe); !os.IsNotExist(err) {
				return fmt.Errorf("%s still exists after destroy (%v)", ipxe, err)
			}
			return expectChassisHistory(t, s, "power 1")(nil)
		},
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: acctest.ErrorRe("Unable to reach reprovisioned node node1 over SSH", "untaint"),
		}, {
			PreConfig: func() {
				// The machine was powered on into PXE once.
				if err := expectChassisHistory(t, s, "power 1")(nil); err != nil {
					t.Fatal(err)
				}
			},
			Config:             config,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)}},
		}},
	})
}

// TestAccNode_failedReprovisionIsNotRepeated: an update that reprovisions
// and then fails (wait_for_ssh runs out) keeps the new configuration in
// state, so the next apply does not power-cycle the machine again in the
// middle of its install.
func TestAccNode_failedReprovisionIsNotRepeated(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, _ := netbootRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	waitSSH := fmt.Sprintf(`  wait_for_ssh {
    host    = "127.0.0.1"
    port    = %d
    timeout = "3s"
  }`, port)
	config := provisionedNode(s, "node1", root, "console=ttyS0 auto=true", waitSSH)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             func(*terraform.State) error { return expectReprovisionedOnce(t, s)(nil) },
		Steps: []resource.TestStep{{
			Config: provisionedNode(s, "node1", root, "console=ttyS0", ""),
			Check:  expectChassisHistory(t, s, "power 1"),
		}, {
			Config:      config,
			ExpectError: acctest.ErrorRe("Unable to reach reprovisioned node node1 over SSH"),
		}, {
			PreConfig: func() {
				if err := expectReprovisionedOnce(t, s)(nil); err != nil {
					t.Fatal(err)
				}
			},
			// Nothing left to do: no second reprovision.
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            resource.ComposeAggregateTestCheckFunc(expectReprovisionedOnce(t, s), fileContains(ipxe, "auto=true")),
		}},
	})
}

// TestAccNode_pxeAddedNeverReprovisions: a running machine managed
// without a pxe block (imported, or installed by hand) that gets one, with
// reprovision = true and a reprovision_trigger, has its files written by
// the next apply and is not power-cycled into a reinstall. (An import leaves
// the same state: no pxe block; the import step of the testing framework
// cannot persist state with OpenTofu here, so the state is made by a create
// without pxe.)
func TestAccNode_pxeAddedNeverReprovisions(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, _ := netbootRoot(t)
	addr := "homelab_node.n1"
	running := ipmiNode(s, `  power = "on"`)
	withPXE := func(trigger string) string {
		return provisionedNode(s, "node1", root, "console=ttyS0", fmt.Sprintf("  reprovision_trigger = %q", trigger))
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             func(*terraform.State) error { return expectReprovisionedOnce(t, s)(nil) },
		Steps: []resource.TestStep{{
			Config: running,
			Check:  expectChassisHistory(t, s, "power 1"),
		}, {
			Config: withPXE("image-v1"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			// Still only the power on of the first step.
			Check: resource.ComposeAggregateTestCheckFunc(expectChassisHistory(t, s, "power 1"), fileContains(ipxe, "console=ttyS0")),
		}, {
			// Changing the trigger afterwards does reprovision.
			Config: withPXE("image-v2"),
			Check:  expectReprovisionedOnce(t, s),
		}},
	})
}

// TestAccNode_redfishDebugEnvLeaksNothing: with DEBUG_BMCLIB=true in the
// environment, bmclib would dump the Redfish login (password) and the
// session token to the provider's stdout, which Terraform logs. Through
// OpenTofu, the provider's stdout and stderr (this process's: the provider
// is served in-process) must hold neither.
func TestAccNode_redfishDebugEnvLeaksNothing(t *testing.T) {
	t.Setenv("DEBUG_BMCLIB", "true")
	s := acctest.StartRedfishSim(t, testbed.RedfishSimOptions{Password: "rf-Secret-4242-xyz"})
	config := fmt.Sprintf(`
provider "homelab" {
  bmc {
    username     = %q
    insecure_tls = true
  }
}

resource "homelab_node" "r1" {
  name  = "r1"
  power = "on"
  bmc {
    address  = %q
    port     = %d
    password = %q
  }
}
`, s.User, s.Host, s.Port, s.Password)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	func() {
		defer func() { os.Stdout, os.Stderr = stdout, stderr }()
		acctest.Test(t, resource.TestCase{
			PreCheck:                 func() { acctest.PreCheck(t) },
			ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config: config,
				Check: func(*terraform.State) error {
					if !s.PowerOn() {
						return fmt.Errorf("the Redfish simulator is not powered on")
					}
					return nil
				},
			}},
		})
	}()
	_ = w.Close()
	<-done
	_ = r.Close()
	tokens := s.Tokens()
	if len(tokens) == 0 {
		t.Fatal("the simulator issued no session token: the test proves nothing")
	}
	masked := strings.ReplaceAll(out.String(), s.Password, "[PASSWORD]")
	for _, tok := range tokens {
		masked = strings.ReplaceAll(masked, tok, "[SESSION TOKEN]")
	}
	for _, marker := range []string{"[PASSWORD]", "[SESSION TOKEN]", "SessionService/Sessions"} {
		if i := strings.Index(masked, marker); i >= 0 {
			t.Errorf("%s in the provider's output:\n%s", marker, masked[max(0, i-300):min(len(masked), i+300)])
		}
	}
}
