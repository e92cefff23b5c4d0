package testbed

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strings"
)

// OpenTofuVersion is the OpenTofu release that acceptance tests and the demo
// run. Bumping it is enough to build and cache the new release.
const OpenTofuVersion = "1.12.6"

// openTofuModule is the Go module OpenTofu is built from.
const openTofuModule = "github.com/opentofu/opentofu"

// Provider coordinates used by acceptance tests and the demo CLI config.
const (
	// ProviderHost is the registry host OpenTofu resolves the provider under.
	ProviderHost = "registry.opentofu.org"
	// ProviderNamespace is the provider's registry namespace.
	ProviderNamespace = "terraform-homelab"
	// ProviderType is the provider's type name.
	ProviderType = "homelab"
	// ProviderSource is the full provider source address.
	ProviderSource = ProviderHost + "/" + ProviderNamespace + "/" + ProviderType
)

// EnsureOpenTofu returns the path of a cached `tofu` binary of
// OpenTofuVersion at <CacheDir>/opentofu-<version>/tofu, building it from the
// Go module proxy first if it is missing or broken. A cold build takes about
// four minutes. Concurrent callers, in this or other processes, serialize on
// a file lock so that only one of them builds. logf receives progress
// messages and may be nil.
func EnsureOpenTofu(ctx context.Context, logf func(string, ...any)) (string, error) {
	return ensureGoBinary(ctx, goBinary{
		label:   "OpenTofu " + OpenTofuVersion,
		dirName: "opentofu-" + OpenTofuVersion,
		file:    "tofu",
		pkg:     openTofuModule + "/cmd/tofu",
		ldflags: "-s -w -X " + openTofuModule + "/version.dev=no",
		writeWrapper: func(ctx context.Context, goBin, dir string, logf func(string, ...any)) error {
			return writeTofuWrapper(ctx, goBin, dir, logf)
		},
		verify: verifyOpenTofu,
	}, logf)
}

// writeTofuWrapper writes a module in dir that requires OpenTofu and repeats
// the replace directives of OpenTofu's own go.mod, which `go install` cannot
// honour for a dependency. The go directive is copied from OpenTofu as well.
func writeTofuWrapper(ctx context.Context, goBin, dir string, logf func(string, ...any)) error {
	return writeModuleWrapper(ctx, goBin, dir, "tofuwrap", openTofuModule, OpenTofuVersion, openTofuModule+"/cmd/tofu",
		func(replaces []string) ([]string, error) {
			var kept []string
			for _, r := range replaces {
				if isLocalReplace(r) {
					logf("ignoring OpenTofu's local replace %q", r)
					continue
				}
				kept = append(kept, r)
			}
			return kept, nil
		})
}

// parseGoMod extracts the go directive and the replace directives (without
// the "replace" keyword, one per element) from a go.mod file. It understands
// single-line and parenthesized block forms and strips // comments.
func parseGoMod(data []byte) (goVersion string, replaces []string) {
	inReplaceBlock := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case inReplaceBlock && line == ")":
			inReplaceBlock = false
		case inReplaceBlock:
			replaces = append(replaces, line)
		case line == "replace (":
			inReplaceBlock = true
		case strings.HasPrefix(line, "replace "):
			replaces = append(replaces, strings.TrimSpace(strings.TrimPrefix(line, "replace ")))
		case strings.HasPrefix(line, "go "):
			goVersion = strings.TrimSpace(strings.TrimPrefix(line, "go "))
		}
	}
	return goVersion, replaces
}

// isLocalReplace reports whether a replace directive points at a directory,
// which only exists inside the upstream repository.
func isLocalReplace(directive string) bool {
	_, target, ok := strings.Cut(directive, "=>")
	if !ok {
		return false
	}
	target = strings.TrimSpace(target)
	return strings.HasPrefix(target, "./") || strings.HasPrefix(target, "../") || filepath.IsAbs(target)
}

// verifyOpenTofu checks that bin reports OpenTofuVersion (a build without
// the version ldflag says "-dev").
func verifyOpenTofu(ctx context.Context, bin string) error {
	return verifyCLIVersion(ctx, bin, "OpenTofu v"+OpenTofuVersion)
}
