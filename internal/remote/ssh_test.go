package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// These tests run the SSH runner against a real OpenSSH sshd started here.

func startSSHD(t testing.TB, extra ...string) *testbed.SSHD {
	t.Helper()
	s, err := testbed.StartSSHD(context.Background(), t.TempDir(), testbed.SSHDOptions{Extra: extra})
	if err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func config(s *testbed.SSHD, user string) remote.Config {
	return remote.Config{Host: s.Addr, Port: s.Port, User: user, PrivateKey: string(s.ClientKeyPEM),
		KnownHostsFile: s.KnownHostsPath, Timeout: 10 * time.Second}
}

func runner(t testing.TB, p *remote.Pool, cfg remote.Config) remote.Runner {
	t.Helper()
	r, err := p.Runner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSSHRunsCommandsAndMovesFiles(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	r := runner(t, p, config(s, "root"))
	ctx := context.Background()

	res, err := r.Run(ctx, remote.Command("sh", "-c", "cat; echo err >&2").WithStdin(strings.NewReader("from stdin")))
	if err != nil || string(res.Stdout) != "from stdin" || string(res.Stderr) != "err\n" {
		t.Fatalf("got %q %q %v", res.Stdout, res.Stderr, err)
	}
	_, err = r.Run(ctx, remote.Script(`echo "cannot open '$1': no such pool" >&2; exit 1`, "it's"))
	if code, ok := remote.ExitCode(err); !ok || code != 1 || !strings.Contains(err.Error(), "cannot open 'it's'") {
		t.Fatalf("want exit 1 with stderr, got %v", err)
	}
	if remote.IsUnreachable(err) {
		t.Fatal("a failed command must not look like an unreachable host")
	}

	dir := t.TempDir()
	target := filepath.Join(dir, "a dir", "file $(touch pwned).txt")
	if err := remote.WriteFile(ctx, r, target, []byte("content\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadFile(ctx, target)
	if err != nil || string(got) != "content\n" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("uploaded file: %v %v", st, err)
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Fatal("a file name was executed by the shell")
	}
	if _, err := r.ReadFile(ctx, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: want fs.ErrNotExist, got %v", err)
	}
}

func TestSSHConcurrentCommandsShareOneBoundedConnection(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	cfg := config(s, "root")
	ctx := context.Background()
	const n = 30 // three times OpenSSH's MaxSessions
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A runner per goroutine, as every resource gets its own.
			r, err := p.Runner(cfg)
			if err == nil {
				var res remote.Result
				res, err = r.Run(ctx, remote.Script(`sleep 0.2; echo "$1"`, strconv.Itoa(i)))
				if err == nil && strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(i) {
					err = fmt.Errorf("command %d printed %q", i, res.Stdout)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := p.Dials(); d != 1 {
		t.Fatalf("pool dialled %d times, want 1", d)
	}
	if n, _ := s.AcceptedConnections(); n != 1 {
		t.Fatalf("sshd accepted %d connections, want 1", n)
	}
}

// sessionChildren returns the per-connection sshd processes under the listener.
func sessionChildren(t *testing.T, listener int) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		fields := strings.Fields(string(rest))
		if len(fields) > 1 && fields[1] == strconv.Itoa(listener) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestSSHReconnectsTransparentlyAfterTheConnectionBreaks(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	r := runner(t, p, config(s, "root"))
	ctx := context.Background()
	if _, err := r.Run(ctx, remote.Command("true")); err != nil {
		t.Fatal(err)
	}
	children := sessionChildren(t, s.PID)
	if len(children) == 0 {
		t.Fatal("found no per-connection sshd process to kill")
	}
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond)
	res, err := r.Run(ctx, remote.Command("echo", "again"))
	if err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("after the connection broke: %q, %v", res.Stdout, err)
	}
	if d := p.Dials(); d != 2 {
		t.Fatalf("pool dialled %d times, want 2 (the first connection and one reconnect)", d)
	}
}

func TestSSHContextEndsARunningCommand(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	r := runner(t, p, config(s, "root"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.Run(ctx, remote.Command("sleep", "60"))
	if !errors.Is(err, context.DeadlineExceeded) || !remote.IsUnreachable(err) {
		t.Fatalf("want a deadline ConnError, got %v", err)
	}
	// The connection is still usable.
	if _, err := r.Run(context.Background(), remote.Command("true")); err != nil {
		t.Fatal(err)
	}
}

func TestSSHSudoForAnUnprivilegedUser(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	ctx := context.Background()
	cfg := config(s, testbed.SudoUser)
	cfg.Sudo = true
	r := runner(t, p, cfg)
	res, err := r.Run(ctx, remote.Command("id", "-u"))
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("sudo id -u = %q, %v", res.Stdout, err)
	}
	target := filepath.Join(t.TempDir(), "root-only")
	if err := remote.WriteFile(ctx, r, target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(target, &st); err != nil || st.Uid != 0 || st.Mode&0o777 != 0o600 {
		t.Fatalf("uploaded through sudo: uid %d mode %o, %v", st.Uid, st.Mode&0o777, err)
	}

	// Without sudo rights, sudo -n fails at once: no prompt, no hang.
	cfg = config(s, testbed.NoSudoUser)
	cfg.Sudo = true
	start := time.Now()
	_, err = runner(t, p, cfg).Run(ctx, remote.Command("true"))
	var se *remote.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("want SudoError, got %v", err)
	}
	t.Logf("sudo refusal took %s", time.Since(start))
}

func TestSSHAuthenticationFailureIsClear(t *testing.T) {
	s := startSSHD(t)
	other := startSSHD(t) // its client key is not authorized on s
	p := remote.NewPool(nil)
	defer p.Close()
	cfg := config(s, "root")
	cfg.PrivateKey = string(other.ClientKeyPEM)
	_, err := runner(t, p, cfg).Run(context.Background(), remote.Command("true"))
	if err == nil || !strings.Contains(err.Error(), "SSH authentication to root@"+s.HostPort()+" failed") {
		t.Fatalf("want an authentication error naming the target, got %v", err)
	}
}
