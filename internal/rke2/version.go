package rke2

import (
	"fmt"
	"regexp"
	"strings"
)

// VersionRe matches an RKE2 release version such as v1.31.4+rke2r1.
var VersionRe = regexp.MustCompile(`^v\d+\.\d+\.\d+(-rc\d+)?\+rke2r\d+$`)

// ChannelRe matches an RKE2 release channel: stable, latest, testing or a
// minor version such as v1.31.
var ChannelRe = regexp.MustCompile(`^(stable|latest|testing|v\d+\.\d+)$`)

// ParseVersion reads the output of `rke2 --version`, whose first line is
// "rke2 version v1.31.4+rke2r1 (<commit>)".
func ParseVersion(out string) (string, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "rke2" || f[1] != "version" || !strings.HasPrefix(f[2], "v") {
		return "", fmt.Errorf("unexpected output of rke2 --version: %q", strings.TrimSpace(line))
	}
	return f[2], nil
}
