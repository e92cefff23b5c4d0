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

// Tests for issue 12: nothing the provider reads may make it destroy data.

// secretsDataset is tank/secrets, its own encryption root, key in config.
func secretsDataset(vm *testbed.ZFSVM) string {
	return dataset(vm, "secrets", `  name = "tank/secrets"
  encryption {
    format         = "passphrase"
    key_wo         = "correct horse battery staple"
    key_wo_version = 1
  }`)
}

// appDataset is tank/secrets/app: no encryption block, it inherits tank/secrets'.
func appDataset(vm *testbed.ZFSVM, compression string) string {
	return dataset(vm, "app", fmt.Sprintf(`  name       = "${homelab_zfs_dataset.secrets.name}/app"
  properties = { compression = %q }`, compression))
}

// writeFile writes size bytes of random data to path on the VM and returns
// its sha256.
func writeFile(t *testing.T, vm *testbed.ZFSVM, path string, size string) string {
	t.Helper()
	return acctest.VMRun(t, vm, fmt.Sprintf("head -c %s /dev/urandom >'%s' && sync && sha256sum '%s' | cut -d' ' -f1", size, path, path))
}

// sameFile checks that path on the VM still has the given sha256.
func sameFile(t *testing.T, vm *testbed.ZFSVM, path string, sum *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got := acctest.VMRun(t, vm, fmt.Sprintf("sha256sum '%s' 2>&1 | cut -d' ' -f1", path))
		if got != *sum {
			return fmt.Errorf("%s on the VM has sha256 %q, want %q: the data did not survive", path, got, *sum)
		}
		return nil
	}
}

func TestAccZFSDataset_inheritedEncryptionIsNotADiff(t *testing.T) {
	vm := acctest.ZFSVM(t)
	app := "homelab_zfs_dataset.app"
	var sum, guid string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             datasetGone(t, vm, "tank/secrets/app", "tank/secrets"),
		Steps: []resource.TestStep{{
			Config: withDatasets(vm, secretsDataset(vm)+appDataset(vm, "zstd")),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(app, tfjsonpath.New("encryption"), knownvalue.Null()),
				statecheck.ExpectKnownValue(app, tfjsonpath.New("encryption_root"), knownvalue.StringExact("tank/secrets")),
				statecheck.ExpectKnownValue(app, tfjsonpath.New("key_status"), knownvalue.StringExact("available")),
				statecheck.ExpectKnownValue("homelab_zfs_dataset.secrets", tfjsonpath.New("encryption_root"), knownvalue.StringExact("tank/secrets")),
			},
			Check: func(s *terraform.State) error {
				got := acctest.VMRun(t, vm, "zfs get -H -o value encryption,encryptionroot,keystatus tank/secrets/app")
				if got != "aes-256-gcm\ntank/secrets\navailable" {
					return fmt.Errorf("tank/secrets/app on the VM: %q", got)
				}
				sum = writeFile(t, vm, "/tank/secrets/app/data", "1M")
				guid = s.RootModule().Resources[app].Primary.Attributes["guid"]
				return nil
			},
		}, {
			// Import of a dataset that inherits encryption.
			ResourceName:            app,
			ImportState:             true,
			ImportStateId:           importID(vm, "tank/secrets/app"),
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts", "used", "available", "referenced"}, // capacity moves as ZFS syncs
		}, {
			// Drift on the VM is corrected in place: same dataset, same data.
			PreConfig: func() { acctest.VMRun(t, vm, "zfs set compression=off tank/secrets/app") },
			Config:    withDatasets(vm, secretsDataset(vm)+appDataset(vm, "zstd")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(app, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeTestCheckFunc(
				sameFile(t, vm, "/tank/secrets/app/data", &sum),
				resource.TestCheckResourceAttrPtr(app, "guid", &guid),
				func(*terraform.State) error {
					if got := acctest.VMRun(t, vm, "zfs get -H -o value,source compression tank/secrets/app"); got != "zstd\tlocal" {
						return fmt.Errorf("compression on the VM: %q", got)
					}
					return nil
				}),
		}},
	})
}

func TestAccZPool_exportedPoolKeepsStateAndLoadsKeyOnImport(t *testing.T) {
	vm := acctest.ZFSVM(t)
	media := dataset(vm, "media", `  name = "tank/media"`)
	cfg := withDatasets(vm, secretsDataset(vm)+appDataset(vm, "zstd")+media)
	var appSum, mediaSum string
	notImported := regexp.MustCompile(`(?s)Unable to read ZFS pool tank.*not imported.*zpool import`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: func(*terraform.State) error {
				appSum = writeFile(t, vm, "/tank/secrets/app/data", "1M")
				mediaSum = writeFile(t, vm, "/tank/media/data", "1M")
				return nil
			},
		}, {
			// Exported (a reboot without the cache file, a rescue boot): the
			// plan fails and says how to import it; nothing is planned.
			PreConfig:   func() { acctest.VMRun(t, vm, "zpool export tank") },
			Config:      cfg,
			PlanOnly:    true,
			ExpectError: notImported,
		}, {
			// A refresh keeps every resource in state.
			RefreshState: true,
			ExpectError:  notImported,
		}, {
			// Imported without its keys: the encrypted datasets are not
			// drift; apply loads the key that is in the configuration and
			// mounts them again.
			PreConfig: func() {
				acctest.VMRun(t, vm, "zpool import -d /dev/disk/by-id tank && test \"$(zfs get -H -o value keystatus tank/secrets)\" = unavailable")
			},
			Config: cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionNoop),
				plancheck.ExpectResourceAction("homelab_zfs_dataset.secrets", plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("homelab_zfs_dataset.app", plancheck.ResourceActionNoop),
				plancheck.ExpectResourceAction("homelab_zfs_dataset.media", plancheck.ResourceActionNoop),
				plancheck.ExpectKnownValue("homelab_zfs_dataset.secrets", tfjsonpath.New("key_status"), knownvalue.StringExact("available")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("homelab_zfs_dataset.secrets", tfjsonpath.New("key_status"), knownvalue.StringExact("available")),
				statecheck.ExpectKnownValue("homelab_zfs_dataset.secrets", tfjsonpath.New("mounted"), knownvalue.Bool(true)),
			},
			Check: resource.ComposeTestCheckFunc(
				sameFile(t, vm, "/tank/secrets/app/data", &appSum),
				sameFile(t, vm, "/tank/media/data", &mediaSum),
				func(*terraform.State) error {
					got := acctest.VMRun(t, vm, "zfs get -H -o value keystatus,mounted tank/secrets tank/secrets/app")
					if got != "available\nyes\navailable\nyes" {
						return fmt.Errorf("keys and mounts on the VM: %q", got)
					}
					return nil
				}),
		}, {
			// The next refresh sees the child's key loaded too: nothing to do.
			RefreshState: true,
			Check:        resource.TestCheckResourceAttr("homelab_zfs_dataset.app", "key_status", "available"),
		}},
	})
}

// A dataset managed without its pool (the pool made by hand, or managed in
// another configuration) reads an exported pool as "not imported" too and
// stays in state. (The pool test above cannot show this: Terraform does not
// refresh a dataset whose pool failed to refresh.)
func TestAccZFSDataset_exportedPoolKeepsState(t *testing.T) {
	vm := acctest.ZFSVM(t)
	acctest.VMRun(t, vm, fmt.Sprintf("zpool create tank %s", vm.Disks[0]))
	cfg := acctest.VMProvider(vm) + strings.Replace(dataset(vm, "media", `  name = "tank/media"`), "depends_on = [homelab_zpool.tank]", "", 1)
	notImported := regexp.MustCompile(`(?s)Unable to read ZFS dataset tank/media.*pool tank is not imported.*zpool import`)
	var sum string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             datasetGone(t, vm, "tank/media"),
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: func(*terraform.State) error {
				sum = writeFile(t, vm, "/tank/media/data", "1M")
				return nil
			},
		}, {
			PreConfig:   func() { acctest.VMRun(t, vm, "zpool export tank") },
			Config:      cfg,
			PlanOnly:    true,
			ExpectError: notImported,
		}, {
			RefreshState: true,
			ExpectError:  notImported,
		}, {
			// Imported again: the dataset is still in state, nothing to do.
			PreConfig: func() { acctest.VMRun(t, vm, "zpool import -d /dev/disk/by-id tank") },
			Config:    cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction("homelab_zfs_dataset.media", plancheck.ResourceActionNoop)}},
			Check: sameFile(t, vm, "/tank/media/data", &sum),
		}},
	})
}

func TestAccZPool_createRefusesExportedPoolOfTheSameName(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	// A pool left exported on the disk (a rescue boot, a moved shelf), with data.
	acctest.VMRun(t, vm, fmt.Sprintf("zpool create tank %s && zfs create tank/keep", d[0]))
	sum := writeFile(t, vm, "/tank/keep/data", "1M")
	acctest.VMRun(t, vm, "zpool export tank")
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		// Nothing was created; the exported pool is still there, data intact.
		CheckDestroy: func(s *terraform.State) error {
			acctest.VMRun(t, vm, "zpool import -d /dev/disk/by-id tank")
			return sameFile(t, vm, "/tank/keep/data", &sum)(s)
		},
		Steps: []resource.TestStep{{
			Config:      pool(vm, "force = true\n"+vdev("data", "stripe", d[0])),
			ExpectError: regexp.MustCompile(`(?s)Unable to create ZFS pool tank.*not imported.*zpool import`),
		}},
	})
}

func TestAccZPool_destroyGuardSeesFilesUnderAMountpointWithASpace(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	cfg := func(extra string) string {
		return pool(vm, extra+`filesystem_properties = { mountpoint = "/srv/my pool" }`+"\n"+vdev("data", "stripe", d[0]))
	}
	var sum string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: cfg(""),
			Check: func(*terraform.State) error {
				sum = writeFile(t, vm, "/srv/my pool/notes.txt", "1K")
				return nil
			},
		}, {
			Config:      cfg(""),
			Destroy:     true,
			ExpectError: regexp.MustCompile(`(?s)Unable to destroy ZFS pool tank.*files in the root dataset.*force_destroy`),
		}, {
			Config: cfg("force_destroy = true\n"),
			Check: resource.ComposeTestCheckFunc(sameFile(t, vm, "/srv/my pool/notes.txt", &sum),
				func(*terraform.State) error {
					if out := acctest.VMRun(t, vm, "zpool list -H -o name tank"); strings.TrimSpace(out) != "tank" {
						return fmt.Errorf("pool tank is gone: %q", out)
					}
					return nil
				}),
		}},
	})
}

// Disks named by kernel names (/dev/vdX, like /dev/sdX) re-enumerate: the
// pool is exported, both disks are unplugged and plugged back in the other
// order, so the data disk now has the log disk's old name and the other way
// round, and the pool is imported under the new names. The configuration
// still names the old ones. The provider follows each disk by its GUID:
// the plan is empty (a warning names the move), no zpool replace, attach or
// remove runs, the roles are the same disks, the data is intact.
func TestAccZPool_reenumeratedDisksAreFollowedByGUID(t *testing.T) {
	vm := acctest.ZFSVM(t)
	first := acctest.VMRun(t, vm, "readlink -f "+vm.Disks[0])
	second := acctest.VMRun(t, vm, "readlink -f "+vm.Disks[1])
	cfg := pool(vm, "force_destroy = true\n"+vdev("data", "stripe", first)+vdev("log", "stripe", second))
	// roles lists each vdev member's GUID under its role, as ZFS reports it.
	const roles = `zpool status -g tank | awk '/logs/{r="log"} $2=="ONLINE" && $1 ~ /^[0-9]+$/ {print r, $1}'`
	var sum, before string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: func(*terraform.State) error {
				sum = writeFile(t, vm, "/tank/data", "1M")
				before = acctest.VMRun(t, vm, roles)
				return nil
			},
		}, {
			PreConfig: func() {
				acctest.VMRun(t, vm, "zpool export tank")
				ctx := acctest.Ctx(t)
				for _, step := range []func() error{
					func() error { return vm.UnplugDisk(ctx, 1) },
					func() error { return vm.UnplugDisk(ctx, 2) },
					func() error { return vm.ReplugDisk(ctx, 2) },
					func() error { return vm.ReplugDisk(ctx, 1) },
				} {
					if err := step(); err != nil {
						t.Fatal(err)
					}
				}
				if a, b := acctest.VMRun(t, vm, "readlink -f "+vm.Disks[0]), acctest.VMRun(t, vm, "readlink -f "+vm.Disks[1]); a != second || b != first {
					t.Fatalf("the disks did not swap names: disk 1 is %s, disk 2 is %s (were %s, %s)", a, b, first, second)
				}
				acctest.VMRun(t, vm, "zpool import -d /dev tank")
			},
			Config: cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeTestCheckFunc(
				sameFile(t, vm, "/tank/data", &sum),
				func(*terraform.State) error {
					if got := acctest.VMRun(t, vm, roles); got != before {
						return fmt.Errorf("vdev members by role changed:\n%s\nwant:\n%s", got, before)
					}
					if got := acctest.VMRun(t, vm, "zpool status -P tank | grep -c -e "+first+" -e "+second); got != "2" {
						return fmt.Errorf("the pool no longer has its two disks under kernel names: %s", got)
					}
					return nil
				}),
		}},
	})
}
