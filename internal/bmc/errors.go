package bmc

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// kind classifies a failure.
type kind int

const (
	// kindOther is any failure not listed below: the BMC answered but
	// refused or failed the operation.
	kindOther kind = iota
	// kindAuth: wrong username or password.
	kindAuth
	// kindPrivilege: the user logged in but lacks the privilege needed.
	kindPrivilege
	// kindNoAnswer: nothing answered within the time allowed.
	kindNoAnswer
	// kindRefused: the BMC's port refused the connection.
	kindRefused
	// kindTransient: a failure worth retrying (session limit, busy BMC,
	// a dropped connection).
	kindTransient
	// kindTLS: the BMC's certificate is not trusted.
	kindTLS
	// kindNotRedfish: something answered on the port, but no Redfish
	// service (auto protocol then tries IPMI).
	kindNotRedfish
	// kindCanceled: the caller canceled the operation.
	kindCanceled
)

// Error is what every Client method returns on failure.
type Error struct {
	// Op is the operation, e.g. "read power state".
	Op string
	// BMC is the "host:port" that was addressed.
	BMC string
	// Protocol is "redfish" or "ipmi" ("" while auto detection had none).
	Protocol string
	// Err is the underlying error, if any.
	Err error

	kind kind
	msg  string
	// beforeCommand is set when the failure happened before the operation's
	// command reached the BMC (no session), so that repeating it is safe.
	beforeCommand bool
}

func (e *Error) Error() string {
	if e.Protocol == "" {
		return e.Op + ": " + e.msg
	}
	return fmt.Sprintf("%s (%s): %s", e.Op, protocolLabel(e.Protocol), e.msg)
}

func (e *Error) Unwrap() error { return e.Err }

// IsAuth reports whether err means that the BMC refused the username or
// password (or, rarer, accepted them for a user without the privilege level
// the operation needs).
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.kind == kindAuth || e.kind == kindPrivilege)
}

// IsUnreachable reports whether err means that the BMC could not be reached:
// no answer within the timeout, or its port refused the connection. Nothing
// was changed on the BMC then.
func IsUnreachable(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.kind == kindNoAnswer || e.kind == kindRefused)
}

// retriable reports whether an operation that failed with e may be repeated.
// idempotent operations (reads, power on/off, boot device) may be repeated
// after any transient failure; others (power cycle/reset) only when the
// command cannot have reached the BMC.
func (e *Error) retriable(idempotent bool) bool {
	switch e.kind {
	case kindTransient, kindRefused:
		return idempotent || e.beforeCommand
	}
	return false
}

func protocolLabel(p string) string {
	switch p {
	case ProtocolIPMI:
		return "IPMI"
	case ProtocolRedfish:
		return "Redfish"
	}
	return p
}

// newError builds the error text for a classified failure.
func newError(k kind, op, bmc, protocol, user string, timeout time.Duration, detail string, err error) *Error {
	e := &Error{Op: op, BMC: bmc, Protocol: protocol, Err: err, kind: k}
	switch k {
	case kindAuth:
		e.msg = fmt.Sprintf("wrong username or password: BMC at %s refused the login of user %q", bmc, user)
	case kindPrivilege:
		e.msg = fmt.Sprintf("BMC at %s accepted user %q but refused the privilege level the operation needs (it needs an administrator or operator account)", bmc, user)
	case kindNoAnswer:
		e.msg = fmt.Sprintf("BMC at %s did not answer within %s", bmc, formatDuration(timeout))
	case kindRefused:
		e.msg = fmt.Sprintf("BMC at %s refused the connection (nothing listens on that port)", bmc)
	case kindTLS:
		e.msg = fmt.Sprintf("the TLS certificate of BMC at %s is not trusted; set insecure TLS to accept a self-signed BMC certificate", bmc)
	case kindNotRedfish:
		e.msg = fmt.Sprintf("no Redfish service at %s", bmc)
	case kindCanceled:
		e.msg = fmt.Sprintf("canceled while talking to BMC at %s", bmc)
	default:
		e.msg = fmt.Sprintf("BMC at %s", bmc)
	}
	if detail = strings.TrimSpace(detail); detail != "" {
		e.msg += ": " + detail
	}
	return e
}

// formatDuration prints whole seconds for durations of a second or more.
func formatDuration(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// oneLine shortens a (multi-line) tool message for an error text. It also
// flattens bmclib's multi-errors ("2 errors occurred:\n\t* provider:
// gofish: ...\n\t* failed to ...") to the providers' own messages.
func oneLine(s string, max int) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "* "))
		switch {
		case l == "", strings.HasSuffix(l, "errors occurred:"), strings.HasSuffix(l, "error occurred:"),
			strings.HasPrefix(l, "failed to "), strings.HasPrefix(l, "failure to "),
			strings.HasPrefix(l, "no Opener implementations found"):
			continue
		}
		for _, prefix := range []string{"provider: gofish: ", "provider: ipmitool: ", "provider: gofish, ", "provider: ipmitool, "} {
			l = strings.TrimPrefix(l, prefix)
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		parts = []string{strings.TrimSpace(s)}
	}
	s = strings.Join(strings.Fields(strings.Join(parts, "; ")), " ")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
