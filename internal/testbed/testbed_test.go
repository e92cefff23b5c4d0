package testbed

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// startTestSSHD starts an sshd for the test and stops it at cleanup.
func startTestSSHD(t *testing.T, opts SSHDOptions) *SSHD {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartSSHD(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatalf("StartSSHD: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// dial opens an SSH connection with cfg and closes it at cleanup.
func dial(t *testing.T, s *SSHD, cfg *ssh.ClientConfig) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.HostPort(), cfg)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", cfg.User, s.HostPort(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialKey logs in as user with the testbed client key.
func dialKey(t *testing.T, s *SSHD, user string) *ssh.Client {
	t.Helper()
	cfg, err := s.ClientConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	return dial(t, s, cfg)
}

// run runs cmd in a new session and returns trimmed stdout and stderr.
func runSession(t *testing.T, c *ssh.Client, cmd string) (stdout, stderr string, err error) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	err = sess.Run(cmd)
	return strings.TrimSpace(o.String()), strings.TrimSpace(e.String()), err
}

func mustRun(t *testing.T, c *ssh.Client, cmd, want string) {
	t.Helper()
	out, errOut, err := runSession(t, c, cmd)
	if err != nil {
		t.Fatalf("%q as %s: %v (stderr: %s)", cmd, c.User(), err, errOut)
	}
	if out != want {
		t.Fatalf("%q as %s printed %q, want %q", cmd, c.User(), out, want)
	}
}

func TestSSHDUsersAndSudo(t *testing.T) {
	s := startTestSSHD(t, SSHDOptions{})

	if !strings.HasPrefix(s.Addr, "127.0.0.") || s.Addr == "127.0.0.1" {
		t.Errorf("allocated address %q, want a 127.0.0.x other than .1", s.Addr)
	}
	if fi, err := os.Stat(s.ClientKeyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client key %s: mode %v, err %v; want 0600", s.ClientKeyPath, fi.Mode().Perm(), err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))); got != s.HostKeyLine {
		t.Errorf("HostKeyLine %q does not match HostKey %q", s.HostKeyLine, got)
	}

	root := dialKey(t, s, "root")
	mustRun(t, root, "id -u", "0")

	sudo := dialKey(t, s, SudoUser)
	mustRun(t, sudo, "id -un", SudoUser)
	mustRun(t, sudo, "sudo -n id -u", "0")

	nosudo := dialKey(t, s, NoSudoUser)
	start := time.Now()
	_, errOut, err := runSession(t, nosudo, "sudo -n true")
	var exit *ssh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() == 0 {
		t.Fatalf("sudo -n as %s: err %v, want a non-zero exit", NoSudoUser, err)
	}
	if !strings.Contains(errOut, "password is required") {
		t.Errorf("sudo -n as %s: stderr %q, want it to say a password is required", NoSudoUser, errOut)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("sudo -n as %s took %v, want it to fail fast", NoSudoUser, d)
	}

	dial(t, s, &ssh.ClientConfig{
		User:            NoSudoUser,
		Auth:            []ssh.AuthMethod{ssh.Password(NoSudoPassword)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
	})

	if n, err := s.AcceptedConnections(); err != nil || n != 4 {
		log, _ := s.LogText()
		t.Errorf("AcceptedConnections = %d, %v; want 4\nlog:\n%s", n, err, log)
	}
}

func TestSSHDHostKeyVerification(t *testing.T) {
	s := startTestSSHD(t, SSHDOptions{})

	cb, err := knownhosts.New(s.KnownHostsPath)
	if err != nil {
		t.Fatalf("parsing %s: %v", s.KnownHostsPath, err)
	}
	cfg, err := s.ClientConfig("root")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = cb
	dial(t, s, cfg)

	other, err := newKeyPair("other")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = ssh.FixedHostKey(other.public)
	if c, err := ssh.Dial("tcp", s.HostPort(), cfg); err == nil {
		c.Close()
		t.Fatal("connected although the host key did not match")
	}
}

func TestSSHDStopEndsConnections(t *testing.T) {
	s := startTestSSHD(t, SSHDOptions{LogLevel: "DEBUG1", Extra: []string{"MaxSessions 3"}})
	if cfg, err := os.ReadFile(s.ConfigPath); err != nil || !strings.Contains(string(cfg), "LogLevel DEBUG1") {
		t.Fatalf("config lacks LogLevel DEBUG1 (err %v)", err)
	}
	c := dialKey(t, s, "root")
	mustRun(t, c, "true", "")

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if sess, err := c.NewSession(); err == nil {
		sess.Close()
		t.Error("an open connection still works after Stop")
	}
	if conn, err := net.DialTimeout("tcp", s.HostPort(), time.Second); err == nil {
		conn.Close()
		t.Error("port still accepts connections after Stop")
	}
}

func TestSSHDDistinctAddresses(t *testing.T) {
	a := startTestSSHD(t, SSHDOptions{})
	b := startTestSSHD(t, SSHDOptions{})
	if a.Addr == b.Addr {
		t.Errorf("two instances share address %s", a.Addr)
	}
}

func TestSSHDPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	s, err := StartSSHD(context.Background(), t.TempDir(), SSHDOptions{Addr: "127.0.0.1", Port: port})
	if err == nil {
		s.Stop()
		t.Fatal("StartSSHD succeeded on a port that is in use")
	}
	if !errors.Is(err, errPortInUse) {
		t.Errorf("error %v does not report the port as in use", err)
	}
}

func TestBlackhole(t *testing.T) {
	addr, stop, err := StartBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial blackhole: %v", err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if n, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read from blackhole = %d, %v; want a timeout", n, err)
	}

	stop()
	stop()
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Error("blackhole still accepts after stop")
	}
}

func TestParseGoMod(t *testing.T) {
	gomod := `module example.com/x

go 1.26.6 // comment

require a.example/b v1.0.0

replace a.example/c v1.2.0 => b.example/c v1.2.1 // fork
replace (
	d.example/e => d.example/f v0.1.0
	// only a comment
	g.example/h => ./local
)
`
	goVersion, replaces := parseGoMod([]byte(gomod))
	if goVersion != "1.26.6" {
		t.Errorf("go version %q, want 1.26.6", goVersion)
	}
	want := []string{
		"a.example/c v1.2.0 => b.example/c v1.2.1",
		"d.example/e => d.example/f v0.1.0",
		"g.example/h => ./local",
	}
	if strings.Join(replaces, "\n") != strings.Join(want, "\n") {
		t.Errorf("replaces = %q, want %q", replaces, want)
	}
	if isLocalReplace(replaces[0]) || !isLocalReplace(replaces[2]) {
		t.Error("isLocalReplace misclassified a directive")
	}
}

func TestWriteCLIConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tofurc")
	if err := WriteCLIConfig(path, `/plugins/${x}"dir`); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"registry.opentofu.org/terraform-homelab/homelab" = "/plugins/$${x}\"dir"`,
		`"registry.terraform.io/terraform-homelab/homelab" = "/plugins/$${x}\"dir"`,
		"direct {}",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("CLI config:\n%s\nwant it to contain %s", data, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testbed")); err != nil {
		t.Errorf("RepoRoot %s does not contain internal/testbed: %v", root, err)
	}
}
