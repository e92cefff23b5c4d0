package acctest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// Frozen is a peer process stopped with SIGSTOP by Freeze.
type Frozen struct {
	t    *testing.T
	what string
	pid  int
	once sync.Once
	// At is when the process was stopped.
	At time.Time
}

// Freeze stops process pid (a peer: ipmi_sim, kube-apiserver, etcd) with
// SIGSTOP, so that it keeps its sockets open but answers nothing, like a
// hung BMC or API server. The process is always resumed: by Thaw, or when
// the test ends (registered with t.Cleanup, so before a shared peer is
// handed to the next test).
func Freeze(t *testing.T, what string, pid int) *Frozen {
	t.Helper()
	f, err := freeze(t, what, pid)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func freeze(t *testing.T, what string, pid int) (*Frozen, error) {
	f := &Frozen{t: t, what: what, pid: pid}
	t.Cleanup(f.Thaw)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("freezing %s (pid %d): %v", what, pid, err)
	}
	f.At = time.Now()
	t.Logf("froze %s (pid %d)", what, pid)
	return f, nil
}

// Thaw resumes the process (SIGCONT); later calls do nothing.
func (f *Frozen) Thaw() {
	f.once.Do(func() {
		if f.At.IsZero() {
			return
		}
		if err := syscall.Kill(f.pid, syscall.SIGCONT); err != nil {
			f.t.Errorf("resuming %s (pid %d): %v", f.what, f.pid, err)
			return
		}
		f.t.Logf("resumed %s (pid %d) after %s", f.what, f.pid, time.Since(f.At).Round(time.Millisecond))
	})
}

// FreezeWhen freezes pid as soon as a process whose command line contains
// every one of match appears (a client command of the provider talking to
// the peer: the peer is then stopped in the middle of an operation). It
// watches /proc every 2 ms until ctx ends. The returned function waits for
// the watcher and returns the freeze, nil if none happened.
func FreezeWhen(ctx context.Context, t *testing.T, what string, pid int, match ...string) (wait func() *Frozen) {
	t.Helper()
	var got *Frozen
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if processMatching(match) {
				var err error
				if got, err = freeze(t, what, pid); err != nil {
					t.Error(err)
				}
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() *Frozen { <-done; return got }
}

// processMatching reports whether a process's command line contains all of
// match.
func processMatching(match []string) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		n := e.Name()
		if n[0] < '0' || n[0] > '9' || n == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/cmdline")
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(b), "\x00", " ")
		all := true
		for _, m := range match {
			if !strings.Contains(c, m) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// StartKube starts a Kubernetes API server (kube-apiserver and etcd) of
// the test's own, with MetalLB's CRDs and the metallb-system namespace, for
// tests that break it (a few seconds once kube-apiserver is built). It is
// stopped when the test ends.
func StartKube(t *testing.T) *testbed.Kube {
	t.Helper()
	skipUnlessAcceptance(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	began := time.Now()
	k, err := testbed.StartKube(ctx, t.TempDir(), testbed.KubeOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting a Kubernetes API server: %v", err)
	}
	t.Cleanup(func() { _ = k.Stop() })
	if err := k.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatalf("installing MetalLB's CRDs: %v", err)
	}
	if err := k.EnsureNamespace(ctx, MetalLBNamespace); err != nil {
		t.Fatalf("creating %s: %v", MetalLBNamespace, err)
	}
	t.Logf("own Kubernetes API server up in %s", time.Since(began).Round(100*time.Millisecond))
	return k
}

// String names the frozen process.
func (f *Frozen) String() string { return f.what }
