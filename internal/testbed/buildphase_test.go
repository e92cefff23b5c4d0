package testbed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A build asked for under a start phase fails with ErrBuildDuringStart
// before doing any work, and what is cached is still returned: the rule that
// keeps a start deadline from ever covering a build.
func TestStartPhaseRefusesBuilds(t *testing.T) {
	t.Setenv(CacheEnv, t.TempDir())
	wrapped := 0
	b := goBinary{
		label:   "a test binary 1.0",
		dirName: "testbin-1.0",
		file:    "testbin",
		pkg:     "example.invalid/testbin",
		writeWrapper: func(context.Context, string, string, func(string, ...any)) error {
			wrapped++
			return errors.New("the test binary cannot really be built")
		},
		verify: func(_ context.Context, bin string) error {
			_, err := os.Stat(bin)
			return err
		},
	}
	ctx := StartPhase(context.Background())
	if !InStartPhase(ctx) || InStartPhase(context.Background()) {
		t.Fatal("InStartPhase does not tell a start phase from a plain context")
	}

	_, err := ensureGoBinary(ctx, b, nil)
	if !errors.Is(err, ErrBuildDuringStart) {
		t.Fatalf("cold cache under a start phase: got %v, want ErrBuildDuringStart", err)
	}
	if wrapped != 0 {
		t.Fatal("the build started although the start phase forbids it")
	}

	// Outside a start phase the build runs (and here fails on purpose).
	if _, err := ensureGoBinary(context.Background(), b, nil); errors.Is(err, ErrBuildDuringStart) || wrapped != 1 {
		t.Fatalf("outside a start phase: got %v after %d wrapper writes, want the build to run", err, wrapped)
	}

	// A cached binary is returned under a start phase.
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, b.dirName, b.file)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := ensureGoBinary(ctx, b, nil)
	if err != nil || got != bin {
		t.Fatalf("cached binary under a start phase: got %q, %v; want %q", got, err, bin)
	}
}

// Every build function of the testbed refuses under a start phase (each is
// called as its Ensure* caller would after a cache miss).
func TestStartPhaseGuardsEveryBuild(t *testing.T) {
	t.Setenv(CacheEnv, t.TempDir())
	ctx := StartPhase(context.Background())
	dir := t.TempDir()
	builds := map[string]func() error{
		"go binary": func() error {
			return buildGoBinary(ctx, goBinary{label: "x", file: "x"}, dir, filepath.Join(dir, "x"), t.Logf)
		},
		"ipmi_sim module": func() error { return buildIPMIBootOptsModule(ctx, dir, filepath.Join(dir, "m.so"), t.Logf) },
		"ZFS VM image":    func() error { return buildZFSImage(ctx, dir, filepath.Join(dir, "img"), t.Logf) },
		"RKE2 artifacts": func() error {
			return buildRKE2SimArtifacts(ctx, dir, "v1.31.4+rke2r1", filepath.Join(dir, "a"), t.Logf)
		},
		"PXE initramfs":    func() error { return buildPXEInitrd(ctx, dir, filepath.Join(dir, "i"), t.Logf) },
		"PXE kernel":       func() error { return downloadPXEKernel(ctx, dir, filepath.Join(dir, "k"), "p", "1", t.Logf) },
		"MetalLB download": func() error { _, err := metalLBCRDFiles(ctx); return err },
	}
	// An empty module cache: MetalLB's module would have to be downloaded.
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOFLAGS", "-modcacherw")
	for name, build := range builds {
		if err := build(); err == nil || (name != "MetalLB download" && !errors.Is(err, ErrBuildDuringStart)) {
			t.Errorf("%s under a start phase: got %v, want a refusal", name, err)
		}
	}
}
