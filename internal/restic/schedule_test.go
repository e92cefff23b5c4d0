package restic

import (
	"strings"
	"testing"
)

func TestSupportsRetryLock(t *testing.T) {
	for v, want := range map[string]bool{"0.18.1": true, "0.16.0": true, "0.15.2": false, "0.14.0": false, "1.0.0": true, "": false, "x.y": false} {
		if got := SupportsRetryLock(v); got != want {
			t.Errorf("SupportsRetryLock(%q) = %v, want %v", v, got, want)
		}
	}
}

// RunFailureMessage on restic's recorded plain-text errors, as a failed
// unit's journal holds them.
func TestRunFailureMessage(t *testing.T) {
	for _, version := range []string{"0.18.1", "0.14.0"} {
		locked := loadRecording(t, version, "check-locked")
		got := RunFailureMessage(string(locked.Stderr))
		if !strings.HasPrefix(got, "unable to create lock in backend: repository is already locked exclusively by PID") ||
			!strings.Contains(got, "; the `unlock` command can be used to remove stale locks") {
			t.Errorf("%s locked: %q", version, got)
		}
		// A backup that succeeded, then a forget that could not lock: only
		// the forget's error.
		okThenLocked := "no parent snapshot found, will read all files\n\nFiles: 1 new, 0 changed, 0 unmodified\nsnapshot e46c0d5c saved\n" + string(locked.Stderr)
		if got2 := RunFailureMessage(okThenLocked); got2 != got {
			t.Errorf("%s backup then locked forget: %q, want %q", version, got2, got)
		}
	}
	missing := RunFailureMessage(string(loadRecording(t, "0.14.0", "cat-config-missing").Stderr))
	if !strings.HasPrefix(missing, "Fatal: unable to open config file") || !strings.Contains(missing, "; Is there a repository at the following location?; /tmp/") {
		t.Errorf("missing: %q", missing)
	}
	if got := RunFailureMessage("a\nb\nc\nd\n"); got != "b; c; d" {
		t.Errorf("no error line: %q", got)
	}
	if got := RunFailureMessage(strings.Repeat("Fatal: x", 200)); len(got) > maxRunMessage+len("…") {
		t.Errorf("not bounded: %d bytes", len(got))
	}
}
