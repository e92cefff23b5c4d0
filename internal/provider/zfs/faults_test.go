package zfs_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// hangZFSCommands makes every zpool and zfs command on the VM stop itself
// (SIGSTOP) before it runs, as commands do that block on a suspended pool
// or a hung disk; resumeZFSCommands lets the stopped ones go on and puts the
// programs back. Wrappers in /usr/local/sbin come first in root's PATH.
const (
	hangZFSCommands = `for p in zpool zfs; do
  printf '#!/bin/sh\nkill -STOP $$\nexec /usr/sbin/%s "$@"\n' "$p" > /usr/local/sbin/$p
  chmod 755 /usr/local/sbin/$p
done`
	resumeZFSCommands = `rm -f /usr/local/sbin/zpool /usr/local/sbin/zfs
pkill -CONT -f '/usr/local/sbin/z(pool|fs)' || true`
)

// A zpool or zfs command that never answers fails the refresh within the
// ssh block's command_timeout, with an error that says so, and the state is
// kept: the plan after the host recovers is empty and the data is intact.
func TestAccZFS_hungCommandsFailWithinTheBoundAndKeepState(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	t.Cleanup(func() { acctest.VMRun(t, vm, resumeZFSCommands) })
	config := acctest.VMProvider(vm) + fmt.Sprintf(`
resource "homelab_zpool" "tank" {
  name = "tank"
  ssh {
    host            = %q
    port            = %d
    command_timeout = "15s"
  }
%s}

resource "homelab_zfs_dataset" "docs" {
  name = "${homelab_zpool.tank.name}/docs"
  ssh {
    host            = %q
    port            = %d
    command_timeout = "15s"
  }
}
`, vm.SSHHost, vm.SSHPort, vdev("data", "mirror", d[0], d[1]), vm.SSHHost, vm.SSHPort)
	var sum string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			Config: config,
			Check: func(*terraform.State) error {
				sum = acctest.VMRun(t, vm, "head -c 1048576 /dev/urandom > /tank/docs/a.bin && sha256sum /tank/docs/a.bin")
				return nil
			},
		}, {
			// Every ZFS command hangs: the refresh fails within the bound.
			PreConfig:   func() { acctest.VMRun(t, vm, hangZFSCommands) },
			Config:      config,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`did\s+not\s+answer\s+within\s+15s`),
		}, {
			// Recovered: nothing to do, nothing lost.
			PreConfig: func() { acctest.VMRun(t, vm, resumeZFSCommands) },
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
			Check: func(*terraform.State) error {
				return expectChecksum(t, vm, "/tank/docs/a.bin", sum)
			},
		}},
	})
}

// expectChecksum checks on the VM that path still has the sha256sum line want.
func expectChecksum(t *testing.T, vm *testbed.ZFSVM, path, want string) error {
	if got := acctest.VMRun(t, vm, "sha256sum "+path); got != want {
		return fmt.Errorf("%s changed: %q, want %q", path, got, want)
	}
	return nil
}

// hangZPoolReads lets `zpool import` (the check for an exported pool of the
// same name) and `zpool create` through but makes every other zpool command
// stop itself: the create succeeds and its read-back hangs.
const hangZPoolReads = `printf '#!/bin/sh\ncase "$1" in create|import) ;; *) kill -STOP $$ ;; esac\nexec /usr/sbin/zpool "$@"\n' > /usr/local/sbin/zpool
chmod 755 /usr/local/sbin/zpool`

// A pool whose create succeeded but whose read-back failed is kept in state
// (tainted), so the next plan shows it (a replacement, with the destroy
// guard in front of the data) instead of planning to create it again over
// the disks it already holds.
func TestAccZPool_createThatFailsOnReadBackIsKeptTainted(t *testing.T) {
	vm := acctest.ZFSVM(t)
	d := vm.Disks
	t.Cleanup(func() { acctest.VMRun(t, vm, resumeZFSCommands) })
	config := pool(vm, vdev("data", "mirror", d[0], d[1])+`
  timeouts {
    create = "40s"
  }
`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolGone(t, vm, "tank"),
		Steps: []resource.TestStep{{
			PreConfig:   func() { acctest.VMRun(t, vm, hangZPoolReads) },
			Config:      config,
			ExpectError: regexp.MustCompile(`(?i)deadline|did\s+not\s+answer`),
		}, {
			// Tainted: a replacement (of an empty pool: the destroy guard
			// stands in front of one that holds data), not a create over
			// the existing pool's disks.
			PreConfig: func() { acctest.VMRun(t, vm, resumeZFSCommands) },
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(tankAddr, plancheck.ResourceActionReplace)}},
		}},
	})
}
