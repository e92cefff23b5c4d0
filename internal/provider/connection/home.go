package connection

import (
	"os"
	"path/filepath"
	"strings"
)

// ExpandHome expands a leading "~/" in a path from configuration, the way
// OpenSSH does for known_hosts paths.
func ExpandHome(p string) string {
	if !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[2:])
}
