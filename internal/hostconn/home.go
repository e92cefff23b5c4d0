package hostconn

import (
	"os"
	"path/filepath"
	"strings"
)

// expandHome expands a leading "~/" the way OpenSSH does for known_hosts paths.
func expandHome(p string) string {
	if !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[2:])
}
