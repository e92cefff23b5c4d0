package zfs_test

import (
	"fmt"
	"regexp"
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

// pool renders a homelab_zpool named tank on the VM with the given body.
func pool(vm *testbed.ZFSVM, body string) string {
	return acctest.VMProvider(vm) + fmt.Sprintf(`
resource "homelab_zpool" "tank" {
  name = "tank"
  %s
%s
}
`, acctest.VMSSH(vm), body)
}

func vdev(role, typ string, disks ...string) string {
	return fmt.Sprintf("  vdev {\n    role  = %q\n    type  = %q\n    disks = [%s]\n  }\n", role, typ, `"`+strings.Join(disks, `", "`)+`"`)
}

// poolGone asks the VM whether the pool still exists.
func poolGone(t *testing.T, vm *testbed.ZFSVM, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		out := acctest.VMRun(t, vm, fmt.Sprintf("zpool list -H -o name %s 2>&1 || true", name))
		if !strings.Contains(out, "no such pool") {
			return fmt.Errorf("pool %s still exists on the VM: %s", name, out)
		}
		return nil
	}
}

func importID(vm *testbed.ZFSVM, name string) string {
	return fmt.Sprintf("%s:%d:%s", vm.SSHHost, vm.SSHPort, name)
}

var tankAddr = "homelab_zpool.tank"

func TestAccZPool_mirrorLogCacheGrowAndShrink(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	props := `
  properties = {
    ashift   = "12"
    autotrim = "on"
    comment  = "media pool"
  }
  filesystem_properties = {
    compression = "lz4"
    atime       = "off"
  }
`
	base := props + vdev("data", "mirror", d[0], d[1]) + vdev("log", "stripe", d[2]) + vdev("cache", "stripe", d[3])
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: pool(vm, base) + `
data "homelab_zpool" "tank" {
  name = homelab_zpool.tank.name
  ` + acctest.VMSSH(vm) + `
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status"), knownvalue.ListSizeExact(3)),
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status").AtSliceIndex(0).AtMapKey("type"), knownvalue.StringExact("mirror")),
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status").AtSliceIndex(1).AtMapKey("role"), knownvalue.StringExact("log")),
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status").AtSliceIndex(2).AtMapKey("role"), knownvalue.StringExact("cache")),
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("size"), knownvalue.NotNull()),
				statecheck.ExpectKnownValue("data.homelab_zpool.tank", tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
				statecheck.ExpectKnownValue("data.homelab_zpool.tank", tfjsonpath.New("problems"), knownvalue.ListSizeExact(0)),
				statecheck.ExpectKnownValue("data.homelab_zpool.tank", tfjsonpath.New("vdevs"), knownvalue.ListSizeExact(3)),
			},
			Check: func(*terraform.State) error {
				got := acctest.VMRun(t, vm, "zpool get -H -o value ashift,autotrim tank; zfs get -H -o value compression,atime tank")
				if got != "12\non\nlz4\noff" {
					return fmt.Errorf("properties on the VM: %q", got)
				}
				return nil
			},
		}, {
			ResourceName:            tankAddr,
			ImportState:             true,
			ImportStateId:           importID(vm, "tank"),
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts", "allocated", "free", "fragmentation"}, // capacity moves as ZFS syncs
		}, {
			// A second mirror: zpool add, in place.
			Config: pool(vm, base+vdev("data", "mirror", d[4], d[5])),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionUpdate)}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status"), knownvalue.ListSizeExact(4)),
			},
		}, {
			// Cache removed, in place.
			Config: pool(vm, props+vdev("data", "mirror", d[0], d[1])+vdev("log", "stripe", d[2])+vdev("data", "mirror", d[4], d[5])),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionUpdate)}},
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "zpool status tank"); strings.Contains(out, "cache") {
					return fmt.Errorf("the cache device is still there:\n%s", out)
				}
				return nil
			},
		}},
	})
}

func TestAccZPool_attachAndRaidzExpansion(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	two := func(a, b string) string {
		return pool(vm, a) + fmt.Sprintf(`
resource "homelab_zpool" "wide" {
  name = "wide"
  %s
%s
}
`, acctest.VMSSH(vm), b)
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			if err := poolGone(t, vm, "tank")(s); err != nil {
				return err
			}
			return poolGone(t, vm, "wide")(s)
		},
		Steps: []resource.TestStep{{
			Config: two(vdev("data", "stripe", d[0]), vdev("data", "raidz1", d[2], d[3], d[4])),
		}, {
			// Single disk to mirror (zpool attach) and raidz1 grown by one disk (raidz expansion).
			Config: two(vdev("data", "mirror", d[0], d[1]), vdev("data", "raidz1", d[2], d[3], d[4], d[5])),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("homelab_zpool.wide", plancheck.ResourceActionUpdate)}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("status").AtSliceIndex(0).AtMapKey("type"), knownvalue.StringExact("mirror")),
				statecheck.ExpectKnownValue("homelab_zpool.wide", tfjsonpath.New("status").AtSliceIndex(0).AtMapKey("disks"), knownvalue.ListSizeExact(4)),
				statecheck.ExpectKnownValue("homelab_zpool.wide", tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
			},
		}, {
			// A raidz's parity cannot change: refused at plan time, nothing destroyed.
			Config:      two(vdev("data", "mirror", d[0], d[1]), vdev("data", "raidz2", d[2], d[3], d[4], d[5])),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Change needs a new pool wide.*cannot\s+turn\s+a\s+raidz1\s+into\s+a\s+raidz2.*allow_replace`),
		}},
	})
}

func TestAccZPool_driftIsShownAndCorrected(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	cfg := pool(vm, `
  properties            = { autotrim = "on" }
  filesystem_properties = { compression = "zstd" }
`+vdev("data", "mirror", d[0], d[1]))
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: cfg,
		}, {
			// Out of band: a property changed, the root dataset's compression
			// inherited back to the default, and a cache device added.
			PreConfig: func() {
				acctest.VMRun(t, vm, fmt.Sprintf("zpool set autotrim=off tank && zfs inherit compression tank && zpool add tank cache %s", d[2]))
			},
			Config: cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionUpdate)}},
			Check: func(*terraform.State) error {
				got := acctest.VMRun(t, vm, "zpool get -H -o value autotrim tank; zfs get -H -o value,source compression tank; zpool status tank | grep -c cache || true")
				if got != "on\nzstd\tlocal\n0" {
					return fmt.Errorf("drift not corrected on the VM: %q", got)
				}
				return nil
			},
		}, {
			// Destroyed out of band: gone from state, planned for creation.
			PreConfig:          func() { acctest.VMRun(t, vm, "zpool destroy tank") },
			Config:             cfg,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}, {
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
			},
		}},
	})
}

func TestAccZPool_failedDiskDegradesWithoutReplacementThenResilvers(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: pool(vm, "force_destroy = true\n"+vdev("data", "mirror", d[0], d[1])),
			Check: func(*terraform.State) error {
				// Some data to resilver.
				acctest.VMRun(t, vm, "dd if=/dev/urandom of=/tank/blob bs=1M count=32 status=none && sync")
				return nil
			},
		}, {
			// The second disk dies (hot-unplugged through QMP): DEGRADED, and
			// the plan proposes nothing, least of all a new pool.
			PreConfig: func() {
				if err := vm.UnplugDisk(acctest.Ctx(t), 2); err != nil {
					t.Fatal(err)
				}
				acctest.VMRun(t, vm, "zpool scrub -w tank >/dev/null 2>&1 || true; zpool status tank >/dev/null")
			},
			RefreshState: true,
			Check:        resource.TestCheckResourceAttr(tankAddr, "health", "DEGRADED"),
		}, {
			Config: pool(vm, "force_destroy = true\n"+vdev("data", "mirror", d[0], d[1])),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
		}, {
			// The disk is replaced in configuration: zpool replace, resilver, ONLINE.
			Config: pool(vm, "force_destroy = true\n"+vdev("data", "mirror", d[0], d[2])),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionUpdate)}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
			},
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "sha256sum /tank/blob >/dev/null && zpool status -x tank"); !strings.Contains(out, "is healthy") {
					return fmt.Errorf("pool not healthy after the resilver: %s", out)
				}
				return nil
			},
		}},
	})
}

func TestAccZPool_destroyRefusedWhileItHoldsData(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: pool(vm, vdev("data", "stripe", d[0])),
			Check: func(*terraform.State) error {
				acctest.VMRun(t, vm, "zfs create tank/family-photos")
				return nil
			},
		}, {
			Config:      pool(vm, vdev("data", "stripe", d[0])),
			Destroy:     true,
			ExpectError: regexp.MustCompile(`(?s)Unable to destroy ZFS pool tank.*tank/family-photos.*force_destroy`),
		}, {
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "zfs list -H -o name tank/family-photos"); out != "tank/family-photos" {
					return fmt.Errorf("the dataset is gone: %q", out)
				}
				return nil
			},
			Config: pool(vm, `force_destroy = true`+"\n"+vdev("data", "stripe", d[0])),
		}},
	})
}

func TestAccZPool_refusesDisksInUseWithoutForce(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	acctest.VMRun(t, vm, fmt.Sprintf("zpool create -f old %s && zpool export old", d[0]))
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config:      pool(vm, vdev("data", "stripe", d[0])),
			ExpectError: regexp.MustCompile(`(?s)Unable to create ZFS pool tank.*old.*force = true`),
		}, {
			Config: pool(vm, "force = true\n"+vdev("data", "stripe", d[0])),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(tankAddr, tfjsonpath.New("health"), knownvalue.StringExact("ONLINE")),
			},
		}},
	})
}
