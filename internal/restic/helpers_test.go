package restic

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// Debian 12's restic release, the old version every test also runs.
const debianResticVersion = "0.14.0"

// testPassword is the repository password of the tests.
const testPassword = "correct horse battery staple"

// resticBin is one restic release the tests run.
type resticBin struct {
	Version string // e.g. "0.18.1"
	Path    string
}

var ensureRestic struct {
	sync.Mutex
	path string
}

// resticBins returns the current restic (built through the module proxy
// and cached) and Debian's 0.14. A missing binary fails the test.
func resticBins(t testing.TB) []resticBin {
	t.Helper()
	ensureRestic.Lock()
	defer ensureRestic.Unlock()
	if ensureRestic.path == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		p, err := testbed.EnsureRestic(ctx, t.Logf)
		if err != nil {
			t.Fatalf("restic %s: %v", testbed.ResticVersion, err)
		}
		ensureRestic.path = p
	}
	debian, err := testbed.DebianRestic()
	if err != nil {
		t.Fatal(err)
	}
	return []resticBin{{testbed.ResticVersion, ensureRestic.path}, {debianResticVersion, debian}}
}

// forEachRestic runs f for each restic release, in parallel subtests
// grouped under name; it returns when all of them are done.
func forEachRestic(t *testing.T, name string, f func(t *testing.T, bin resticBin)) {
	t.Helper()
	bins := resticBins(t)
	t.Run(name, func(t *testing.T) {
		for _, bin := range bins {
			t.Run("restic-"+bin.Version, func(t *testing.T) {
				t.Parallel()
				f(t, bin)
			})
		}
	})
}

// newClient returns a client running bin locally against repo, with a
// cache directory of the test's own.
func newClient(t testing.TB, bin resticBin, repo string) *Client {
	t.Helper()
	return &Client{
		Runner: remote.NewLocal(false),
		Repo: Repo{
			Repository: repo,
			Password:   testPassword,
			ResticPath: bin.Path,
			Env:        map[string]string{"RESTIC_CACHE_DIR": filepath.Join(t.TempDir(), "cache")},
		},
		Logger: func(msg string, fields map[string]any) { t.Logf("%s %v", msg, fields) },
	}
}

// withRepo returns a copy of c for another repository.
func withRepo(c *Client, repo string) *Client {
	c2 := *c
	c2.Repo.Repository = repo
	return &c2
}

// withPassword returns a copy of c with another password.
func withPassword(c *Client, password string) *Client {
	c2 := *c
	c2.Repo.Password = password
	return &c2
}

// writeTree writes a small source tree: a.txt, sub/b.txt and skip.log.
func writeTree(t testing.TB, dir string) string {
	t.Helper()
	files := map[string]string{"a.txt": "hello restic\n", "sub/b.txt": "world\n", "skip.log": "excluded\n"}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// resticEnv is the environment of a restic started directly by a test
// (not through the client): a test process may use RESTIC_PASSWORD.
func resticEnv(c *Client) []string {
	env := append(os.Environ(), "RESTIC_REPOSITORY="+c.Repo.Repository, "RESTIC_PASSWORD="+c.Repo.Password)
	for k, v := range c.Repo.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// resticDirect runs c's restic directly with args and returns its stdout.
func resticDirect(ctx context.Context, c *Client, args ...string) (string, error) {
	var opts []string
	for k, v := range c.Repo.Options {
		opts = append(opts, "-o", k+"="+v)
	}
	cmd := exec.CommandContext(ctx, c.Repo.ResticPath, append(opts, args...)...)
	cmd.Env = resticEnv(c)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("restic %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// listLocks returns the IDs of the repository's lock files.
func listLocks(ctx context.Context, t testing.TB, c *Client) []string {
	t.Helper()
	out, err := resticDirect(ctx, c, "list", "locks", "--no-lock")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// lockHolder is a real restic process holding an exclusive lock on a
// repository: `restic key passwd` takes the exclusive lock, then waits for
// the new password on its standard input, which the holder keeps open.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin *os.File
	done  chan struct{}
}

// holdLock starts a lock holder on c's repository and waits until its lock
// is visible in the repository.
func holdLock(t testing.TB, c *Client) *lockHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for k, v := range c.Repo.Options {
		opts = append(opts, "-o", k+"="+v)
	}
	cmd := exec.Command(c.Repo.ResticPath, append(opts, "key", "passwd")...)
	cmd.Env = resticEnv(c)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	h := &lockHolder{cmd: cmd, stdin: w, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(h.crash)
	for len(listLocks(ctx, t, c)) == 0 {
		select {
		case <-h.done:
			t.Fatalf("lock holder exited: %s", out.String())
		case <-ctx.Done():
			t.Fatalf("lock holder took no lock: %s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return h
}

// crash kills the holder with SIGKILL, as a crash would: its lock file stays
// behind, stale (same host, dead pid).
func (h *lockHolder) crash() {
	if h.cmd.Process != nil {
		_ = h.cmd.Process.Kill()
	}
	<-h.done
	h.stdin.Close()
}

// startSFTPHost starts a testbed sshd and returns it with the sftp.command
// that makes restic log in to it as root with the testbed's client key and
// known_hosts.
func startSFTPHost(t testing.TB) (*testbed.SSHD, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := testbed.StartSSHD(ctx, t.TempDir(), testbed.SSHDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, sftpCommand(s)
}

func sftpCommand(s *testbed.SSHD) string {
	return fmt.Sprintf("ssh -F /dev/null -i %s -p %d -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes root@%s -s sftp",
		s.ClientKeyPath, s.Port, s.KnownHostsPath, s.Addr)
}

// sshRunner returns a runner logged in to s as root.
func sshRunner(t testing.TB, s *testbed.SSHD) remote.Runner {
	t.Helper()
	p := remote.NewPool(nil)
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.Runner(remote.Config{Host: s.Addr, Port: s.Port, User: "root", PrivateKey: string(s.ClientKeyPEM),
		KnownHostsFile: s.KnownHostsPath, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRestServer starts a rest-server with authentication.
func startRestServer(t testing.TB) *testbed.RestServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := testbed.StartRestServer(ctx, t.TempDir(), testbed.RestServerOptions{User: "backup", Password: "http-secret-0815", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// unreadableFile is a path restic can stat but never read, even as root:
// reading a process's memory at offset 0 fails with EIO.
const unreadableFile = "/proc/self/mem"

// corruptPacks overwrites bytes in every pack file of a local repository.
func corruptPacks(t testing.TB, repo string) {
	t.Helper()
	err := filepath.Walk(filepath.Join(repo, "data"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("garbage-garbage-garbage"), 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// copyDir copies a directory tree (a repository) with cp -a.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", "--", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}
