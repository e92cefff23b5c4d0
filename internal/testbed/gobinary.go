package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// goBinary is a program the testbed builds from the Go module proxy through
// a throwaway wrapper module (for modules `go install` refuses, because their
// go.mod has replace directives) and caches by version.
type goBinary struct {
	label   string // for messages, e.g. "OpenTofu 1.12.6"
	dirName string // cache subdirectory, named after the version
	file    string // binary name in it
	pkg     string // package to build
	ldflags string
	// writeWrapper writes the wrapper module (go.mod and a tools file) in dir.
	writeWrapper func(ctx context.Context, goBin, dir string, logf func(string, ...any)) error
	// verify checks that a binary runs and is the expected version.
	verify func(ctx context.Context, bin string) error
}

// ensureGoBinary returns the cached binary of b at <CacheDir>/<dirName>/<file>,
// building it first when it is missing or fails verify. Concurrent callers,
// in this or other processes, serialize on a file lock so only one builds.
// logf receives progress messages and may be nil.
func ensureGoBinary(ctx context.Context, b goBinary, logf func(string, ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(cache, b.dirName)
	bin := filepath.Join(binDir, b.file)
	err = withFileLock(ctx, filepath.Join(cache, b.dirName+".lock"), func() error {
		if _, statErr := os.Stat(bin); statErr == nil {
			verifyErr := b.verify(ctx, bin)
			if verifyErr == nil {
				return nil
			}
			logf("cached %s at %s is unusable (%v); rebuilding", b.label, bin, verifyErr)
		}
		return buildGoBinary(ctx, b, binDir, bin, logf)
	})
	if err != nil {
		return "", fmt.Errorf("ensuring %s: %w", b.label, err)
	}
	return bin, nil
}

// buildGoBinary builds b and renames the result to bin atomically, so a
// reader never sees a partial binary.
func buildGoBinary(ctx context.Context, b goBinary, binDir, bin string, logf func(string, ...any)) error {
	start := time.Now()
	logf("building %s into %s (several minutes on a cold Go cache)", b.label, bin)
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", b.file+"-wrap-")
	if err != nil {
		return fmt.Errorf("creating wrapper module dir: %w", err)
	}
	defer os.RemoveAll(work)
	if err := b.writeWrapper(ctx, goBin, work, logf); err != nil {
		return err
	}
	if _, err := runGo(ctx, goBin, work, "mod", "tidy"); err != nil {
		return fmt.Errorf("resolving %s dependencies: %w", b.label, err)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", binDir, err)
	}
	// Partial binaries of builds that were killed; the lock is held, so none
	// of them is in progress.
	stale, _ := filepath.Glob(filepath.Join(binDir, "."+b.file+".*.tmp"))
	for _, f := range stale {
		_ = os.Remove(f)
	}
	tmp := filepath.Join(binDir, fmt.Sprintf(".%s.%d.tmp", b.file, os.Getpid()))
	defer os.Remove(tmp) // no-op after the rename
	if _, err := runGo(ctx, goBin, work, "build", "-trimpath", "-ldflags", b.ldflags, "-o", tmp, b.pkg); err != nil {
		return fmt.Errorf("building %s: %w", b.label, err)
	}
	if err := b.verify(ctx, tmp); err != nil {
		return fmt.Errorf("verifying freshly built %s: %w", b.label, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("installing %s: %w", b.label, err)
	}
	logf("built %s in %s", b.label, time.Since(start).Round(time.Second))
	return nil
}
