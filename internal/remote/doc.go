// Package remote runs commands on the machines a homelab provider manages.
//
// It knows nothing about Terraform. A Runner runs one command (an argv, never
// a shell line spliced from strings), streams a file to a path atomically and
// reads a file back. Two implementations exist:
//
//   - the SSH runner, built on golang.org/x/crypto/ssh, obtained from a Pool.
//     The pool keeps one connection per (host, port, user, credentials) for the
//     life of the provider process and multiplexes sessions on it, bounded by
//     the server's MaxSessions (OpenSSH defaults to 10). A broken connection is
//     redialled transparently before a command starts; keepalives detect dead
//     peers; a bastion is just another pooled connection the target is dialled
//     through. Host keys are verified against known_hosts or a pinned key.
//   - the local runner, for the machine the provider itself runs on.
//
// Every argument reaches the remote shell through Quote, so no input can end
// an argument or start a new command. Commands that need shell syntax use
// Script: a constant script with the user's values passed as positional
// parameters ("$1", "$2", ...), never pasted into the script text.
//
// Non-root users can run commands through "sudo -n", which fails at once
// instead of waiting on a password prompt that nobody could answer.
//
// The only thing a Runner reports as missing is a file: ReadFile's error
// matches ErrNotFound (which is fs.ErrNotExist) under errors.Is. A host that
// cannot be reached is a *ConnError (IsUnreachable), a command that failed an
// *ExitError, and neither ever matches ErrNotFound.
package remote
