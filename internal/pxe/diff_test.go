package pxe

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	want := []File{
		{Path: "/srv/tftp/aa-bb-cc-dd-ee-f0.ipxe", Content: "#!ipxe\nkernel vmlinuz quiet\nboot\n"},
		{Path: "/srv/tftp/pxelinux.cfg/01-aa-bb-cc-dd-ee-f0", Content: "DEFAULT homelab\n"},
		{Path: "/srv/tftp/1a2b3c4d/config.txt", Content: "a=1\nb=2\n"},
		{Path: "/srv/tftp/1a2b3c4d/cmdline.txt", Content: "x\n"},
	}
	inSync := map[string]string{}
	for _, f := range want {
		inSync[f.Path] = f.Content
	}
	if d := Diff(want, inSync); len(d) != 0 {
		t.Fatalf("in sync, got %q", d)
	}
	if d := Diff(nil, inSync); len(d) != 0 {
		t.Fatalf("nothing wanted, got %q", d)
	}
	got := map[string]string{
		"/srv/tftp/aa-bb-cc-dd-ee-f0.ipxe": "#!ipxe\nkernel vmlinuz quiet init=/bin/sh\nboot\n",
		"/srv/tftp/1a2b3c4d/config.txt":    "a=1\n",
		"/srv/tftp/1a2b3c4d/cmdline.txt":   "x\ny\n",
		"/srv/tftp/unrelated":              "ignored",
	}
	wantDiff := []string{
		`/srv/tftp/aa-bb-cc-dd-ee-f0.ipxe: changed (line 2: want "kernel vmlinuz quiet\n", got "kernel vmlinuz quiet init=/bin/sh\n")`,
		"/srv/tftp/pxelinux.cfg/01-aa-bb-cc-dd-ee-f0: missing",
		`/srv/tftp/1a2b3c4d/config.txt: changed (line 2: want "b=2\n", missing)`,
		`/srv/tftp/1a2b3c4d/cmdline.txt: changed (line 2: unexpected "y\n")`,
	}
	if d := Diff(want, got); !reflect.DeepEqual(d, wantDiff) {
		t.Fatalf("Diff =\n%q\nwant\n%q", d, wantDiff)
	}
	// A lost final newline and an emptied file are drift too.
	d := Diff([]File{{Path: "/a", Content: "x\n"}, {Path: "/b", Content: "y"}}, map[string]string{"/a": "x", "/b": ""})
	if want := []string{`/a: changed (line 1: want "x\n", got "x")`, `/b: changed (line 1: want "y", missing)`}; !reflect.DeepEqual(d, want) {
		t.Fatalf("Diff = %q, want %q", d, want)
	}
}
