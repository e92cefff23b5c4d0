package rke2

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseChecksums(t *testing.T) {
	sums, err := ParseChecksums([]byte(testdata(t, "sha256sum-amd64.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 7 || sums["rke2.linux-amd64.tar.gz"] != "6b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff006" {
		t.Fatalf("%v", sums)
	}
	if s, _ := ParseChecksums([]byte(strings.Repeat("a", 64) + " *dir/x.tar.gz\n")); s["x.tar.gz"] == "" {
		t.Errorf("binary-mode line with a directory: %v", s)
	}
	for _, bad := range []string{"abc  file\n", strings.Repeat("z", 64) + "  file\n", strings.Repeat("a", 64) + "\n"} {
		if _, err := ParseChecksums([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// artifactDir writes a fake release: a tarball, images and their sums.
func artifactDir(t *testing.T, corrupt bool) string {
	t.Helper()
	dir := t.TempDir()
	var sums strings.Builder
	for _, name := range []string{TarballName("amd64"), ImagesName("amd64")} {
		content := []byte("content of " + name)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		if corrupt && name == ImagesName("amd64") {
			sum[0] ^= 1
		}
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	fmt.Fprintf(&sums, "%s  %s\n", strings.Repeat("0", 64), "rke2-images-calico.linux-amd64.tar.gz")
	if err := os.WriteFile(filepath.Join(dir, ChecksumsName("amd64")), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadArtifacts(t *testing.T) {
	a, err := LoadArtifacts(artifactDir(t, false), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.SHA256) != 2 || len(a.Files()) != 3 || a.Files()[2] != "sha256sum-amd64.txt" {
		t.Fatalf("%+v", a)
	}
	if _, err := LoadArtifacts(artifactDir(t, true), "amd64"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt images: %v", err)
	}
	if _, err := LoadArtifacts(artifactDir(t, false), "arm64"); err == nil || !strings.Contains(err.Error(), "sha256sum-arm64.txt") {
		t.Fatalf("missing architecture: %v", err)
	}
	dir := artifactDir(t, false)
	if err := os.WriteFile(filepath.Join(dir, ChecksumsName("amd64")), []byte(strings.Repeat("1", 64)+"  other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadArtifacts(dir, "amd64"); err == nil || !strings.Contains(err.Error(), "does not list") {
		t.Fatalf("unlisted tarball: %v", err)
	}
}

func TestArchFromUname(t *testing.T) {
	for in, want := range map[string]string{"x86_64\n": "amd64", "aarch64": "arm64", "s390x": "s390x"} {
		if got, err := ArchFromUname(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ArchFromUname("armv7l"); err == nil {
		t.Error("armv7l has no RKE2 release")
	}
}
