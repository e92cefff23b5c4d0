package zfs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

const (
	d7 = "/dev/disk/by-id/virtio-disk7"
	d8 = "/dev/disk/by-id/virtio-disk8"
)

var (
	statusAnswer = [2]string{"zpool status -j -p -P tank", "zpool-status-mirror-log-cache-spare.json"}
	listAnswer   = [2]string{"zpool list -H -p -o name,size,allocated,free,fragmentation,health,guid tank", "zpool-list.tsv"}
)

// progressLog records Reshape's progress calls as "step/of op [activity]".
type progressLog []string

func (l *progressLog) record(step, of int, op Op, activity string) {
	*l = append(*l, fmt.Sprintf("%d/%d %s [%s]", step, of, op, activity))
}

func TestWaitsForIdle(t *testing.T) {
	for k, want := range map[OpKind]bool{OpAdd: false, OpRemove: false, OpDetach: false, OpAttach: true, OpReplace: true, OpExpand: true} {
		if got := k.WaitsForIdle(); got != want {
			t.Errorf("%s.WaitsForIdle() = %v, want %v", k, got, want)
		}
	}
}

// A mirror disk that re-enumerated (disk2 is now at disk6's path) and is
// then replaced in the configuration: the zpool replace addresses it by its
// GUID, never by the path that now names another disk, and only the
// replace waits for the pool to go idle.
func TestReshapeReplacesAMovedDiskByGUIDAndWaitsOnlyAfterReplace(t *testing.T) {
	recorded := testdata(t, "zpool-status-mirror-log-cache-spare.json")
	before, err := ParseStatusJSON(recorded, "tank")
	if err != nil {
		t.Fatal(err)
	}
	known := before.DiskGUIDs()
	renumbered := strings.NewReplacer(
		"virtio-disk2-part1", "virtio-disk6-part1",
		"virtio-disk3-part1", "virtio-disk4-part1",
		"virtio-disk4-part1", "virtio-disk3-part1",
	).Replace(string(recorded))
	r := &scriptRunner{t: t, literal: map[string][]byte{"renumbered": []byte(renumbered)},
		answers: [][2]string{versionAnswer, {statusAnswer[0], "renumbered"}, listAnswer, {"zpool ", ""}}}
	desired := Expand([]VdevSpec{
		{Type: TypeMirror, Disks: []string{d1, d7}},
		{Role: RoleLog, Disks: []string{d3}},
		{Role: RoleCache, Disks: []string{d4, d8}},
	})
	var progress progressLog
	err = NewClient(r).Reshape(context.Background(), "tank", desired, ReshapeOptions{KnownGUIDs: known, Progress: progress.record})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"zfs version", statusAnswer[0], listAnswer[0],
		"zpool remove tank " + d5,
		"zpool replace tank 16701901278091451654 " + d7,
		statusAnswer[0], listAnswer[0], // WaitIdle: the recorded pool is idle
		"zpool add tank cache " + d8,
	}
	if !reflect.DeepEqual(r.ran, want) {
		t.Fatalf("ran\n%s\nwant\n%s", strings.Join(r.ran, "\n"), strings.Join(want, "\n"))
	}
	wantProgress := progressLog{
		"1/3 remove " + d5 + " []",
		"2/3 replace " + d7 + " to 16701901278091451654 []",
		"3/3 add cache disk [" + d8 + "] []",
	}
	if !reflect.DeepEqual(progress, wantProgress) {
		t.Fatalf("progress\n%s\nwant\n%s", strings.Join(progress, "\n"), strings.Join(wantProgress, "\n"))
	}
}

// Three steps: remove a spare, attach a disk to the mirror, add a cache
// disk. The attach waits for the resilver; when it fails, the error names
// step 2 of 3 and wraps zpool's error, and step 3 never runs.
func TestReshapeAttachWaitsAndAFailedStepIsReported(t *testing.T) {
	desired := Expand([]VdevSpec{
		{Type: TypeMirror, Disks: []string{d1, d2, d6}},
		{Role: RoleLog, Disks: []string{d3}},
		{Role: RoleCache, Disks: []string{d4, d7}},
	})
	attach, forced := "zpool attach tank "+d1+" "+d6, "zpool attach -f tank "+d1+" "+d6
	base := [][2]string{versionAnswer, statusAnswer, listAnswer}

	r := &scriptRunner{t: t, answers: append(slices.Clone(base), [2]string{"zpool ", ""})}
	if err := NewClient(r).Reshape(context.Background(), "tank", desired, ReshapeOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"zfs version", statusAnswer[0], listAnswer[0],
		"zpool remove tank " + d5,
		attach,
		statusAnswer[0], listAnswer[0],
		"zpool add tank cache " + d7,
	}
	if !reflect.DeepEqual(r.ran, want) {
		t.Fatalf("ran\n%s\nwant\n%s", strings.Join(r.ran, "\n"), strings.Join(want, "\n"))
	}

	r = &scriptRunner{t: t, answers: append(slices.Clone(base), [2]string{forced, "zpool-create-disk-in-use.stderr"}, [2]string{"zpool ", ""})}
	var progress progressLog
	err := NewClient(r).Reshape(context.Background(), "tank", desired, ReshapeOptions{Force: true, Progress: progress.record})
	wantErr := "step 2 of 3 (attach " + d6 + " to " + d1 + "): "
	if err == nil || !strings.HasPrefix(err.Error(), wantErr) {
		t.Fatalf("err = %v, want it to start with %q", err, wantErr)
	}
	var ee *remote.ExitError
	if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "is in use") {
		t.Fatalf("err %v does not wrap zpool's error", err)
	}
	if r.didRun("zpool add") || r.didRun(attach) {
		t.Fatalf("ran after the failed step or without -f: %q", r.ran)
	}
	if !r.didRun(forced) {
		t.Fatalf("attach not forced: %q", r.ran)
	}
	if len(progress) != 2 {
		t.Fatalf("progress %q, want steps 1 and 2", progress)
	}
}

// Plan-time preview: state does not know zpool's vdev names, so a raidz
// expansion is refused without the placeholder names and planned with them.
func TestPreviewNamesLetsPlanPreviewARaidzExpansion(t *testing.T) {
	state := Expand([]VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3}}, {Role: RoleLog, Disks: []string{d4}}})
	grown := Expand([]VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3, d5}}, {Role: RoleLog, Disks: []string{d4}}})
	if _, err := Plan(state, grown); err == nil {
		t.Fatal("without names Plan should refuse the expansion")
	}
	preview := PreviewNames(state)
	if preview[0].Name != "raidz1-?" || preview[1].Name != "" || state[0].Name != "" {
		t.Fatalf("preview %+v, state %+v", preview, state)
	}
	ops, err := Plan(preview, grown)
	if err != nil || len(ops) != 1 || ops[0].Kind != OpExpand {
		t.Fatalf("ops %v err %v", ops, err)
	}
}
