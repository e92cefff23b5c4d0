package remote_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// runBounded runs cmd and fails the test if Run has not returned long after
// the command timeout: the point is that it returns at all.
func runBounded(t *testing.T, r remote.Runner, cmd remote.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), cmd)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("Run hung: the command timeout did not end it")
		return nil
	}
}

// checkDidNotAnswer checks the error of a command that ran into the timeout:
// a ConnError (callers keep their state) that says what happened.
func checkDidNotAnswer(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("a blocked command succeeded")
	}
	if !remote.IsUnreachable(err) {
		t.Fatalf("a blocked command must be a ConnError (state is kept), got %T: %v", err, err)
	}
	if !strings.Contains(err.Error(), "did not answer within 2s") || !strings.Contains(err.Error(), "command_timeout") {
		t.Fatalf("the error does not say what happened: %v", err)
	}
}

// A command without a deadline of its own is bounded by CommandTimeout,
// whether the command blocks (a hung zpool) or sshd stops answering in the
// middle of it (SIGSTOP of the session's sshd processes).
func TestCommandTimeoutBoundsBlockedCommands(t *testing.T) {
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	cfg := config(s, "root")
	cfg.CommandTimeout = 2 * time.Second
	r := runner(t, p, cfg)

	// The command itself blocks.
	checkDidNotAnswer(t, runBounded(t, r, remote.Command("sleep", "600")))

	// sshd stops relaying in the middle of a command that would finish.
	started := filepath.Join(t.TempDir(), "started")
	stopped := make(chan []int, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(started); err == nil {
				stopped <- stopChildren(s.PID)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		stopped <- nil
	}()
	err := runBounded(t, r, remote.Command("sh", "-c", `touch "$1"; sleep 1; echo finished`, "x", started))
	pids := <-stopped
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	if len(pids) == 0 {
		t.Fatal("found no sshd session process to stop")
	}
	checkDidNotAnswer(t, err)

	// A deadline of the caller's own wins over CommandTimeout.
	cfg.CommandTimeout = time.Hour
	long := runner(t, remote.NewPool(nil), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := long.Run(ctx, remote.Command("sleep", "600")); err == nil || !remote.IsUnreachable(err) {
		t.Fatalf("the caller's deadline did not end the command: %v", err)
	}
}

// stopChildren sends SIGSTOP to every process below pid (sshd's session
// processes) and returns their pids.
func stopChildren(pid int) []int {
	var out []int
	for _, child := range descendants(pid) {
		if syscall.Kill(child, syscall.SIGSTOP) == nil {
			out = append(out, child)
		}
	}
	return out
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[n] = pp
			}
		}
	}
	var out []int
	for n := range parent {
		for p := parent[n]; p != 0; p = parent[p] {
			if p == pid {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
