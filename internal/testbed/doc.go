// Package testbed starts the real peers that the provider's acceptance tests
// and the `make demo` lab talk to.
//
// Nothing here is a mock: hosts are real OpenSSH sshd instances listening on
// distinct loopback addresses (the whole 127.0.0.0/8 is loopback, so every
// instance looks like a separate machine), with their own generated host and
// client keys and real local accounts behind them (root, a passwordless-sudo
// user and a user without sudo). Tests exercise the same code paths as a real
// homelab: host key verification, public-key and password authentication,
// sudo, TCP forwarding through a bastion, handshake timeouts.
//
// Expensive artifacts are built once and cached by version under CacheDir
// (for example the OpenTofu binary used as TF_ACC_TERRAFORM_PATH, see
// EnsureOpenTofu). Builds and system changes take an exclusive file lock, so
// several `go test` processes of different packages may call them at once.
//
// The package assumes a Linux machine on which the tests run as root
// (creating accounts and running sshd need it). Missing prerequisites are
// reported as errors, never silently skipped.
package testbed
