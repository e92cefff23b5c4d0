package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyMismatchError reports a server whose host key differs from the one
// on record: possibly a reinstalled machine, possibly an attack.
type HostKeyMismatchError struct {
	Host     string
	Source   string   // the known_hosts file or "pinned host_key"
	Expected []string // fingerprints on record
	Got      string   // fingerprint the server presented
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key mismatch for %s: %s expects %s but the server presented %s; "+
		"if the host was reinstalled, update %s after checking the new key out of band, otherwise someone may be intercepting the connection",
		e.Host, e.Source, strings.Join(e.Expected, " or "), e.Got, e.Source)
}

// UnknownHostError reports a server with no host key on record.
type UnknownHostError struct {
	Host   string
	Source string
	Got    string
	Hint   string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("host %s is not in %s (it presented %s); %s", e.Host, e.Source, e.Got, e.Hint)
}

// DefaultKnownHostsFile is ~/.ssh/known_hosts.
func DefaultKnownHostsFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "known_hosts")
}

// fingerprint renders a key the way ssh-keygen -l does: "ssh-ed25519 SHA256:…".
func fingerprint(k ssh.PublicKey) string {
	return k.Type() + " " + ssh.FingerprintSHA256(k)
}

// hostKeyCallback builds the verification for cfg: a pinned key when given,
// otherwise the known_hosts file. Skipping verification must be asked for.
func hostKeyCallback(cfg Config) (ssh.HostKeyCallback, error) {
	switch {
	case cfg.InsecureIgnoreHostKey:
		return ssh.InsecureIgnoreHostKey(), nil
	case cfg.HostKey != "":
		return pinnedHostKey(cfg.HostKey)
	}
	file := cfg.KnownHostsFile
	if file == "" {
		file = DefaultKnownHostsFile()
	}
	return knownHostsCallback(file)
}

func pinnedHostKey(line string) (ssh.HostKeyCallback, error) {
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("parsing pinned host_key %q: %w (expected a line like \"ssh-ed25519 AAAA...\")", line, err)
	}
	return func(host string, _ net.Addr, got ssh.PublicKey) error {
		if bytes.Equal(want.Marshal(), got.Marshal()) {
			return nil
		}
		return &HostKeyMismatchError{Host: host, Source: "the pinned host_key",
			Expected: []string{fingerprint(want)}, Got: fingerprint(got)}
	}, nil
}

func knownHostsCallback(file string) (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("host keys cannot be verified: known_hosts file %s: %w; "+
			"create it (ssh-keyscan HOST >> %s, after checking the fingerprints), pin host_key, "+
			"or set insecure_ignore_host_key = true to skip verification", file, errors.Unwrap(err), file)
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts file %s: %w", file, err)
	}
	return func(host string, remote net.Addr, got ssh.PublicKey) error {
		err := check(host, remote, got)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) == 0 {
			return &UnknownHostError{Host: host, Source: "known_hosts file " + file, Got: fingerprint(got),
				Hint: fmt.Sprintf("verify its fingerprint and add it (ssh-keyscan %s >> %s), pin host_key, "+
					"or set insecure_ignore_host_key = true", keyscanArgs(host), file)}
		}
		want := make([]string, len(ke.Want))
		for i, k := range ke.Want {
			want[i] = fmt.Sprintf("%s (%s:%d)", fingerprint(k.Key), k.Filename, k.Line)
		}
		return &HostKeyMismatchError{Host: host, Source: "known_hosts file " + file, Expected: want, Got: fingerprint(got)}
	}, nil
}

func keyscanArgs(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "22" {
		return hostport
	}
	return "-p " + port + " " + host
}
