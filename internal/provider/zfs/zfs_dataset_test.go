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

// withDatasets renders a single-disk pool tank and the given datasets.
func withDatasets(vm *testbed.ZFSVM, datasets string) string {
	return pool(vm, vdev("data", "stripe", vm.Disks[0])+"  force_destroy = true\n") + datasets
}

func dataset(vm *testbed.ZFSVM, label, body string) string {
	return fmt.Sprintf(`
resource "homelab_zfs_dataset" %q {
  depends_on = [homelab_zpool.tank]
  %s
%s
}
`, label, acctest.VMSSH(vm), body)
}

func datasetGone(t *testing.T, vm *testbed.ZFSVM, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, n := range names {
			out := acctest.VMRun(t, vm, fmt.Sprintf("zfs list -H -o name %s 2>&1 || true", n))
			if !strings.Contains(out, "does not exist") && !strings.Contains(out, "no such pool") {
				return fmt.Errorf("dataset %s still exists on the VM: %s", n, out)
			}
		}
		return nil
	}
}

func TestAccZFSDataset_filesystemPropertiesRenameImportDrift(t *testing.T) {
	vm := acctest.ZFSVM(t)
	body := func(name string) string {
		return fmt.Sprintf(`  name       = %q
  mountpoint = "/srv/media"
  quota      = "200M"
  properties = {
    compression     = "zstd"
    recordsize      = "1M"
    "homelab:owner" = "jellyfin"
  }`, name)
	}
	addr := "homelab_zfs_dataset.media"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             datasetGone(t, vm, "tank/media", "tank/movies"),
		Steps: []resource.TestStep{{
			Config: withDatasets(vm, dataset(vm, "media", body("tank/media"))) + fmt.Sprintf(`
data "homelab_zfs_datasets" "tank" {
  parent     = split("/", homelab_zfs_dataset.media.name)[0]
  properties = ["quota", "homelab:owner"]
  %s
}`, acctest.VMSSH(vm)),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.homelab_zfs_datasets.tank", tfjsonpath.New("datasets"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("tank"), "type": knownvalue.StringExact("filesystem")}),
					knownvalue.ObjectExact(map[string]knownvalue.Check{
						"name": knownvalue.StringExact("tank/media"), "type": knownvalue.StringExact("filesystem"),
						"properties": knownvalue.MapExact(map[string]knownvalue.Check{
							"quota": knownvalue.StringExact("209715200"), "homelab:owner": knownvalue.StringExact("jellyfin")}),
					}),
				})),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("quota"), knownvalue.StringExact("200M")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("properties").AtMapKey("recordsize"), knownvalue.StringExact("1M")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("mounted"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("type"), knownvalue.StringExact("filesystem")),
			},
			Check: func(*terraform.State) error {
				got := acctest.VMRun(t, vm, "zfs get -H -o value quota,compression,recordsize,homelab:owner,mountpoint tank/media")
				if got != "200M\nzstd\n1M\njellyfin\n/srv/media" {
					return fmt.Errorf("properties on the VM: %q", got)
				}
				return nil
			},
		}, {
			ResourceName:            addr,
			ImportState:             true,
			ImportStateId:           importID(vm, "tank/media"),
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts", "used", "available", "referenced"}, // capacity moves as ZFS syncs
		}, {
			// A managed property inherited out of band is drift, even though
			// zstd and the inherited value differ only in where they come from.
			PreConfig: func() { acctest.VMRun(t, vm, "zfs set compression=zstd tank && zfs inherit compression tank/media") },
			Config:    withDatasets(vm, dataset(vm, "media", body("tank/media"))),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: func(*terraform.State) error {
				if got := acctest.VMRun(t, vm, "zfs get -H -o source compression tank/media"); got != "local" {
					return fmt.Errorf("compression source %q, want local", got)
				}
				return nil
			},
		}, {
			// Only the name changes: zfs rename, same GUID.
			Config: withDatasets(vm, dataset(vm, "media", body("tank/movies"))),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttrPair(addr, "id", addr, "guid"),
				func(s *terraform.State) error {
					guid := s.RootModule().Resources[addr].Primary.Attributes["guid"]
					if got := acctest.VMRun(t, vm, "zfs get -H -o value guid tank/movies"); got != guid {
						return fmt.Errorf("guid of tank/movies is %s, state has %s: not a rename", got, guid)
					}
					return nil
				}),
		}, {
			// A child created out of band blocks destroy without recursive_destroy.
			PreConfig:   func() { acctest.VMRun(t, vm, "zfs create tank/movies/extras && zfs snapshot tank/movies@before") },
			Config:      withDatasets(vm, dataset(vm, "media", body("tank/movies"))),
			Destroy:     true,
			ExpectError: regexp.MustCompile(`(?s)Unable to destroy ZFS dataset tank/movies.*tank/movies/extras.*recursive_destroy`),
		}, {
			Config: withDatasets(vm, dataset(vm, "media", body("tank/movies")+"\n  recursive_destroy = true")),
		}},
	})
}

func TestAccZFSDataset_volumeAndEncryption(t *testing.T) {
	acctest.RequireWriteOnly(t)
	vm := acctest.ZFSVM(t)
	vol := func(size string) string {
		return dataset(vm, "vm_disk", fmt.Sprintf(`  name         = "tank/vm-disk"
  type         = "volume"
  volume_size  = %q
  volblocksize = "16K"
  sparse       = true`, size))
	}
	secret := dataset(vm, "secret", `  name = "tank/secret"
  encryption {
    format         = "passphrase"
    key_wo         = "correct horse battery staple"
    key_wo_version = 1
  }`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             datasetGone(t, vm, "tank/vm-disk", "tank/secret"),
		Steps: []resource.TestStep{{
			Config: withDatasets(vm, vol("64M")+secret),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("homelab_zfs_dataset.vm_disk", tfjsonpath.New("volume_size"), knownvalue.StringExact("64M")),
				statecheck.ExpectKnownValue("homelab_zfs_dataset.secret", tfjsonpath.New("encryption").AtMapKey("algorithm"), knownvalue.StringExact("aes-256-gcm")),
				statecheck.ExpectKnownValue("homelab_zfs_dataset.secret", tfjsonpath.New("encryption").AtMapKey("key_wo"), knownvalue.Null()),
			},
			Check: func(*terraform.State) error {
				got := acctest.VMRun(t, vm, "zfs get -H -p -o value volsize,volblocksize,refreservation tank/vm-disk; zfs get -H -o value encryption,keystatus tank/secret")
				if got != "67108864\n16384\n0\naes-256-gcm\navailable" {
					return fmt.Errorf("on the VM: %q", got)
				}
				return nil
			},
		}, {
			// The volume grows in place.
			Config: withDatasets(vm, vol("128M")+secret),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction("homelab_zfs_dataset.vm_disk", plancheck.ResourceActionUpdate)}},
			Check: func(*terraform.State) error {
				if got := acctest.VMRun(t, vm, "zfs get -H -p -o value volsize tank/vm-disk"); got != "134217728" {
					return fmt.Errorf("volsize %s", got)
				}
				return nil
			},
		}, {
			ResourceName:            "homelab_zfs_dataset.vm_disk",
			ImportState:             true,
			ImportStateId:           importID(vm, "tank/vm-disk"),
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts", "used", "available", "referenced"}, // capacity moves as ZFS syncs
		}},
	})
}
