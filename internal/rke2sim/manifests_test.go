package rke2sim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSplitManifest(t *testing.T) {
	objs, err := splitManifest([]byte(`---
# a comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: b, namespace: x}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
---
{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "d"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if want := []string{"ConfigMap/a", "Secret/b", "ConfigMap/c", "Namespace/d"}; !slices.Equal(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}
	for _, bad := range []string{"kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion: v1\nkind: ConfigMap\n", "a: [b\n"} {
		if _, err := splitManifest([]byte(bad)); err == nil {
			t.Errorf("manifest %q accepted", bad)
		}
	}
}

func TestManifestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.yaml", "a.json", "c.yml", "skipped.yaml", "skipped.yaml.skip", "notes.txt", ".hidden.yaml", "sub/d.yaml", ".git/e.yaml"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := manifestFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		got = append(got, rel)
	}
	if want := []string{"a.json", "b.yaml", "c.yml", "sub/d.yaml"}; !slices.Equal(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
	if files, err := manifestFiles(filepath.Join(dir, "missing")); err != nil || len(files) != 0 {
		t.Errorf("missing dir: %v, %v", files, err)
	}
}
