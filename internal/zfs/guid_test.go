package zfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestUnstablePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/dev/sdb": true, "/dev/sdaa": true, "/dev/sdb1": true, "/dev/vdc": true, "/dev/nvme0n1": true, "/dev/nvme1n2p3": true,
		"/dev/xvdf": true, "/dev/disk/by-id/ata-WDC_WD80EFAX-68KNBN0_VAGXXXXX": false, "/dev/disk/by-path/pci-0000:00:1f.2-ata-1": false,
		"/dev/disk/by-id/nvme-Samsung_SSD_980_S123": false, "/dev/mapper/crypt-disk1": false,
	} {
		if got := UnstablePath(p); got != want {
			t.Errorf("UnstablePath(%s) = %v, want %v", p, got, want)
		}
	}
}

// A re-enumeration seen through the recorded status: the mirror's second
// disk comes back under the name of a disk outside the pool, and the log
// and cache disks trade names. By path, that plans a zpool replace onto
// whatever disk now has the configured name, and a log/cache swap; by GUID,
// nothing changed.
func TestFollowGUIDsTreatsARenamedDiskAsTheSameDisk(t *testing.T) {
	recorded := string(testdata(t, "zpool-status-mirror-log-cache-spare.json"))
	before, err := ParseStatusJSON([]byte(recorded), "tank")
	if err != nil {
		t.Fatal(err)
	}
	known := before.DiskGUIDs()
	if len(known) != 5 || known["16701901278091451654"] != d2 || known["8916306422940653259"] != d3 {
		t.Fatalf("GUIDs of the recorded pool: %v", known)
	}
	renumbered := strings.NewReplacer(
		"virtio-disk2-part1", "virtio-disk6-part1",
		"virtio-disk3-part1", "virtio-disk4-part1",
		"virtio-disk4-part1", "virtio-disk3-part1",
	).Replace(recorded)
	after, err := ParseStatusJSON([]byte(renumbered), "tank")
	if err != nil {
		t.Fatal(err)
	}
	live := after.Topology()
	ops, err := Plan(live, recordedLayout)
	if err != nil || len(ops) == 0 {
		t.Fatalf("by path the renamed disks should look changed (the bug), got ops %v err %v", ops, err)
	}
	followed, moved := FollowGUIDs(live, after.DiskGUIDs(), known, diskSet(recordedLayout))
	if !Equal(followed, recordedLayout) {
		t.Fatalf("followed topology %+v\nwant %+v", followed, recordedLayout)
	}
	if ops, err := Plan(followed, recordedLayout); err != nil || len(ops) != 0 {
		t.Fatalf("by GUID nothing changed, got ops %v err %v", ops, err)
	}
	want := []Moved{{"16701901278091451654", d2, d6}, {"8916306422940653259", d3, d4}, {"3386430673871047427", d4, d3}}
	if !reflect.DeepEqual(moved, want) {
		t.Fatalf("moved %v\nwant %v", moved, want)
	}
	// Nothing known (a first read, or OpenZFS without JSON): live paths as they are.
	if same, moved := FollowGUIDs(live, after.DiskGUIDs(), nil, nil); !reflect.DeepEqual(same, live) || moved != nil {
		t.Fatalf("without known GUIDs: %+v %v", same, moved)
	}
	// A configuration already changed to the new name keeps it: the
	// mirror disk is not renamed back, the log and cache swap still is.
	renamed := Expand([]VdevSpec{
		{Type: TypeMirror, Disks: []string{d1, d6}},
		{Role: RoleLog, Disks: []string{d3}},
		{Role: RoleCache, Disks: []string{d4}},
		{Role: RoleSpare, Disks: []string{d5}},
	})
	followed, _ = FollowGUIDs(live, after.DiskGUIDs(), known, diskSet(renamed))
	if !Equal(followed, renamed) {
		t.Fatalf("with the new name configured: %+v\nwant %+v", followed, renamed)
	}
}
