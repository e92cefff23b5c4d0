package restic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// kind classifies a restic failure.
type kind int

const (
	kindOther kind = iota
	kindNotExist
	kindLocked
	kindWrongPassword
	kindUnreachable
	kindAlreadyExists
	kindNotInstalled
	kindIncomplete
)

func (k kind) String() string {
	switch k {
	case kindNotExist:
		return "no repository"
	case kindLocked:
		return "repository locked"
	case kindWrongPassword:
		return "wrong password"
	case kindUnreachable:
		return "backend unreachable"
	case kindAlreadyExists:
		return "repository already exists"
	case kindNotInstalled:
		return "restic not installed"
	case kindIncomplete:
		return "backup incomplete"
	}
	return "failed"
}

// Exit statuses of restic 0.17 and later (0.14 uses 1 for all of these but
// ExitIncomplete).
const (
	ExitIncomplete    = 3  // backup: some source files could not be read
	ExitNoRepository  = 10 // the repository does not exist
	ExitLocked        = 11 // the repository is locked
	ExitWrongPassword = 12 // wrong password or no key found
)

// exitNotFound is the shell's status for a program it cannot find.
const exitNotFound = 127

// maxMessage bounds how much of restic's output an error quotes.
const maxMessage = 4000

// Error is a restic command that failed. Its Message is what restic
// reported; it never holds the repository password or the Env secrets
// (restic prints repository URLs with their password replaced by "***").
type Error struct {
	// Op is the restic subcommand, e.g. "snapshots".
	Op string
	// Target names the host restic ran on.
	Target string
	// Code is restic's exit status, -1 when it did not report one (the host
	// was unreachable or the context ended).
	Code int
	// Message is restic's error message.
	Message string
	// Err is the runner's error (*remote.ExitError or *remote.ConnError).
	Err error

	kind kind
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Code >= 0 {
		return fmt.Sprintf("restic %s on %s: %s (exit status %d): %s", e.Op, e.Target, e.kind, e.Code, msg)
	}
	return fmt.Sprintf("restic %s on %s: %s: %s", e.Op, e.Target, e.kind, msg)
}

func (e *Error) Unwrap() error { return e.Err }

func kindOf(err error) kind {
	var e *Error
	if errors.As(err, &e) {
		return e.kind
	}
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return classify(ee.Code, []byte(ee.Stderr))
	}
	return kindOther
}

// ErrNotFound is a definite "there is no repository at the location":
// restic ran and said so (0.17+: exit 10; 0.14: its "unable to open config
// file" message with a does-not-exist cause), or RemoveRepository found
// nothing at the local path. An *Error of that kind matches it under
// errors.Is. An unreachable backend, a wrong password, a locked repository
// or a host that cannot be reached never matches it.
var ErrNotFound = errors.New("no restic repository at the location")

// Is makes an *Error for a missing repository match ErrNotFound.
func (e *Error) Is(target error) bool { return target == ErrNotFound && e.kind == kindNotExist }

// IsLocked reports whether err means that another restic process holds a
// conflicting lock on the repository (exit 11 / "repository is already
// locked"). Client.Unlock removes only stale locks.
func IsLocked(err error) bool { return kindOf(err) == kindLocked }

// IsWrongPassword reports whether err means that no key of the repository
// opens with the password (exit 12 / "wrong password or no key found").
func IsWrongPassword(err error) bool { return kindOf(err) == kindWrongPassword }

// IsUnreachable reports whether err means that the host restic runs on or
// the repository's backend could not be reached: the runner's connection
// failed (remote.IsUnreachable), or restic could not connect to its backend
// (connection refused, unknown host, an SSH session for sftp that did not
// start, ...).
func IsUnreachable(err error) bool {
	return kindOf(err) == kindUnreachable || remote.IsUnreachable(err)
}

// IsAlreadyExists reports whether err is `restic init` finding a
// repository at the location already.
func IsAlreadyExists(err error) bool { return kindOf(err) == kindAlreadyExists }

// IsNotInstalled reports whether err means that the restic program was not
// found on the host.
func IsNotInstalled(err error) bool { return kindOf(err) == kindNotInstalled }

// IsIncomplete reports whether err is a backup that created a snapshot but
// could not read some of its source files (exit 3). Backup returns the
// snapshot ID along with such an error.
func IsIncomplete(err error) bool { return kindOf(err) == kindIncomplete }

// unreachableMarkers are the causes, in restic's and ssh's messages, of a
// backend that could not be reached. They are checked before the
// not-exist causes: restic 0.14 wraps a connection failure in the same
// "Is there a repository at the following location?" text as a missing
// repository.
var unreachableMarkers = []string{
	"connection refused",
	"no such host",
	"i/o timeout",
	"network is unreachable",
	"no route to host",
	"connection reset by peer",
	"connection timed out",
	"host is down",
	"tls handshake timeout",
	"could not resolve hostname",
	"unable to start the sftp session",
}

// classify tells what a restic exit status and its stderr mean.
func classify(code int, stderr []byte) kind {
	msg := strings.ToLower(errorMessage(stderr))
	switch code {
	case 0:
		return kindOther
	case ExitNoRepository:
		return kindNotExist
	case ExitLocked:
		return kindLocked
	case ExitWrongPassword:
		return kindWrongPassword
	case ExitIncomplete:
		return kindIncomplete
	case exitNotFound:
		if strings.Contains(msg, "not found") {
			return kindNotInstalled
		}
	}
	switch {
	case strings.Contains(msg, "repository is already locked"):
		return kindLocked
	case strings.Contains(msg, "wrong password or no key found"):
		return kindWrongPassword
	case strings.Contains(msg, "config file already exists"):
		return kindAlreadyExists
	case containsAny(msg, unreachableMarkers):
		return kindUnreachable
	case strings.Contains(msg, "unable to open config file") &&
		containsAny(msg, []string{"does not exist", "no such file or directory"}):
		return kindNotExist
	}
	return kindOther
}

// classifyPartial classifies the output of a restic that was cut off (by the
// context) while it was still retrying its backend: only an unreachable
// backend is recognised.
func classifyPartial(stderr []byte) (kind, string) {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "returned error, retrying after") && containsAny(strings.ToLower(line), unreachableMarkers) {
			last = line
		}
	}
	if last == "" {
		return kindOther, ""
	}
	return kindUnreachable, "stopped while still retrying: " + last
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// errorMessage extracts restic's error message from its stderr: its text
// lines, without those of retried backend calls that precede a failure,
// followed by the message of a JSON "exit_error" (restic 0.17+ with
// --json). The items of JSON "error" messages (files a backup could not
// read) come first.
func errorMessage(stderr []byte) string {
	var lines, items []string
	exitMsg := ""
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var m struct {
				MessageType string          `json:"message_type"`
				Message     string          `json:"message"`
				Item        string          `json:"item"`
				Error       json.RawMessage `json:"error"`
			}
			if json.Unmarshal([]byte(line), &m) == nil {
				switch m.MessageType {
				case "exit_error":
					exitMsg = strings.TrimSpace(m.Message)
					continue
				case "error":
					items = append(items, itemError(m.Item, m.Error))
					continue
				}
			}
		}
		if strings.Contains(line, "returned error, retrying after") {
			continue
		}
		lines = append(lines, line)
	}
	if exitMsg != "" {
		lines = append(lines, exitMsg)
	}
	return strings.TrimSpace(strings.Join(append(items, lines...), "\n"))
}

// itemError describes a JSON "error" message of restic backup: 0.17+ give
// {"message": "..."}, 0.14 a Go error struct such as {"Op":"read","Path":..,"Err":5}.
func itemError(item string, raw json.RawMessage) string {
	var e struct {
		Message string `json:"message"`
		Op      string `json:"Op"`
		Err     any    `json:"Err"`
	}
	_ = json.Unmarshal(raw, &e)
	switch {
	case e.Message != "":
		return e.Message
	case e.Op != "":
		return fmt.Sprintf("%s %s failed (error %v)", e.Op, item, e.Err)
	}
	return item + ": " + string(raw)
}

// truncate keeps the first n bytes of s, marking a cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
