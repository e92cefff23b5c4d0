package remote

import (
	"bytes"
	"fmt"
)

// sudoWrap prefixes argv with a sudo that never prompts: "-n" makes sudo
// fail at once when it would need a password, so no command can hang on a
// prompt nobody answers.
func sudoWrap(argv []string) []string {
	return append([]string{"sudo", "-n", "--"}, argv...)
}

// sudoError turns sudo's own refusals into an error that says what to fix.
// It returns nil when the failure came from the wrapped command, not sudo.
func sudoError(target string, code int, stderr []byte) error {
	s := bytes.TrimSpace(stderr)
	first := string(bytes.SplitN(s, []byte("\n"), 2)[0])
	switch {
	case code == 127 && bytes.Contains(s, []byte("sudo")) && bytes.Contains(s, []byte("not found")):
		// The login shell could not find sudo itself.
		return &SudoError{Target: target, Detail: first, Hint: "install sudo on the host or connect as root"}
	case code != 1 || !bytes.HasPrefix(s, []byte("sudo:")):
		return nil
	case bytes.Contains(s, []byte("password is required")), bytes.Contains(s, []byte("a terminal is required")):
		return &SudoError{Target: target, Detail: first,
			Hint: "allow this user passwordless sudo (a NOPASSWD rule in /etc/sudoers.d) or connect as root"}
	case bytes.Contains(s, []byte("is not in the sudoers file")), bytes.Contains(s, []byte("is not allowed to execute")):
		return &SudoError{Target: target, Detail: first, Hint: "grant this user sudo rights or connect as root"}
	}
	// Anything else prefixed "sudo:" (e.g. "sudo: zfs: command not found")
	// is about the wrapped command and is reported as its failure.
	return nil
}

// SudoError reports that sudo refused to run a command.
type SudoError struct {
	Target string
	Detail string
	Hint   string
}

func (e *SudoError) Error() string {
	return fmt.Sprintf("sudo on %s refused to run the command (%s): %s", e.Target, e.Detail, e.Hint)
}
