package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// ipmiNode renders a homelab_node on an ipmi_sim BMC.
func ipmiNode(s *testbed.IPMISim, body string) string {
	return acctest.BMCProvider(s.User, s.Password) + fmt.Sprintf(`
resource "homelab_node" "n1" {
  name = "node1"
  bmc {
    address  = %q
    port     = %d
    protocol = "ipmi"
  }
%s
}
`, s.Host, s.Port, body)
}

// expectPower checks the BMC's own view of the power state.
func expectPower(t *testing.T, s *testbed.IPMISim, on bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := s.PowerOn(acctest.Ctx(t))
		if err != nil {
			return err
		}
		if got != on {
			return fmt.Errorf("ipmi_sim reports power on = %t, want %t", got, on)
		}
		return nil
	}
}

// expectBootFlags checks the boot flags the BMC holds.
func expectBootFlags(t *testing.T, s *testbed.IPMISim, device string, persistent bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		dev, pers, _, valid, err := s.BootFlags(acctest.Ctx(t))
		if err != nil {
			return err
		}
		if !valid || dev != device || pers != persistent {
			return fmt.Errorf("ipmi_sim boot flags: device %q persistent %t valid %t, want %q persistent %t", dev, pers, valid, device, persistent)
		}
		return nil
	}
}

func TestAccNode_ipmiPowerBootDriftImport(t *testing.T) {
	s := acctest.StartIPMISim(t)
	addr := "homelab_node.n1"
	persistentPXE := `  power = "on"
  boot {
    device     = "pxe"
    persistent = true
  }`
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// power_off_on_destroy is set in the last step: destroy powers it off.
		CheckDestroy: expectPower(t, s, false),
		Steps: []resource.TestStep{{
			Config: ipmiNode(s, persistentPXE),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("bmc_protocol"), knownvalue.StringExact("ipmi")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("node1")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(expectPower(t, s, true), expectBootFlags(t, s, "pxe", true)),
		}, {
			// Someone powers it off with ipmitool: the plan shows it, apply corrects it.
			PreConfig: func() {
				if _, err := s.Ipmitool(acctest.Ctx(t), "chassis", "power", "off"); err != nil {
					t.Fatal(err)
				}
			},
			Config: ipmiNode(s, persistentPXE),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("power"), knownvalue.StringExact("on")),
			}},
			Check: expectPower(t, s, true),
		}, {
			// A persistent override changed out of band is drift too.
			PreConfig: func() {
				if _, err := s.Ipmitool(acctest.Ctx(t), "chassis", "bootdev", "disk"); err != nil {
					t.Fatal(err)
				}
			},
			Config: ipmiNode(s, persistentPXE),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: expectBootFlags(t, s, "pxe", true),
		}, {
			// A one-shot override is set...
			Config: ipmiNode(s, `  power = "on"
  boot {
    device = "disk"
  }`),
			Check: expectBootFlags(t, s, "disk", false),
		}, {
			// ...and once the machine consumed it by booting, no drift.
			PreConfig: func() {
				if err := s.SimulateBoot(acctest.Ctx(t)); err != nil {
					t.Fatal(err)
				}
			},
			Config: ipmiNode(s, `  power = "on"
  boot {
    device = "disk"
  }`),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}, {
			Config:            ipmiNode(s, `  power = "off"`),
			ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(addr, tfjsonpath.New("power_state"), knownvalue.StringExact("off"))},
			Check:             expectPower(t, s, false),
		}, {
			ResourceName:      addr,
			ImportState:       true,
			ImportStateId:     fmt.Sprintf("node1@%s:%d", s.Host, s.Port),
			ImportStateVerify: true,
			// The import ID carries no protocol; the BMC's answer is the same.
			ImportStateVerifyIgnore: []string{"bmc.protocol", "timeouts"},
		}, {
			Config: ipmiNode(s, `  power = "on"
  power_off_on_destroy = true`),
			Check: expectPower(t, s, true),
		}, {
			Config: ipmiNode(s, `  power = "on"
  power_off_on_destroy = true`),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}

// TestAccNode_ipmiErrors: a wrong password is a clear error; a BMC that
// stops answering is an error that keeps state; destroy leaves power alone.
func TestAccNode_ipmiErrors(t *testing.T) {
	s := acctest.StartIPMISim(t)
	config := ipmiNode(s, `  power = "on"`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Destroy leaves the machine powered as it is by default.
		CheckDestroy: expectPower(t, s, true),
		Steps: []resource.TestStep{{
			Config:      strings.Replace(config, fmt.Sprintf("password = %q", s.Password), `password = "wrong-password"`, 1),
			ExpectError: acctest.ErrorRe("Unable to", "node node1", "username or password"),
		}, {
			Config: config,
			Check:  expectPower(t, s, true),
		}, {
			PreConfig: func() {
				if err := s.Pause(); err != nil {
					t.Fatal(err)
				}
			},
			Config:      config,
			ExpectError: acctest.ErrorRe("Unable to read power state of node node1", "did not answer", "the state was kept"),
		}, {
			PreConfig: func() {
				if err := s.Resume(); err != nil {
					t.Fatal(err)
				}
			},
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}

// TestAccNode_redfish drives two machines through the Redfish simulator:
// r1 with a stored (sensitive) password, whose power drift is corrected and
// whose one-shot boot override is consumed without drift; r2 with a
// write-only password, which never reaches the state.
func TestAccNode_redfish(t *testing.T) {
	acctest.RequireWriteOnly(t)
	s1 := acctest.StartRedfishSim(t, testbed.RedfishSimOptions{})
	s2 := acctest.StartRedfishSim(t, testbed.RedfishSimOptions{Password: "write-only-pass-42"})
	r1 := "homelab_node.r1"
	config := func(r1Body string) string {
		return fmt.Sprintf(`
provider "homelab" {
  bmc {
    username     = %q
    insecure_tls = true
  }
}

resource "homelab_node" "r1" {
  name = "r1"
  bmc {
    address  = %q
    port     = %d
    password = %q
  }
%s
}

resource "homelab_node" "r2" {
  name  = "r2"
  power = "on"
  bmc {
    address             = %q
    port                = %d
    password_wo         = %q
    password_wo_version = "1"
  }
}
`, s1.User, s1.Host, s1.Port, s1.Password, r1Body, s2.Host, s2.Port, s2.Password)
	}
	oneShot := func(power string) string {
		return fmt.Sprintf(`  power = %q
  boot {
    device = "pxe"
    efi    = true
  }`, power)
	}
	override := func(target, enabled, mode string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if t, e, m := s1.BootOverride(); t != target || e != enabled || m != mode {
				return fmt.Errorf("Redfish boot override = %s/%s/%s, want %s/%s/%s", t, e, m, target, enabled, mode)
			}
			return nil
		}
	}
	power := func(s *testbed.RedfishSim, on bool) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if s.PowerOn() != on {
				return fmt.Errorf("Redfish simulator at %s: power on = %t, want %t", s.URL, !on, on)
			}
			return nil
		}
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Destroy leaves machines powered as they are.
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(power(s1, true), power(s2, true)),
		Steps: []resource.TestStep{{
			Config: config(oneShot("off")),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("bmc_protocol"), knownvalue.StringExact("redfish")),
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("power_state"), knownvalue.StringExact("off")),
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("vendor"), knownvalue.StringExact(testbed.RedfishSimManufacturer)),
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("model"), knownvalue.StringExact(testbed.RedfishSimModel)),
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("serial"), knownvalue.StringExact(testbed.RedfishSimSerial)),
				statecheck.ExpectKnownValue(r1, tfjsonpath.New("bmc_firmware"), knownvalue.StringExact(testbed.RedfishSimBMCFirmware)),
				statecheck.ExpectSensitiveValue(r1, tfjsonpath.New("bmc").AtMapKey("password")),
				statecheck.ExpectKnownValue("homelab_node.r2", tfjsonpath.New("bmc").AtMapKey("password_wo"), knownvalue.Null()),
				statecheck.ExpectKnownValue("homelab_node.r2", tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				override("Pxe", "Once", "UEFI"), power(s1, false), power(s2, true),
				func(st *terraform.State) error {
					for name, rs := range st.RootModule().Resources {
						for k, v := range rs.Primary.Attributes {
							if strings.Contains(v, s2.Password) {
								return fmt.Errorf("state attribute %s.%s holds the write-only password", name, k)
							}
						}
					}
					return nil
				},
			),
		}, {
			// Powering on boots the machine, which consumes the one-shot
			// override: no drift afterwards.
			Config: config(oneShot("on")),
			Check: resource.ComposeAggregateTestCheckFunc(power(s1, true), override("Pxe", "Disabled", "UEFI"),
				func(*terraform.State) error {
					if s1.Boots() != 1 {
						return fmt.Errorf("the machine booted %d times, want 1", s1.Boots())
					}
					return nil
				}),
		}, {
			// Someone powers r1 off through its BMC: the plan shows it.
			PreConfig: func() { s1.SetPower(false) },
			Config:    config(oneShot("on")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(r1, plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("homelab_node.r2", plancheck.ResourceActionNoop),
			}},
			Check: power(s1, true),
		}, {
			Config:           config(oneShot("on")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}

// TestAccNode_pxeFilesDriftAndRaspberryPi writes boot files to a local
// directory and, for a Raspberry Pi, over SSH; edits on the server are
// drift, destroy removes the files.
func TestAccNode_pxeFilesDriftAndRaspberryPi(t *testing.T) {
	sshd := acctest.SharedSSHD(t)
	local := filepath.Join(t.TempDir(), "tftp root")
	remoteRoot := filepath.Join(t.TempDir(), "srv", "tftp")
	mac := "52:54:00:AB:CD:01"
	ipxe := filepath.Join(local, "52-54-00-ab-cd-01.ipxe")
	pxelinux := filepath.Join(local, "pxelinux.cfg", "01-52-54-00-ab-cd-01")
	piDir := filepath.Join(remoteRoot, "1a2b3c4d")
	// Netboot roots exist on a netboot server; the provider never creates them.
	for _, d := range []string{local, remoteRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	config := func(cmdline string) string {
		return acctest.ProviderSSH(sshd, "root") + fmt.Sprintf(`
resource "homelab_node" "x86" {
  name = "x86"
  pxe {
    mac     = %q
    kernel  = "debian/vmlinuz"
    initrd  = ["debian/initrd.gz"]
    cmdline = %q
    server {
      local_dir = %q
    }
  }
}

resource "homelab_node" "pi" {
  name = "pi4"
  pxe {
    root    = %q
    cmdline = "console=serial0,115200 root=/dev/nfs nfsroot=10.0.0.2:/srv/pi4,vers=4 rw ip=dhcp"
    raspberrypi {
      serial = "1A2B3C4D"
      config = "arm_64bit=1\nenable_uart=1\n"
    }
    server {
      ssh {
        host = %q
        port = %d
      }
    }
  }
}
`, mac, cmdline, local, remoteRoot, sshd.Addr, sshd.Port)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		return string(b)
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			for _, p := range []string{ipxe, pxelinux, filepath.Join(piDir, "cmdline.txt"), filepath.Join(piDir, "config.txt")} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					return fmt.Errorf("%s still exists after destroy (%v)", p, err)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config("console=ttyS0 auto=true"),
			Check: func(*terraform.State) error {
				if got := read(ipxe); !strings.Contains(got, "debian/vmlinuz") || !strings.Contains(got, "console=ttyS0 auto=true") {
					return fmt.Errorf("iPXE script:\n%s", got)
				}
				if got := read(pxelinux); !strings.Contains(got, "debian/initrd.gz") {
					return fmt.Errorf("pxelinux file:\n%s", got)
				}
				if got := read(filepath.Join(piDir, "config.txt")); got != "arm_64bit=1\nenable_uart=1\n" {
					return fmt.Errorf("Pi config.txt: %q", got)
				}
				if got := read(filepath.Join(piDir, "cmdline.txt")); !strings.Contains(got, "nfsroot=10.0.0.2:/srv/pi4") {
					return fmt.Errorf("Pi cmdline.txt: %q", got)
				}
				return nil
			},
		}, {
			// Edited on the server, and a Pi file deleted: both show in the plan.
			PreConfig: func() {
				if err := os.WriteFile(ipxe, []byte("#!ipxe\nshell\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(piDir, "config.txt")); err != nil {
					t.Fatal(err)
				}
			},
			Config: config("console=ttyS0 auto=true"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction("homelab_node.x86", plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("homelab_node.pi", plancheck.ResourceActionUpdate),
			}},
			Check: func(*terraform.State) error {
				if got := read(ipxe); !strings.Contains(got, "debian/vmlinuz") {
					return fmt.Errorf("iPXE script not restored:\n%s", got)
				}
				if read(filepath.Join(piDir, "config.txt")) == "" {
					return fmt.Errorf("Pi config.txt not restored")
				}
				return nil
			},
		}, {
			Config: config("console=ttyS0 auto=true priority=critical"),
			Check: func(*terraform.State) error {
				if got := read(pxelinux); !strings.Contains(got, "priority=critical") {
					return fmt.Errorf("pxelinux file not updated:\n%s", got)
				}
				return nil
			},
		}, {
			Config:           config("console=ttyS0 auto=true priority=critical"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}

// TestAccNode_pxeEndToEnd: ipmi_sim is the BMC of a real qemu VM. The
// resource renders the node's iPXE script into the directory qemu serves
// over TFTP, sets a one-shot PXE boot and powers the VM on through IPMI;
// the VM boots the kernel and initrd named in the script and prints the
// MAC it was booted for on its serial console.
func TestAccNode_pxeEndToEnd(t *testing.T) {
	acctest.PreCheck(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	kernel, initrd, err := testbed.EnsurePXEBootFiles(ctx, t.Logf)
	if err != nil {
		t.Fatalf("preparing the PXE kernel and initramfs: %v", err)
	}
	tftp := t.TempDir()
	for src, dst := range map[string]string{kernel: "vmlinuz", initrd: "initrd.img"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tftp, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What a user's DHCP server hands out: a generic script that chains
	// the per-MAC script the provider writes.
	if err := os.WriteFile(filepath.Join(tftp, "boot.ipxe"), []byte("#!ipxe\nchain ${net0/mac:hexhyp}.ipxe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vm, err := testbed.StartPXEVM(ctx, t.TempDir(), testbed.PXEVMOptions{TFTPDir: tftp, BootFile: "boot.ipxe", Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting the PXE VM: %v", err)
	}
	t.Cleanup(func() { _ = vm.Stop() })
	bootif := "01-" + strings.ReplaceAll(strings.ToLower(vm.MAC), ":", "-")
	var booted time.Duration
	config := func(node string) string {
		return acctest.BMCProvider(vm.BMC.User, vm.BMC.Password) + fmt.Sprintf(`
resource "homelab_node" "vm" {
  name        = "pxe-vm"
  reprovision = true
  bmc {
    address  = %q
    port     = %d
    protocol = "ipmi"
  }
  pxe {
    mac     = %q
    kernel  = "vmlinuz"
    initrd  = ["initrd.img"]
    cmdline = "console=ttyS0 homelab.node=%s"
    server {
      local_dir = %q
    }
  }
}
`, vm.BMC.Host, vm.BMC.Port, vm.MAC, node, tftp)
	}
	bootedAs := func(node string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer wcancel()
			// The console log starts empty at each power on; wait for this
			// boot's own command line.
			// The kernel echoes its command line early; then init prints
			// the marker.
			log, err := vm.WaitConsole(wctx, "homelab.node="+node)
			if err == nil {
				log, err = vm.WaitConsole(wctx, testbed.PXEBootMarker)
			}
			if err != nil {
				return fmt.Errorf("the VM did not boot the node's kernel: %v\nconsole:\n%s", err, log)
			}
			i := strings.Index(log, testbed.PXEBootMarker)
			if i < 0 {
				return fmt.Errorf("no boot marker on the console:\n%s", log)
			}
			line := log[i:]
			if j := strings.IndexByte(line, '\n'); j > 0 {
				line = line[:j]
			}
			if !strings.Contains(line, "BOOTIF="+bootif) || !strings.Contains(line, "homelab.node="+node) {
				return fmt.Errorf("booted for the wrong MAC or command line: %s (want BOOTIF=%s)", line, bootif)
			}
			return nil
		}
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config("pxe-vm"),
			Check: resource.ComposeAggregateTestCheckFunc(bootedAs("pxe-vm"), func(*terraform.State) error {
				booted = time.Since(start)
				return nil
			}),
		}, {
			// A changed command line is a new PXE configuration: with
			// reprovision, apply boots the machine into it again (it
			// powered itself off after the first boot).
			Config: config("pxe-vm-2"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction("homelab_node.vm", plancheck.ResourceActionUpdate)}},
			Check: bootedAs("pxe-vm-2"),
		}},
	})
	t.Logf("end-to-end PXE: apply, boot and console proof in %s", booted.Round(time.Second))
}
