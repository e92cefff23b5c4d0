package zfs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	d1 = "/dev/disk/by-id/virtio-disk1"
	d2 = "/dev/disk/by-id/virtio-disk2"
	d3 = "/dev/disk/by-id/virtio-disk3"
	d4 = "/dev/disk/by-id/virtio-disk4"
	d5 = "/dev/disk/by-id/virtio-disk5"
	d6 = "/dev/disk/by-id/virtio-disk6"
)

func TestExpandAndCreateArgs(t *testing.T) {
	topo := Expand([]VdevSpec{
		{Type: TypeMirror, Disks: []string{d1, d2}},
		{Role: RoleLog, Disks: []string{d3}},
		{Role: RoleCache, Disks: []string{d4, d5}},
		{Role: RoleSpare, Disks: []string{d6}},
	})
	want := []string{"mirror", d1, d2, "log", d3, "cache", d4, d5, "spare", d6}
	if got := topo.CreateArgs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("CreateArgs = %q\nwant %q", got, want)
	}
	if len(topo) != 5 {
		t.Fatalf("cache devices must expand to one vdev each: %+v", topo)
	}
}

func TestSpecsRoundTripsThroughExpand(t *testing.T) {
	specs := []VdevSpec{
		{Role: RoleData, Type: TypeStripe, Disks: []string{d1, d2}},
		{Role: RoleData, Type: TypeRaidz1, Disks: []string{d3, d4, d5}},
		{Role: RoleLog, Type: TypeMirror, Disks: []string{d6, "/dev/x"}},
	}
	if got := Expand(specs).Specs(); !reflect.DeepEqual(got, specs) {
		t.Fatalf("Specs() = %+v\nwant %+v", got, specs)
	}
}

func TestEqualIgnoresOrderWhereZFSDoes(t *testing.T) {
	a := Expand([]VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2}}, {Role: RoleCache, Disks: []string{d3, d4}}})
	b := Expand([]VdevSpec{{Type: TypeMirror, Disks: []string{d2, d1}}, {Role: RoleCache, Disks: []string{d4, d3}}})
	if !Equal(a, b) {
		t.Fatal("disk order within a mirror and cache order must not matter")
	}
	// Two stripe blocks of one disk each are the same pool as one block of two.
	c := Expand([]VdevSpec{{Disks: []string{d1}}, {Disks: []string{d2}}})
	e := Expand([]VdevSpec{{Disks: []string{d1, d2}}})
	if !Equal(c, e) {
		t.Fatal("stripe blocks must compare by the vdevs they make")
	}
	// The order of data vdevs does matter.
	f := Expand([]VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2}}, {Type: TypeMirror, Disks: []string{d3, d4}}})
	g := Expand([]VdevSpec{{Type: TypeMirror, Disks: []string{d3, d4}}, {Type: TypeMirror, Disks: []string{d1, d2}}})
	if Equal(f, g) {
		t.Fatal("reordered data vdevs are a different layout")
	}
}

func named(topo Topology) Topology {
	counts := map[string]int{}
	for i, v := range topo {
		if v.Type != TypeDisk {
			topo[i].Name = v.Type + "-" + string(rune('0'+counts[v.Type]))
			counts[v.Type]++
		} else {
			topo[i].Name = v.Disks[0]
		}
	}
	return topo
}

func plan(t *testing.T, cur, des []VdevSpec) []string {
	t.Helper()
	ops, err := Plan(named(Expand(cur)), Expand(des))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	var out []string
	for _, op := range ops {
		out = append(out, strings.Join(op.Args("tank", false), " "))
	}
	return out
}

func TestPlanInPlaceChanges(t *testing.T) {
	mirror12 := VdevSpec{Type: TypeMirror, Disks: []string{d1, d2}}
	for name, tc := range map[string]struct {
		cur, des []VdevSpec
		want     []string
	}{
		"add a mirror vdev": {
			[]VdevSpec{mirror12}, []VdevSpec{mirror12, {Type: TypeMirror, Disks: []string{d3, d4}}},
			[]string{"add tank mirror " + d3 + " " + d4}},
		"single disk to mirror": {
			[]VdevSpec{{Disks: []string{d1}}}, []VdevSpec{mirror12},
			[]string{"attach tank " + d1 + " " + d2}},
		"mirror to three-way": {
			[]VdevSpec{mirror12}, []VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2, d3}}},
			[]string{"attach tank " + d1 + " " + d3}},
		"mirror back to single disk": {
			[]VdevSpec{mirror12}, []VdevSpec{{Disks: []string{d1}}},
			[]string{"detach tank " + d2}},
		"raidz expansion by two disks": {
			[]VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3}}}, []VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3, d4, d5}}},
			[]string{"attach tank raidz1-0 " + d4, "attach tank raidz1-0 " + d5}},
		"replace a failed disk": {
			[]VdevSpec{mirror12}, []VdevSpec{{Type: TypeMirror, Disks: []string{d1, d6}}},
			[]string{"replace tank " + d2 + " " + d6}},
		"cache removed, log added": {
			[]VdevSpec{mirror12, {Role: RoleCache, Disks: []string{d4}}}, []VdevSpec{mirror12, {Role: RoleLog, Disks: []string{d3}}},
			[]string{"remove tank " + d4, "add tank log " + d3}},
		"spares swapped": {
			[]VdevSpec{mirror12, {Role: RoleSpare, Disks: []string{d5}}}, []VdevSpec{mirror12, {Role: RoleSpare, Disks: []string{d6}}},
			[]string{"remove tank " + d5, "add tank spare " + d6}},
		"log mirror removed": {
			[]VdevSpec{mirror12, {Role: RoleLog, Type: TypeMirror, Disks: []string{d3, d4}}}, []VdevSpec{mirror12},
			[]string{"remove tank mirror-1"}},
		"nothing to do when only order differs": {
			[]VdevSpec{mirror12}, []VdevSpec{{Type: TypeMirror, Disks: []string{d2, d1}}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if got := plan(t, tc.cur, tc.des); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlanRefusesWhatNeedsANewPool(t *testing.T) {
	raidz := VdevSpec{Type: TypeRaidz1, Disks: []string{d1, d2, d3}}
	for name, tc := range map[string]struct {
		cur, des []VdevSpec
		want     string
	}{
		"raidz parity change":  {[]VdevSpec{raidz}, []VdevSpec{{Type: TypeRaidz2, Disks: []string{d1, d2, d3}}}, "cannot turn a raidz1 into a raidz2"},
		"raidz shrink":         {[]VdevSpec{raidz}, []VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2}}}, "cannot remove disks from a raidz"},
		"mirror to raidz":      {[]VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2}}}, []VdevSpec{raidz}, "cannot turn a mirror into a raidz1"},
		"data vdev removed":    {[]VdevSpec{raidz, {Disks: []string{d4}}}, []VdevSpec{raidz}, "removes only log, cache and spare vdevs"},
		"mirror add+drop both": {[]VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2}}}, []VdevSpec{{Type: TypeMirror, Disks: []string{d3, d4, d5}}}, "ambiguous"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Plan(named(Expand(tc.cur)), Expand(tc.des))
			var re *ReplaceError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a ReplaceError mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		specs []VdevSpec
		want  string
	}{
		"duplicate disk":   {[]VdevSpec{{Type: TypeMirror, Disks: []string{d1, d2}}, {Role: RoleLog, Disks: []string{d2}}}, "is in vdev 0 and vdev 1"},
		"short mirror":     {[]VdevSpec{{Type: TypeMirror, Disks: []string{d1}}}, "needs at least 2 disks"},
		"raidz log":        {[]VdevSpec{{Disks: []string{d1}}, {Role: RoleLog, Type: TypeRaidz1, Disks: []string{d2, d3}}}, "log can be a disk or a mirror"},
		"mirrored cache":   {[]VdevSpec{{Disks: []string{d1}}, {Role: RoleCache, Type: TypeMirror, Disks: []string{d2, d3}}}, "cache devices are single disks"},
		"no data vdev":     {[]VdevSpec{{Role: RoleLog, Disks: []string{d1}}}, "at least one data vdev"},
		"empty disks list": {[]VdevSpec{{Type: TypeMirror}}, "has no disks"},
	} {
		t.Run(name, func(t *testing.T) {
			errs := Validate(tc.specs)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			if !strings.Contains(strings.Join(msgs, "|"), tc.want) {
				t.Fatalf("want an error mentioning %q, got %q", tc.want, msgs)
			}
		})
	}
	if errs := Validate([]VdevSpec{{Type: TypeRaidz2, Disks: []string{d1, d2, d3, d4}}, {Role: RoleCache, Disks: []string{d5}}}); len(errs) != 0 {
		t.Fatalf("valid layout refused: %v", errs)
	}
}
