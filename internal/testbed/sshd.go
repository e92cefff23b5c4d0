package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	// SSHDPath is the OpenSSH server binary (Debian's openssh-server).
	SSHDPath = "/usr/sbin/sshd"
	// privsepDir must exist for sshd's privilege separation.
	privsepDir = "/run/sshd"

	defaultSSHDLogLevel = "VERBOSE"
	// sshdStartTimeout caps startup even when ctx has no deadline.
	sshdStartTimeout = 20 * time.Second
	// sshdStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	sshdStopGrace = 5 * time.Second
	// sshdPortAttempts bounds retries when a picked free port was taken
	// by someone else before sshd could bind it.
	sshdPortAttempts  = 3
	readyPollInterval = 50 * time.Millisecond
	probeTimeout      = time.Second
)

// Files inside an SSHD instance directory.
const (
	sshdConfigName     = "sshd_config"
	hostKeyName        = "ssh_host_ed25519_key"
	clientKeyName      = "client_ed25519"
	knownHostsName     = "known_hosts"
	authorizedKeysName = "authorized_keys"
	sshdLogName        = "sshd.log"
	sshdPidName        = "sshd.pid"
)

// errPortInUse reports that sshd could not bind its listen address.
var errPortInUse = errors.New("listen address already in use")

// acceptedRE matches the line sshd logs once per authenticated connection.
var acceptedRE = regexp.MustCompile(`(?m)\bAccepted (publickey|password|keyboard-interactive\S*) for \S+ from `)

// SSHDOptions configures StartSSHD.
type SSHDOptions struct {
	// Addr is the listen address, e.g. "127.0.0.2". Empty allocates a
	// 127.0.0.x (x in 2..250) not yet used by this process, so every
	// instance looks like a different host.
	Addr string
	// Port is the listen port; 0 picks a free one on Addr.
	Port int
	// LogLevel is sshd's LogLevel, "VERBOSE" by default. "DEBUG1" is needed
	// to see direct-tcpip forwarding lines, e.g. for bastion tests.
	LogLevel string
	// Detach makes sshd daemonize so that it outlives this process (used by
	// the demo lab). Otherwise it is a child of this process, killed by Stop
	// or when this process dies.
	Detach bool
	// Extra holds additional sshd_config lines. sshd uses the first value
	// it reads for most keywords, so lines before any "Match" are placed
	// ahead of the testbed defaults and override them; a "Match" line and
	// everything after it go at the end of the file.
	Extra []string
}

// SSHD is a running OpenSSH server instance with its own host key and
// a generated client key authorized for root, SudoUser and NoSudoUser.
type SSHD struct {
	// Addr and Port are the listen address and port.
	Addr string
	Port int
	// Dir is the instance directory holding config, keys, log and pid file.
	Dir string
	// HostKey is the ed25519 host key the server presents.
	HostKey ssh.PublicKey
	// HostKeyLine is HostKey in authorized_keys format ("ssh-ed25519 AAAA...").
	HostKeyLine string
	// KnownHostsPath is a known_hosts file trusting HostKey for HostPort.
	KnownHostsPath string
	// LogPath is the sshd log file.
	LogPath string
	// ClientKeyPEM is the OpenSSH-format private client key authorized for
	// root, SudoUser and NoSudoUser.
	ClientKeyPEM []byte
	// ClientKeyPath is ClientKeyPEM on disk (mode 0600).
	ClientKeyPath string
	// ConfigPath is the sshd_config file.
	ConfigPath string
	// PID is the process id of the listening sshd.
	PID int

	detach  bool
	proc    peerProc
	stopped stopOnce
}

// StartSSHD writes a fresh sshd instance (config, host key, client key,
// authorized keys, known_hosts) into dir, starts /usr/sbin/sshd on it and
// waits until it answers with an SSH banner. It creates the testbed users
// first (EnsureUsers) and needs root. Startup is bounded by ctx and by an
// internal timeout. The caller must Stop the server, e.g. in t.Cleanup.
func StartSSHD(ctx context.Context, dir string, opts SSHDOptions) (*SSHD, error) {
	if err := checkSSHDPrerequisites(); err != nil {
		return nil, err
	}
	s, err := prepareSSHD(dir, opts)
	if err != nil {
		return nil, err
	}
	err = peerStart{
		timeout:  sshdStartTimeout,
		attempts: sshdPortAttempts,
		launch: func(ctx context.Context) error {
			if err := s.configure(opts); err != nil {
				return err
			}
			if err := s.launch(ctx); err != nil {
				return fmt.Errorf("starting sshd in %s: %w", s.Dir, err)
			}
			return nil
		},
		retry: func(err error) bool {
			if opts.Port != 0 || !errors.Is(err, errPortInUse) {
				return false
			}
			s.Port = 0 // pick another one
			return true
		},
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkSSHDPrerequisites fails clearly when sshd cannot run here.
func checkSSHDPrerequisites() error {
	if err := requireRoot("running the testbed sshd"); err != nil {
		return err
	}
	if _, err := os.Stat(SSHDPath); err != nil {
		return fmt.Errorf("OpenSSH server not found (install Debian's openssh-server): %w", err)
	}
	if err := EnsureUsers(); err != nil {
		return err
	}
	if err := os.MkdirAll(privsepDir, 0o755); err != nil {
		return fmt.Errorf("creating sshd privilege separation dir: %w", err)
	}
	return nil
}

// prepareSSHD creates the instance directory with keys and authorized keys.
func prepareSSHD(dir string, opts SSHDOptions) (*SSHD, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving sshd dir: %w", err)
	}
	if err := checkConfigPath(dir); err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		if addr, err = allocLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	s := &SSHD{
		Addr:           addr,
		Port:           opts.Port,
		Dir:            dir,
		KnownHostsPath: filepath.Join(dir, knownHostsName),
		LogPath:        filepath.Join(dir, sshdLogName),
		ClientKeyPath:  filepath.Join(dir, clientKeyName),
		ConfigPath:     filepath.Join(dir, sshdConfigName),
		detach:         opts.Detach,
	}
	s.proc = peerProc{name: "sshd", exe: SSHDPath, log: s.LogPath, grace: sshdStopGrace, pid: &s.PID}
	if err := os.MkdirAll(filepath.Join(dir, authorizedKeysName), 0o755); err != nil {
		return nil, fmt.Errorf("creating sshd dir: %w", err)
	}
	if err := s.writeKeys(); err != nil {
		return nil, fmt.Errorf("writing sshd keys in %s: %w", dir, err)
	}
	noteSecretFile("SSH private key (testbed client)", s.ClientKeyPath)
	return s, nil
}

// checkConfigPath rejects directories whose path cannot be written into
// sshd_config verbatim (sshd splits on blanks and expands % tokens).
func checkConfigPath(dir string) error {
	if strings.ContainsAny(dir, " \t\n\"'%#\\") {
		return fmt.Errorf("sshd dir %q contains characters sshd_config cannot express", dir)
	}
	return nil
}

// writeKeys generates the host and client keys and authorizes the client
// key for every testbed user.
func (s *SSHD) writeKeys() error {
	host, err := newKeyPair("testbed-host@" + s.Addr)
	if err != nil {
		return err
	}
	client, err := newKeyPair("testbed-client")
	if err != nil {
		return err
	}
	s.HostKey, s.HostKeyLine, s.ClientKeyPEM = host.public, host.authLine, client.privPEM

	files := map[string]struct {
		data []byte
		mode os.FileMode
	}{
		hostKeyName:            {host.privPEM, 0o600},
		hostKeyName + ".pub":   {[]byte(host.authLine + "\n"), 0o644},
		clientKeyName:          {client.privPEM, 0o600},
		clientKeyName + ".pub": {[]byte(client.authLine + "\n"), 0o644},
	}
	for _, u := range []string{"root", SudoUser, NoSudoUser, FishUser} {
		files[filepath.Join(authorizedKeysName, u)] = struct {
			data []byte
			mode os.FileMode
		}{[]byte(client.authLine + "\n"), 0o644}
	}
	for name, f := range files {
		if err := writeFileMode(filepath.Join(s.Dir, name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFileMode writes data to path with exactly mode, even when the file
// already existed with another mode.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// configure picks the port if needed and writes sshd_config and known_hosts.
func (s *SSHD) configure(opts SSHDOptions) error {
	if s.Port == 0 {
		port, err := freePort(s.Addr)
		if err != nil {
			return err
		}
		s.Port = port
	}
	if err := os.WriteFile(s.ConfigPath, []byte(s.config(opts)), 0o644); err != nil {
		return fmt.Errorf("writing sshd config: %w", err)
	}
	line := knownhosts.Line([]string{s.HostPort()}, s.HostKey) + "\n"
	if err := os.WriteFile(s.KnownHostsPath, []byte(line), 0o644); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	return nil
}

// config renders sshd_config. Authorized keys are served by
// AuthorizedKeysCommand running cat as root: sshd reads AuthorizedKeysFile
// with the *user's* privileges, and the instance dir usually sits below a
// private (0700) temporary directory the testbed users cannot traverse.
// The users' own ~/.ssh/authorized_keys keep working as on a real host.
func (s *SSHD) config(opts SSHDOptions) string {
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = defaultSSHDLogLevel
	}
	head, tail := splitAtMatch(opts.Extra)
	lines := append([]string{"# Generated by the terraform-provider-homelab testbed."}, head...)
	lines = append(lines,
		"ListenAddress "+s.HostPort(),
		"HostKey "+filepath.Join(s.Dir, hostKeyName),
		"PidFile "+filepath.Join(s.Dir, sshdPidName),
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication yes",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"AuthorizedKeysFile .ssh/authorized_keys",
		"AuthorizedKeysCommand "+catPath()+" "+filepath.Join(s.Dir, authorizedKeysName)+"/%u",
		"AuthorizedKeysCommandUser root",
		"MaxSessions 10",
		"Subsystem sftp internal-sftp",
		"LogLevel "+logLevel,
		"PermitTunnel no",
		"AllowTcpForwarding yes",
	)
	lines = append(lines, tail...)
	return strings.Join(lines, "\n") + "\n"
}

// splitAtMatch splits extra config lines before the first Match block from
// the block and everything after it.
func splitAtMatch(extra []string) (head, tail []string) {
	for i, l := range extra {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			return extra[:i], extra[i:]
		}
	}
	return extra, nil
}

// catPath returns the absolute, symlink-free path of cat: sshd insists that
// AuthorizedKeysCommand is an absolute path owned by root.
func catPath() string {
	for _, p := range []string{"/usr/bin/cat", "/bin/cat"} {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			return resolved
		}
	}
	return "/bin/cat"
}

// launch starts sshd with the current config and waits until it is ready.
func (s *SSHD) launch(ctx context.Context) error {
	pidPath := filepath.Join(s.Dir, sshdPidName)
	_ = os.Remove(pidPath)

	if s.detach {
		// sshd daemonizes: it reports its pid in pidPath (see waitReady).
		if err := s.runDaemon(ctx); err != nil {
			return err
		}
	} else if err := s.proc.start(exec.Command(SSHDPath, "-D", "-e", "-f", s.ConfigPath), false); err != nil {
		return err
	}

	if err := s.waitReady(ctx, pidPath); err != nil {
		if s.PID != 0 {
			// Any process of that pid: sshd's own exe is not checked here.
			_ = TerminateProcess(s.PID, "", sshdStopGrace)
			s.proc.waitExited()
		}
		s.PID = 0
		return err
	}
	return nil
}

// runDaemon runs sshd as a daemon of its own, which returns once it forked.
func (s *SSHD) runDaemon(ctx context.Context) error {
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating sshd log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, SSHDPath, "-f", s.ConfigPath, "-E", s.LogPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return s.startFailure(fmt.Errorf("sshd exited: %w", err))
	}
	return nil
}

// waitReady polls until sshd presents its banner and (detached) has written
// its pid file, failing early when sshd died.
func (s *SSHD) waitReady(ctx context.Context, pidPath string) error {
	return waitUntil(ctx, readyPollInterval, func() (bool, error) {
		if s.proc.hasExited() {
			return false, s.startFailure(errors.New("sshd exited during startup"))
		}
		if s.detach && s.logContains("Cannot bind any address") {
			return false, s.startFailure(errors.New("sshd could not listen"))
		}
		if probeSSHBanner(s.HostPort()) == nil {
			if !s.detach {
				return true, nil
			}
			if pid, err := readPidFile(pidPath); err == nil {
				s.PID = pid
				return true, nil
			}
		}
		return false, nil
	}, func(err error) error {
		return s.startFailure(fmt.Errorf("sshd not ready on %s: %w", s.HostPort(), err))
	})
}

// startFailure decorates a startup error with the sshd log, marking
// address-in-use failures so that StartSSHD can retry another port.
func (s *SSHD) startFailure(err error) error {
	log, _ := s.LogText()
	if strings.Contains(log, "Address already in use") || strings.Contains(log, "Cannot bind any address") {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("%w; sshd log %s:\n%s", err, s.LogPath, tail([]byte(log), maxOutputInError))
}

func (s *SSHD) logContains(substr string) bool {
	log, err := s.LogText()
	return err == nil && strings.Contains(log, substr)
}

// probeSSHBanner connects to hostPort and reads the server's first line,
// which must start with "SSH-".
func probeSSHBanner(hostPort string) error {
	c, err := net.DialTimeout("tcp", hostPort, probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// readPidFile reads a pid written by a daemon.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, data)
	}
	return pid, nil
}

// Stop terminates the server and every connection it is serving (SIGTERM,
// then SIGKILL after a grace period). It is idempotent and safe to call on
// a detached server started by this process.
func (s *SSHD) Stop() error {
	return s.stopped.do(func() error {
		if err := s.proc.terminate(); err != nil {
			return fmt.Errorf("stopping sshd %s: %w", s.HostPort(), err)
		}
		return nil
	})
}

// HostPort returns the "addr:port" the server listens on.
func (s *SSHD) HostPort() string {
	return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port))
}

// LogText returns the server's log so far.
func (s *SSHD) LogText() (string, error) {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return "", fmt.Errorf("reading sshd log: %w", err)
	}
	return string(data), nil
}

// AcceptedConnections returns how many connections have authenticated so
// far, counting sshd's "Accepted <method> for <user>" log lines (one per
// authenticated SSH connection, whatever the number of sessions on it).
func (s *SSHD) AcceptedConnections() (int, error) {
	log, err := s.LogText()
	if err != nil {
		return 0, err
	}
	return len(acceptedRE.FindAllStringIndex(log, -1)), nil
}

// ClientConfig returns an ssh.ClientConfig logging in as user with the
// testbed client key and accepting only this server's host key.
func (s *SSHD) ClientConfig(user string) (*ssh.ClientConfig, error) {
	signer, err := ssh.ParsePrivateKey(s.ClientKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing testbed client key: %w", err)
	}
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	}, nil
}
