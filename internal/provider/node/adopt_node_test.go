package node_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// adoptNodeProvider is the terraform block and a provider whose bmc block
// holds the credentials and the protocol, as a homelab with one kind of
// BMC would write it: an import ID carries no protocol.
func adoptNodeProvider(s *testbed.IPMISim) string {
	return acctest.TerraformBlock() + fmt.Sprintf(`
provider "homelab" {
  bmc {
    username = %q
    password = %q
    protocol = "ipmi"
  }
}
`, s.User, s.Password)
}

// adoptNodeMinimal is a node with only what it needs: its name and its
// BMC's address.
func adoptNodeMinimal(s *testbed.IPMISim) string {
	return adoptNodeProvider(s) + fmt.Sprintf(`
resource "homelab_node" "n1" {
  name = "node1"
  bmc {
    address = %q
    port    = %d
  }
}
`, s.Host, s.Port)
}

// adoptNodeFull sets every attribute a running machine can have, among
// them reprovision = true with a reprovision_trigger and a pxe block: what
// a user who netboots their machines writes when adopting one.
// wait_for_ssh points at a port nothing listens on, so a reprovision would
// also fail the apply.
func adoptNodeFull(s *testbed.IPMISim, root string, closedPort int) string {
	return adoptNodeProvider(s) + fmt.Sprintf(`
resource "homelab_node" "n1" {
  name                 = "node1"
  power                = "on"
  power_off_on_destroy = false
  reprovision          = true
  reprovision_trigger  = "debian-12.7"
  bmc {
    address      = %q
    port         = %d
    username     = %q
    password     = %q
    protocol     = "ipmi"
    insecure_tls = false
    timeout      = "30s"
  }
  boot {
    device     = "disk"
    persistent = true
    efi        = false
  }
  pxe {
    mac     = %q
    kernel  = "debian/vmlinuz"
    initrd  = ["debian/initrd.gz"]
    cmdline = "console=ttyS0 auto=true"
    server {
      local_dir = %q
    }
  }
  wait_for_ssh {
    host    = "127.0.0.1"
    port    = %d
    timeout = "5s"
  }
  timeouts {
    create = "10m"
    update = "10m"
    delete = "5m"
  }
}
`, s.Host, s.Port, s.User, s.Password, safetyMAC, root, closedPort)
}

// A machine set up by hand (powered on with ipmitool, a persistent boot
// override to disk, as one does after installing it) is adopted with
// import {} blocks into a minimal and into a full configuration, with
// `import`, and with -generate-config-out: no plan replaces it, and
// applying either configuration neither power-cycles nor reprovisions it,
// though the full one has reprovision = true and a pxe block. The BMC's
// own record of chassis control requests proves it.
func TestAccAdopt_handMadeNodeNeverPowerCycled(t *testing.T) {
	s := acctest.StartIPMISim(t)
	root, ipxe, pxelinux := netbootRoot(t)
	// The netboot server already serves the homelab's chain script, which
	// is not the node's to touch.
	chain := filepath.Join(root, "boot.ipxe")
	chainText := "#!ipxe\nchain ${net0/mac:hexhyp}.ipxe\n"
	if err := os.WriteFile(chain, []byte(chainText), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := acctest.Ctx(t)
	if err := s.SetPower(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ipmitool(ctx, "chassis", "bootdev", "disk", "options=persistent"); err != nil {
		t.Fatal(err)
	}
	if err := expectBootFlags(t, s, "disk", true)(nil); err != nil {
		t.Fatalf("the hand-made setup: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	addr := "homelab_node.n1"
	id := fmt.Sprintf("node1@%s:%d", s.Host, s.Port)
	minimal, full := adoptNodeMinimal(s), adoptNodeFull(s, root, closedPort)
	// untouched: the BMC did nothing to the machine after the user's power
	// on, the persistent override is the user's, and the chain script is
	// as the user wrote it.
	untouched := func(*terraform.State) error {
		if err := expectChassisHistory(t, s, "power 1")(nil); err != nil {
			return err
		}
		if err := expectPower(t, s, true)(nil); err != nil {
			return err
		}
		if err := expectBootFlags(t, s, "disk", true)(nil); err != nil {
			return err
		}
		return fileContains(chain, chainText)(nil)
	}
	update := func(extra ...plancheck.PlanCheck) []plancheck.PlanCheck {
		return append([]plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}, extra...)
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Destroy forgets the node and removes its own netboot files;
		// the machine stays on (power_off_on_destroy = false).
		CheckDestroy: func(st *terraform.State) error {
			if _, err := os.Stat(ipxe); !os.IsNotExist(err) {
				return fmt.Errorf("the node's iPXE script is still there after destroy (%v)", err)
			}
			return untouched(st)
		},
		Steps: []resource.TestStep{{
			// An import {} block into the minimal configuration: the
			// imported power (managed, "on") is left unmanaged, an update
			// that powers nothing.
			Config: minimal, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
			ExpectNonEmptyPlan: true,
			ImportPlanChecks: resource.ImportPlanChecks{PreApply: update(
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("power"), knownvalue.Null()),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
			)},
		}, {
			Config: minimal, ResourceName: addr, ImportState: true,
			ImportStateId: id, ImportStatePersist: true,
		}, {
			// An import {} block into the full configuration: an update
			// (boot override, pxe block), never a replacement, and the
			// planned power state is the machine's.
			Config: full, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
			ExpectNonEmptyPlan: true,
			ImportPlanChecks: resource.ImportPlanChecks{PreApply: update(
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
			)},
		}, {
			// -generate-config-out: the configuration written from the
			// machine plans no change.
			Config: adoptNodeProvider(s), ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id, GenerateConfig: true,
		}, {
			Config:           minimal,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update()},
			Check:            untouched,
		}, {
			Config:           minimal,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            untouched,
		}, {
			// The full configuration: the node's netboot files are
			// written, the boot override is set to what it already is, and
			// the machine is not power-cycled into PXE.
			Config:           full,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update()},
			Check: resource.ComposeAggregateTestCheckFunc(untouched,
				fileContains(ipxe, "console=ttyS0 auto=true"), fileContains(pxelinux, "debian/vmlinuz")),
		}, {
			Config:           full,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            untouched,
		}},
	})
}

// redfishCall sends one request to the Redfish simulator as a user's
// script (curl, redfishtool) would: HTTP basic authentication, the
// simulator's certificate trusted.
func redfishCall(t *testing.T, s *testbed.RedfishSim, method, path string, body any) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM) {
		t.Fatal("the Redfish simulator's certificate does not parse")
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(acctest.Ctx(t), method, s.URL+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.User, s.Password)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out)
	}
}

// The same on a Redfish BMC: the machine powered on through the Reset
// action and given a continuous UEFI boot override to its disk with a PATCH
// of the system, then adopted. The simulator counts the machine's boots:
// one, the user's, through every import, plan and apply.
func TestAccAdopt_handMadeRedfishNodeNeverPowerCycled(t *testing.T) {
	s := acctest.StartRedfishSim(t, testbed.RedfishSimOptions{})
	root, ipxe, _ := netbootRoot(t)
	redfishCall(t, s, http.MethodPost, "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"})
	redfishCall(t, s, http.MethodPatch, "/redfish/v1/Systems/1", map[string]any{"Boot": map[string]any{
		"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "UEFI"}})
	untouched := func(*terraform.State) error {
		if n := s.Boots(); n != 1 {
			return fmt.Errorf("the machine booted %d times, want 1 (the user's power on)", n)
		}
		if !s.PowerOn() {
			return fmt.Errorf("the machine is off")
		}
		if tg, en, mode := s.BootOverride(); tg != "Hdd" || en != "Continuous" || mode != "UEFI" {
			return fmt.Errorf("Redfish boot override = %s/%s/%s, want Hdd/Continuous/UEFI", tg, en, mode)
		}
		return nil
	}
	if err := untouched(nil); err != nil {
		t.Fatalf("the hand-made setup: %v", err)
	}
	provider := acctest.TerraformBlock() + fmt.Sprintf(`
provider "homelab" {
  bmc {
    username     = %q
    password     = %q
    protocol     = "redfish"
    insecure_tls = true
  }
}
`, s.User, s.Password)
	node := func(body string) string {
		return provider + fmt.Sprintf(`
resource "homelab_node" "n1" {
  name = "node1"
  bmc {
    address = %q
    port    = %d
  }
%s
}
`, s.Host, s.Port, body)
	}
	minimal := node("")
	full := node(fmt.Sprintf(`  power               = "on"
  reprovision         = true
  reprovision_trigger = "debian-12.7"
  boot {
    device     = "disk"
    persistent = true
    efi        = true
  }
  pxe {
    mac         = %q
    ipxe_script = "#!ipxe\nkernel http://boot/vmlinuz\nboot\n"
    server {
      local_dir = %q
    }
  }`, safetyMAC, root))
	addr := "homelab_node.n1"
	id := fmt.Sprintf("node1@%s:%d", s.Host, s.Port)
	update := []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             untouched,
		Steps: []resource.TestStep{{
			Config: minimal, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
			ExpectNonEmptyPlan: true, ImportPlanChecks: resource.ImportPlanChecks{PreApply: update},
		}, {
			Config: full, ResourceName: addr, ImportState: true,
			ImportStateId: id, ImportStatePersist: true,
		}, {
			// Only the boot override and the pxe block are new.
			Config: full, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
			ExpectNonEmptyPlan: true, ImportPlanChecks: resource.ImportPlanChecks{PreApply: update},
		}, {
			Config: provider, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id, GenerateConfig: true,
		}, {
			Config:           full,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update},
			Check:            resource.ComposeAggregateTestCheckFunc(untouched, fileContains(ipxe, "kernel http://boot/vmlinuz")),
		}, {
			Config:           full,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            untouched,
		}, {
			Config:           minimal,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: update},
			Check:            untouched,
		}},
	})
}
