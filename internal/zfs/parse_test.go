package zfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The layout the recordings were made with.
var recordedLayout = Expand([]VdevSpec{
	{Type: TypeMirror, Disks: []string{d1, d2}},
	{Role: RoleLog, Disks: []string{d3}},
	{Role: RoleCache, Disks: []string{d4}},
	{Role: RoleSpare, Disks: []string{d5}},
})

func TestParseStatusJSONRecorded(t *testing.T) {
	p, err := ParseStatusJSON(testdata(t, "zpool-status-mirror-log-cache-spare.json"), "tank")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "tank" || p.Health != "ONLINE" || p.GUID != "7160166309447872936" || p.Activity != "" {
		t.Fatalf("pool %+v", p)
	}
	if got := p.Topology(); !Equal(got, recordedLayout) {
		t.Fatalf("topology %+v\nwant %+v", got, recordedLayout)
	}
	if p.Devices[0].Name != "mirror-0" || p.Devices[0].Children[1].Path != "/dev/disk/by-id/virtio-disk2-part1" {
		t.Fatalf("devices %+v", p.Devices)
	}
	if spare := p.Devices[3]; spare.Role != RoleSpare || spare.State != "AVAIL" {
		t.Fatalf("spare %+v", spare)
	}
	if probs := p.Problems(); len(probs) != 0 {
		t.Fatalf("a healthy pool has no problems, got %q", probs)
	}
}

func TestParseStatusTextRecorded(t *testing.T) {
	p, err := ParseStatusText(testdata(t, "zpool-status-mirror-log-cache-spare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var roles, names []string
	for _, d := range p.Devices {
		roles = append(roles, d.Role)
		names = append(names, d.Name)
	}
	if !reflect.DeepEqual(roles, []string{RoleData, RoleLog, RoleCache, RoleSpare}) ||
		!reflect.DeepEqual(names, []string{"mirror-0", "virtio-disk3", "virtio-disk4", "virtio-disk5"}) {
		t.Fatalf("devices %q %q", roles, names)
	}
	if len(p.Devices[0].Children) != 2 || p.Devices[0].Type != TypeMirror || p.Health != "ONLINE" {
		t.Fatalf("mirror %+v", p.Devices[0])
	}
}

// Both outputs describe the same pool the same way.
func TestJSONAndTextAgree(t *testing.T) {
	j, err := ParseStatusJSON(testdata(t, "zpool-status-mirror-log-cache-spare.json"), "tank")
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseStatusText(testdata(t, "zpool-status-mirror-log-cache-spare.txt"))
	if err != nil {
		t.Fatal(err)
	}
	strip := func(p *Pool) Topology {
		topo := p.Topology()
		for i := range topo {
			for k, d := range topo[i].Disks {
				topo[i].Disks[k] = filepath.Base(d)
			}
			topo[i].Name = ""
		}
		return topo
	}
	if a, b := strip(j), strip(x); !Equal(a, b) {
		t.Fatalf("JSON %+v\ntext %+v", a, b)
	}
}

func TestParseGetRecordedJSONAndTabsAgree(t *testing.T) {
	j, err := ParseGetJSON(testdata(t, "zfs-get-recursive.json"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := ParseGetTabs(testdata(t, "zfs-get-recursive.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(j) == 0 || len(j) != len(x) {
		t.Fatalf("JSON has %d datasets, tabs %d", len(j), len(x))
	}
	for name, jd := range j {
		xd := x[name]
		if xd == nil {
			t.Fatalf("%s missing from the tab output", name)
		}
		if jd.Type != xd.Type {
			t.Errorf("%s: type %q vs %q", name, jd.Type, xd.Type)
		}
		for k, jp := range jd.Props {
			// This recording used --json-int, with which OpenZFS 2.3.2 clamps
			// 64-bit values such as guid to INT64_MAX; the client never passes it.
			if k == "guid" {
				continue
			}
			if xp, ok := xd.Props[k]; ok && (jp.Value != xp.Value || jp.Source != xp.Source || jp.From != xp.From) {
				t.Errorf("%s %s: JSON %+v, tabs %+v", name, k, jp, xp)
			}
		}
	}
	a := j["tank/a"]
	if a == nil || a.Props["homelab:owner"].Value != "test" || !a.Props["homelab:owner"].Local() {
		t.Fatalf("user property of tank/a: %+v", a)
	}
	if b := j["tank/a/b"]; b == nil || b.Props["homelab:owner"].Source != SourceInherited || b.Props["homelab:owner"].From != "tank/a" {
		t.Fatalf("inherited user property of tank/a/b: %+v", b.Props["homelab:owner"])
	}
	if v := j["tank/vol"]; v == nil || v.Type != "volume" {
		t.Fatalf("zvol: %+v", v)
	}
}

func TestParseListLineRecorded(t *testing.T) {
	p := &Pool{}
	if err := parseListLine(testdata(t, "zpool-list.tsv"), p); err != nil {
		t.Fatal(err)
	}
	if p.Size != 1006632960 || p.Allocated != 210677760 || p.Free != 795955200 || p.Fragmentation != 6 || p.Health != "ONLINE" {
		t.Fatalf("%+v", p)
	}
}

func TestParseVersionRecorded(t *testing.T) {
	v, err := ParseVersion(testdata(t, "zfs-version.txt"))
	if err != nil || v != (Version{2, 3, 2}) || !v.JSON() {
		t.Fatalf("%v %v", v, err)
	}
	old, _ := ParseVersion([]byte("zfs-2.1.11-1\nzfs-kmod-2.1.11-1\n"))
	if old.JSON() {
		t.Fatal("2.1 has no JSON output")
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, n := range []string{"zpool-status-mirror-log-cache-spare.json", "zpool-status-mirror-log-cache-spare.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Neither parser may panic on any input; errors are fine.
		if p, err := ParseStatusJSON(b, "tank"); err == nil {
			_ = p.Topology()
			_ = p.Problems()
		}
		if p, err := ParseStatusText(b); err == nil {
			_ = p.Topology()
			_ = p.Problems()
		}
	})
}

func FuzzParseGet(f *testing.F) {
	for _, n := range []string{"zfs-get-recursive.json", "zfs-get-recursive.tsv"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseGetJSON(b)
		_, _ = ParseGetTabs(b)
	})
}

func TestParseStatusRecordedStates(t *testing.T) {
	for _, tc := range []struct {
		file     string
		health   string
		activity string
		layout   Topology
		problems int
	}{
		{"zpool-status-degraded", "DEGRADED", "", recordedLayout, 1},
		// A disk being replaced counts as its replacement.
		{"zpool-status-resilvering", "DEGRADED", "resilver in progress", Expand([]VdevSpec{
			{Type: TypeMirror, Disks: []string{d1, d6}}, {Role: RoleLog, Disks: []string{d3}},
			{Role: RoleCache, Disks: []string{d4}}, {Role: RoleSpare, Disks: []string{d5}}}), 3},
		// A hot spare standing in leaves the configured layout as it was.
		{"zpool-status-spare-inuse", "DEGRADED", "", recordedLayout, 3},
		{"zpool-status-raidz-expanding", "ONLINE", "raidz expansion in progress", Expand([]VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3, d4}}}), 0},
		{"zpool-status-raidz-expanded", "ONLINE", "", Expand([]VdevSpec{{Type: TypeRaidz1, Disks: []string{d1, d2, d3, d4}}}), 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			for _, ext := range []string{".json", ".txt"} {
				var p *Pool
				var err error
				if ext == ".json" {
					p, err = ParseStatusJSON(testdata(t, tc.file+ext), "tank")
				} else {
					p, err = ParseStatusText(testdata(t, tc.file+ext))
				}
				if err != nil {
					t.Fatal(err)
				}
				if p.Health != tc.health || !strings.HasPrefix(p.Activity, tc.activity) || (tc.activity == "") != (p.Activity == "") {
					t.Errorf("%s: health %q activity %q", ext, p.Health, p.Activity)
				}
				if ext == ".txt" {
					continue // recorded without -P: short names, checked by structure above
				}
				if got := p.Topology(); !Equal(got, tc.layout) {
					t.Errorf("topology %+v\nwant %+v", got, tc.layout)
				}
				if n := len(p.Problems()); n < tc.problems || tc.problems == 0 && n != 0 {
					t.Errorf("problems %q, want at least %d", p.Problems(), tc.problems)
				}
			}
		})
	}
}
