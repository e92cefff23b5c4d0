package restic

import (
	"strconv"
	"strings"
)

// SupportsRetryLock reports whether restic of this version (as Version
// returns it, e.g. "0.18.1") has the global --retry-lock option, which
// came with restic 0.16.0. An unreadable version is taken as too old.
func SupportsRetryLock(version string) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 0 || minor >= 16
}

// maxRunMessage bounds the message RunFailureMessage returns.
const maxRunMessage = 600

// runErrorStarts begin the lines restic starts its error reports with
// (without --json): fatal errors, a lock it could not take, items a backup
// could not read and the warning that ends such a backup.
var runErrorStarts = []string{"Fatal:", "unable to ", "error: ", "Warning: "}

// RunFailureMessage returns restic's error message from the output of a
// scheduled run that failed (what its commands wrote, oldest line first,
// e.g. systemd.State.LastOutput): the last error report restic started and
// the lines that follow it (the lock holder, "Is there a repository at the
// following location?", ...), joined with "; ". Without a recognisable
// report it returns the last three lines. Progress and summaries of
// commands that succeeded before the failing one are left out.
func RunFailureMessage(output string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	start := -1
	for i := len(lines) - 1; i >= 0 && start < 0; i-- {
		for _, p := range runErrorStarts {
			if strings.HasPrefix(lines[i], p) {
				start = i
				break
			}
		}
	}
	if start < 0 {
		start = max(0, len(lines)-3)
	}
	return truncate(strings.Join(lines[start:], "; "), maxRunMessage)
}
