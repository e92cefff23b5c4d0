package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeKnownHosts(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 2222}

func TestKnownHostsAcceptsRecordedKeyOnCustomPort(t *testing.T) {
	key := newHostKey(t)
	file := writeKnownHosts(t, knownhosts.Line([]string{"[127.0.0.2]:2222"}, key))
	cb, err := hostKeyCallback(Config{KnownHostsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("127.0.0.2:2222", loopback, key); err != nil {
		t.Fatalf("recorded key refused: %v", err)
	}
}

func TestKnownHostsAcceptsHashedEntries(t *testing.T) {
	key := newHostKey(t)
	file := writeKnownHosts(t, knownhosts.Line([]string{knownhosts.HashHostname("[127.0.0.2]:2222")}, key))
	cb, err := hostKeyCallback(Config{KnownHostsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("127.0.0.2:2222", loopback, key); err != nil {
		t.Fatalf("hashed entry refused: %v", err)
	}
}

func TestKnownHostsMismatchNamesHostAndBothFingerprints(t *testing.T) {
	recorded, presented := newHostKey(t), newHostKey(t)
	file := writeKnownHosts(t, knownhosts.Line([]string{"[127.0.0.2]:2222"}, recorded))
	cb, err := hostKeyCallback(Config{KnownHostsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	err = cb("127.0.0.2:2222", loopback, presented)
	var mismatch *HostKeyMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("want HostKeyMismatchError, got %v", err)
	}
	for _, want := range []string{"127.0.0.2:2222", ssh.FingerprintSHA256(recorded), ssh.FingerprintSHA256(presented), file} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestKnownHostsUnknownHostSaysHowToAddIt(t *testing.T) {
	other := newHostKey(t)
	file := writeKnownHosts(t, knownhosts.Line([]string{"nas.lan"}, other))
	cb, err := hostKeyCallback(Config{KnownHostsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	key := newHostKey(t)
	err = cb("127.0.0.2:2222", loopback, key)
	var unknown *UnknownHostError
	if !errors.As(err, &unknown) {
		t.Fatalf("want UnknownHostError, got %v", err)
	}
	for _, want := range []string{"ssh-keyscan -p 2222 127.0.0.2", ssh.FingerprintSHA256(key), "insecure_ignore_host_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestKnownHostsMissingFileIsAClearError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := hostKeyCallback(Config{KnownHostsFile: missing})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "host_key") {
		t.Fatalf("want an error naming the file and the alternatives, got %v", err)
	}
}

func TestPinnedHostKey(t *testing.T) {
	key, other := newHostKey(t), newHostKey(t)
	line := string(ssh.MarshalAuthorizedKey(key))
	// A pinned key wins over a known_hosts file that would refuse it.
	file := writeKnownHosts(t, knownhosts.Line([]string{"[127.0.0.2]:2222"}, other))
	cb, err := hostKeyCallback(Config{HostKey: line, KnownHostsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("127.0.0.2:2222", loopback, key); err != nil {
		t.Fatalf("pinned key refused: %v", err)
	}
	err = cb("127.0.0.2:2222", loopback, other)
	var mismatch *HostKeyMismatchError
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(key)) {
		t.Fatalf("want mismatch naming the pinned fingerprint, got %v", err)
	}
	if _, err := hostKeyCallback(Config{HostKey: "not a key"}); err == nil {
		t.Fatal("a malformed pinned key must be rejected")
	}
}

func TestInsecureIgnoreHostKeyIsExplicit(t *testing.T) {
	cb, err := hostKeyCallback(Config{InsecureIgnoreHostKey: true, KnownHostsFile: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("x:22", loopback, newHostKey(t)); err != nil {
		t.Fatal(err)
	}
}
