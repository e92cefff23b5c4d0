package zfs_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// adoptConfig is a one-host homelab: the provider's ssh block names the
// host, and no resource has an ssh block of its own. optIns adds the destroy
// opt-ins the pool and datasets need once they hold data.
func adoptConfig(vm *testbed.ZFSVM, optIns bool) string {
	return adoptConfigWith(vm, optIns, "")
}

// adoptProvider is the configuration without resources. The terraform
// block names the address the test framework serves the provider under
// (acctest.Main sets it for the CLI): import steps run the configuration as
// written, without the block the framework adds to other steps.
func adoptProvider(vm *testbed.ZFSVM) string {
	return acctest.TerraformBlock() + fmt.Sprintf(`
provider "homelab" {
  ssh {
    host             = %q
    port             = %d
    private_key      = file(%q)
    known_hosts_file = %q
  }
}
`, vm.SSHHost, vm.SSHPort, vm.KeyPath, vm.KnownHostsPath)
}

// adoptConfigWith adds vmdisk, lines added to the zvol's block. The datasets
// name their pool literally, as an adopted configuration often does, so
// depends_on orders the destroy: without it Terraform destroys the pool and
// its datasets at the same time, and `zpool destroy` fails to unmount a
// dataset that `zfs destroy` is busy with (seen once in make test).
func adoptConfigWith(vm *testbed.ZFSVM, optIns bool, vmdisk string) string {
	pool, ds := "", ""
	if optIns {
		pool, ds = "  force_destroy = true\n", "  recursive_destroy = true\n"
	}
	d := vm.Disks
	return adoptProvider(vm) + fmt.Sprintf(`

resource "homelab_zpool" "tank" {
  name = "tank"
  vdev {
    type  = "mirror"
    disks = [%q, %q]
  }
%s}

resource "homelab_zfs_dataset" "media" {
  name       = "tank/media"
  depends_on = [homelab_zpool.tank]
%s}

resource "homelab_zfs_dataset" "vmdisk" {
  name        = "tank/vmdisk"
  depends_on  = [homelab_zpool.tank]
  type        = "volume"
  volume_size = "64M"
  sparse      = true
%s%s}
`, d[0], d[1], pool, ds, ds, vmdisk)
}

// A homelab made by hand (zpool create with a non-default ashift, zfs
// create of a filesystem and of a sparse zvol, a VM disk whose
// volblocksize the configuration leaves unset) is adopted with import {}
// blocks and with `import` by plain name, through the provider's default
// host: each import plans as a no-op, and the plan after importing is empty.
func TestAccAdopt_handMadePoolAndDatasetsByPlainName(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	acctest.VMRun(t, vm, fmt.Sprintf(`zpool create -o ashift=12 tank mirror %s %s
zfs create -o compression=zstd tank/media
echo 'family photos' > /tank/media/photo.txt
zfs create -s -V 64M tank/vmdisk
udevadm settle
dd if=/dev/urandom of=/dev/zvol/tank/vmdisk bs=1M count=4 status=none; sync`, d[0], d[1]))
	sum := acctest.VMRun(t, vm, "sha256sum /tank/media/photo.txt")
	diskSum := acctest.VMRun(t, vm, "head -c 4M /dev/zvol/tank/vmdisk | sha256sum")
	dataIntact := func(*terraform.State) error {
		if err := expectChecksum(t, vm, "/tank/media/photo.txt", sum); err != nil {
			return err
		}
		if got := acctest.VMRun(t, vm, "head -c 4M /dev/zvol/tank/vmdisk | sha256sum"); got != diskSum {
			return fmt.Errorf("the VM disk tank/vmdisk changed: %q, want %q", got, diskSum)
		}
		return nil
	}
	config := adoptConfig(vm, false)
	importBlock := func(addr, id string) resource.TestStep {
		return resource.TestStep{Config: config, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id}
	}
	// -generate-config-out: the configuration written from the real
	// system plans no change (the framework imports to a resource named
	// "generated").
	generate := func(addr, id string) resource.TestStep {
		return resource.TestStep{Config: adoptProvider(vm), ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id, GenerateConfig: true}
	}
	importCommand := func(addr, id string) resource.TestStep {
		return resource.TestStep{Config: config, ResourceName: addr, ImportState: true,
			ImportStateId: id, ImportStatePersist: true}
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{
			// The case first: an import {} block of the zvol whose
			// configuration leaves volblocksize out.
			importBlock("homelab_zfs_dataset.vmdisk", "tank/vmdisk"),
			// Import steps after the first work on a copy of the test's
			// state (the resource removed from it), so terraform import
			// fills it first.
			importCommand("homelab_zpool.tank", "tank"),
			importCommand("homelab_zfs_dataset.media", "tank/media"),
			importCommand("homelab_zfs_dataset.vmdisk", "tank/vmdisk"),
			importBlock("homelab_zpool.tank", "tank"),
			importBlock("homelab_zfs_dataset.media", "tank/media"),
			importBlock("homelab_zfs_dataset.vmdisk", "tank/vmdisk"),
			generate("homelab_zfs_dataset.vmdisk", "tank/vmdisk"),
			generate("homelab_zpool.tank", "tank"),
			generate("homelab_zfs_dataset.media", "tank/media"),
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan()}},
				Check: dataIntact,
			},
			{
				// A volblocksize that differs from the volume's would need a
				// new, empty volume: refused at plan time.
				Config:      adoptConfigWith(vm, false, "  volblocksize = \"8K\"\n"),
				ExpectError: regexp.MustCompile(`(?s)Change needs a new ZFS dataset tank/vmdisk.*volblocksize 8K is fixed.*it is 16K.*allow_replace = true`),
			},
			{
				// The same size spelled in bytes is no change.
				Config: adoptConfigWith(vm, false, "  volblocksize = \"16384\"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("homelab_zfs_dataset.vmdisk", plancheck.ResourceActionUpdate)}},
				Check: dataIntact,
			},
			{
				// sparse is the volume's refreservation: changed in place.
				Config: strings.Replace(adoptConfig(vm, false), "sparse      = true", "sparse      = false", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("homelab_zfs_dataset.vmdisk", plancheck.ResourceActionUpdate)}},
				Check: func(s *terraform.State) error {
					if rr := acctest.VMRun(t, vm, "zfs get -H -o value refreservation tank/vmdisk"); rr == "none" {
						return fmt.Errorf("refreservation of tank/vmdisk is still none after sparse = false")
					}
					return dataIntact(s)
				},
			},
			{
				// Destroy needs the opt-ins: the pool holds data.
				Config: adoptConfig(vm, true),
			},
		},
	})
}
