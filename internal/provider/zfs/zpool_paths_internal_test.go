package zfs

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// Issue 12 item 3: disks named by a path the kernel gives out in probe
// order get a plan-time warning on the disk itself; by-id names do not.
func TestZPoolWarnsAboutUnstableDiskPaths(t *testing.T) {
	specs := []zfs.VdevSpec{
		{Role: zfs.RoleData, Type: zfs.TypeMirror, Disks: []string{"/dev/disk/by-id/ata-WDC_WD80EFAX_VAG1", "/dev/sdb"}},
		{Role: zfs.RoleLog, Type: zfs.TypeStripe, Disks: []string{"/dev/nvme0n1"}},
	}
	diags := unstableDiskWarnings(specs)
	if diags.HasError() || len(diags) != 2 {
		t.Fatalf("want two warnings, got %v", diags)
	}
	want := []path.Path{
		path.Root("vdev").AtListIndex(0).AtName("disks").AtListIndex(1),
		path.Root("vdev").AtListIndex(1).AtName("disks").AtListIndex(0),
	}
	for i, d := range diags {
		wp, ok := d.(interface{ Path() path.Path })
		if !ok || !wp.Path().Equal(want[i]) {
			t.Errorf("warning %d: %s at %v, want at %s", i, d.Summary(), d, want[i])
		}
	}
}
