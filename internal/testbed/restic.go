package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ResticVersion is the restic release the tests run as the current restic.
// It is built from the Go module proxy (see EnsureRestic).
const ResticVersion = "0.18.1"

// RestServerVersion is the rest-server release StartRestServer runs.
const RestServerVersion = "0.14.0"

// DebianResticPath is where Debian's restic package (0.14 on Debian 12)
// installs restic: the old release the tests check compatibility with.
const DebianResticPath = "/usr/bin/restic"

const (
	resticModule     = "github.com/restic/restic"
	restServerModule = "github.com/restic/rest-server"

	// resticVersionTimeout bounds `restic version` / `rest-server --version`.
	resticVersionTimeout = 30 * time.Second
	// restServerStartTimeout caps startup even when ctx has no deadline.
	restServerStartTimeout = 20 * time.Second
	// restServerStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	restServerStopGrace = 5 * time.Second

	// DefaultRestServerUser is the user StartRestServer authorizes when
	// neither NoAuth nor a User is given (with a random password).
	DefaultRestServerUser = "restic"
)

// Files inside a RestServer instance directory.
const (
	restServerDataName     = "data"
	restServerHtpasswdName = "htpasswd"
	restServerLogName      = "rest-server.log"
	restServerAccessName   = "access.log"
)

// restServerListenRE matches the line rest-server logs once it listens;
// with port 0 it is the only place the chosen port shows up.
var restServerListenRE = regexp.MustCompile(`(?m)^start server on (\S+)$`)

// EnsureRestic returns the path of a cached restic binary of ResticVersion
// at <CacheDir>/restic-<version>/restic, building it from the Go module proxy
// first if it is missing or broken (about two and a half minutes with empty
// Go module and build caches, about a minute with the modules downloaded).
// It is built with cgo disabled, so the binary is static and
// can be uploaded to and run on any Linux amd64 host, such as a Debian VM.
// Concurrent callers, in this or other processes, serialize on a file lock
// so that only one of them builds. logf receives progress messages and may
// be nil.
func EnsureRestic(ctx context.Context, logf func(string, ...any)) (string, error) {
	return ensureGoBinary(ctx, goBinary{
		label:   "restic " + ResticVersion,
		dirName: "restic-" + ResticVersion,
		file:    "restic",
		pkg:     resticModule + "/cmd/restic",
		ldflags: "-s -w",
		writeWrapper: func(ctx context.Context, goBin, dir string, _ func(string, ...any)) error {
			return writeModuleWrapper(ctx, goBin, dir, "resticwrap", resticModule, ResticVersion, resticModule+"/cmd/restic", nil)
		},
		verify: func(ctx context.Context, bin string) error {
			return verifyStaticVersion(ctx, bin, []string{"version"}, "restic "+ResticVersion+" ")
		},
	}, logf)
}

// EnsureRestServer returns the path of a cached rest-server binary of
// RestServerVersion at <CacheDir>/rest-server-<version>/rest-server,
// building it from the Go module proxy first if needed (seconds once
// EnsureRestic has filled the caches), like EnsureRestic.
func EnsureRestServer(ctx context.Context, logf func(string, ...any)) (string, error) {
	return ensureGoBinary(ctx, goBinary{
		label:   "rest-server " + RestServerVersion,
		dirName: "rest-server-" + RestServerVersion,
		file:    "rest-server",
		pkg:     restServerModule + "/cmd/rest-server",
		ldflags: "-s -w",
		writeWrapper: func(ctx context.Context, goBin, dir string, _ func(string, ...any)) error {
			return writeModuleWrapper(ctx, goBin, dir, "restserverwrap", restServerModule, RestServerVersion, restServerModule+"/cmd/rest-server", nil)
		},
		verify: func(ctx context.Context, bin string) error {
			return verifyStaticVersion(ctx, bin, []string{"--version"}, "rest-server "+RestServerVersion+" ")
		},
	}, logf)
}

// DebianRestic returns DebianResticPath after checking that it exists.
func DebianRestic() (string, error) {
	if _, err := os.Stat(DebianResticPath); err != nil {
		return "", fmt.Errorf("Debian's restic is needed at %s (package restic; run scripts/install-deps): %w", DebianResticPath, err)
	}
	return DebianResticPath, nil
}

// verifyStaticVersion checks that bin is a statically linked executable and
// that running it with args prints a first line starting with want.
func verifyStaticVersion(ctx context.Context, bin string, args []string, want string) error {
	if err := checkStatic(bin); err != nil {
		return err
	}
	first, err := versionLine(ctx, bin, args...)
	if err != nil {
		return err
	}
	if !strings.Contains(first+" ", want) {
		return fmt.Errorf("%s %s printed %q, want it to contain %q", bin, strings.Join(args, " "), first, strings.TrimSpace(want))
	}
	return nil
}

// versionLine runs bin with args and returns the first line it printed.
func versionLine(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, resticVersionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("running %s %s: %w: %s", bin, strings.Join(args, " "), err, tail(stderr.Bytes(), maxOutputInError))
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(first), nil
}

// checkStatic fails when bin is not an ELF executable or asks for a dynamic
// loader (a cgo build), which would tie it to this machine's libc.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("reading %s as ELF: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked; it must be built with CGO_ENABLED=0", bin)
		}
	}
	return nil
}

// RestServerOptions configures StartRestServer.
type RestServerOptions struct {
	// Addr is the listen address, "127.0.0.1:0" (a free port) by default.
	// It must be a loopback address: the testbed never serves other hosts.
	Addr string
	// NoAuth turns authentication off (rest-server --no-auth).
	NoAuth bool
	// User and Password are the one login rest-server accepts, written
	// bcrypt-hashed into an htpasswd file. Without NoAuth and User, the user
	// is DefaultRestServerUser with a random password.
	User, Password string
	// Logf receives progress messages (building rest-server) and may be nil.
	Logf func(string, ...any)
	// Detach makes rest-server outlive this process (used by the demo lab).
	// Otherwise it is a child of this process, killed by Stop or when this
	// process dies.
	Detach bool
}

// RestServer is a running rest-server serving repositories under Dir/data.
type RestServer struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT" (no credentials).
	URL string
	// Host and Port are the listen address.
	Host string
	Port int
	// Dir is the instance directory: data/ (the repositories), the htpasswd
	// file and the logs.
	Dir string
	// User and Password are the login, both empty with NoAuth.
	User, Password string
	// PID is the rest-server process.
	PID int
	// LogPath is rest-server's stdout and stderr; requests are logged to
	// access.log next to it.
	LogPath string

	bin     string
	proc    peerProc
	stopped stopOnce
}

// StartRestServer starts rest-server RestServerVersion (built first if
// needed) on a loopback address with its repositories in dir/data and waits
// until it answers HTTP. The caller must Stop it, e.g. in t.Cleanup; it also
// dies with this process.
func StartRestServer(ctx context.Context, dir string, opts RestServerOptions) (*RestServer, error) {
	opts.Logf = logfOrNop(opts.Logf)
	s, err := prepareRestServer(dir, opts)
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	err = peerStart{
		ensure: func(ctx context.Context) error {
			bin, err := EnsureRestServer(ctx, opts.Logf)
			if err != nil {
				return err
			}
			// ProcessAlive compares against the resolved /proc/PID/exe.
			if bin, err = filepath.EvalSymlinks(bin); err != nil {
				return fmt.Errorf("resolving rest-server binary: %w", err)
			}
			s.bin = bin
			s.proc = peerProc{name: "rest-server", exe: bin, log: s.LogPath, grace: restServerStopGrace, pid: &s.PID}
			return nil
		},
		timeout: restServerStartTimeout,
		launch: func(ctx context.Context) error {
			if err := s.launch(ctx, addr, opts.NoAuth, opts.Detach); err != nil {
				return fmt.Errorf("starting rest-server in %s: %w", s.Dir, err)
			}
			return nil
		},
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepareRestServer validates opts and writes the instance directory.
func prepareRestServer(dir string, opts RestServerOptions) (*RestServer, error) {
	if opts.Addr != "" {
		host, _, err := net.SplitHostPort(opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("rest-server address %q: %w", opts.Addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("rest-server address %q is not a loopback IP address", opts.Addr)
		}
	}
	if opts.NoAuth && (opts.User != "" || opts.Password != "") {
		return nil, errors.New("rest-server: NoAuth excludes User and Password")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving rest-server dir: %w", err)
	}
	s := &RestServer{Dir: dir, LogPath: filepath.Join(dir, restServerLogName)}
	if err := os.MkdirAll(filepath.Join(dir, restServerDataName), 0o700); err != nil {
		return nil, fmt.Errorf("creating rest-server dir: %w", err)
	}
	if opts.NoAuth {
		return s, nil
	}
	s.User, s.Password = opts.User, opts.Password
	if s.User == "" {
		s.User = DefaultRestServerUser
	}
	if s.Password == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // never fails on Linux
		s.Password = hex.EncodeToString(b)
	}
	if strings.ContainsAny(s.User, ":\n\r") || strings.ContainsAny(s.Password, "\n\r") {
		return nil, errors.New("rest-server: the user may not contain colons or line breaks, the password no line breaks")
	}
	noteSecret("rest-server password", s.Password)
	hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hashing the rest-server password: %w", err)
	}
	line := s.User + ":" + string(hash) + "\n"
	if err := writeFileMode(filepath.Join(dir, restServerHtpasswdName), []byte(line), 0o600); err != nil {
		return nil, fmt.Errorf("writing rest-server htpasswd: %w", err)
	}
	return s, nil
}

// launch starts rest-server and waits until it is ready.
func (s *RestServer) launch(ctx context.Context, addr string, noAuth, detach bool) error {
	args := []string{
		"--path", filepath.Join(s.Dir, restServerDataName),
		"--listen", addr,
		"--log", filepath.Join(s.Dir, restServerAccessName),
	}
	if noAuth {
		args = append(args, "--no-auth")
	} else {
		args = append(args, "--htpasswd-file", filepath.Join(s.Dir, restServerHtpasswdName))
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	if err := s.proc.start(cmd, detach); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		s.proc.abort()
		log, _ := os.ReadFile(s.LogPath)
		return fmt.Errorf("%w; rest-server log %s:\n%s", err, s.LogPath, tail(log, maxOutputInError))
	}
	return nil
}

// waitReady waits for the "start server on ADDR" log line, then until an
// HTTP request gets any answer, failing early when rest-server exits.
func (s *RestServer) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: probeTimeout}
	return waitUntil(ctx, readyPollInterval, func() (bool, error) {
		if !s.proc.running() {
			return false, errors.New("rest-server exited during startup")
		}
		if s.Port == 0 {
			if log, err := os.ReadFile(s.LogPath); err == nil {
				if m := restServerListenRE.FindSubmatch(log); m != nil {
					if err := s.setAddr(string(m[1])); err != nil {
						return false, err
					}
				}
			}
		}
		if s.Port != 0 {
			// Any HTTP status (401 without credentials) means it serves.
			resp, err := client.Get(s.URL + "/")
			if err == nil {
				resp.Body.Close()
				return true, nil
			}
		}
		return false, nil
	}, func(err error) error {
		return fmt.Errorf("rest-server not ready: %w", err)
	})
}

// setAddr records the address rest-server reported listening on.
func (s *RestServer) setAddr(hostPort string) error {
	host, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("rest-server reported listening on %q: %w", hostPort, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return fmt.Errorf("rest-server reported listening on %q: bad port", hostPort)
	}
	s.Host, s.Port = host, port
	s.URL = "http://" + net.JoinHostPort(host, portStr)
	return nil
}

// RepoURL returns the restic repository string of the repository name on
// this server ("rest:http://user:password@127.0.0.1:PORT/name/"), with the
// credentials escaped as the URL needs. An empty name is the server's root
// repository.
func (s *RestServer) RepoURL(name string) string {
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/"}
	if name != "" {
		u.Path = "/" + strings.Trim(name, "/") + "/"
	}
	if s.User != "" {
		u.User = url.UserPassword(s.User, s.Password)
	}
	return "rest:" + u.String()
}

// Exe is the rest-server executable the instance runs (resolved, as
// /proc/PID/exe names it).
func (s *RestServer) Exe() string { return s.bin }

// DataDir returns the directory holding the repositories: repository name
// lives in DataDir()/name.
func (s *RestServer) DataDir() string { return filepath.Join(s.Dir, restServerDataName) }

// LogText returns what rest-server printed so far.
func (s *RestServer) LogText() (string, error) {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return "", fmt.Errorf("reading rest-server log: %w", err)
	}
	return string(data), nil
}

// Stop terminates rest-server (SIGTERM, then SIGKILL after a grace period).
// It is idempotent; Dir is left in place.
func (s *RestServer) Stop() error {
	return s.stopped.do(func() error {
		if err := s.proc.terminate(); err != nil {
			return fmt.Errorf("stopping rest-server %s: %w", s.URL, err)
		}
		return nil
	})
}
