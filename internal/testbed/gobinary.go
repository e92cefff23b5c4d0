package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	logf = logfOrNop(logf)
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
	if err := allowBuild(ctx, b.label); err != nil {
		return err
	}
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

// writeModuleWrapper writes a module named name in dir that requires
// module@v<version> and imports pkg from a tools file, with the go directive
// of the upstream go.mod. Requiring only that module makes `go mod tidy`
// select exactly the dependency versions upstream's own go.mod lists, as
// `go install` would. `go install` cannot honour upstream's replace
// directives for a dependency, so keep chooses which of them the wrapper
// repeats (nil: none).
func writeModuleWrapper(ctx context.Context, goBin, dir, name, module, version, pkg string,
	keep func(replaces []string) ([]string, error)) error {
	mod := module + "@v" + version
	out, err := runGo(ctx, goBin, dir, "mod", "download", "-json", mod)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", mod, err)
	}
	var info struct{ GoMod, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("parsing `go mod download` output for %s: %w", mod, err)
	}
	if info.Error != "" || info.GoMod == "" {
		return fmt.Errorf("downloading %s: %s", mod, info.Error)
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		return fmt.Errorf("reading go.mod of %s: %w", mod, err)
	}
	goVersion, replaces := parseGoMod(upstream)
	if goVersion == "" {
		return fmt.Errorf("go.mod of %s has no go directive", mod)
	}
	var kept []string
	if keep != nil {
		if kept, err = keep(replaces); err != nil {
			return fmt.Errorf("go.mod of %s: %w", mod, err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo %s\n\nrequire %s v%s\n", name, goVersion, module, version)
	if len(kept) > 0 {
		b.WriteString("\n")
	}
	for _, r := range kept {
		fmt.Fprintf(&b, "replace %s\n", r)
	}
	tools := "//go:build tools\n\npackage tools\n\nimport _ \"" + pkg + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing wrapper go.mod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tools.go"), []byte(tools), 0o644); err != nil {
		return fmt.Errorf("writing wrapper tools.go: %w", err)
	}
	return nil
}
