package testbed

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// peerStart builds and prepares outside the start deadline, then launches
// under it, in a start phase, retrying only while retry allows and attempts
// remain.
func TestPeerStartSequence(t *testing.T) {
	errTaken := errors.New("port taken")
	var steps []string
	launches := 0
	p := peerStart{
		ensure: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); ok || InStartPhase(ctx) {
				t.Error("ensure runs under a start deadline or in a start phase")
			}
			steps = append(steps, "ensure")
			return nil
		},
		prepare: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); ok || InStartPhase(ctx) {
				t.Error("prepare runs under a start deadline or in a start phase")
			}
			steps = append(steps, "prepare")
			return nil
		},
		timeout:  time.Minute,
		attempts: 3,
		launch: func(ctx context.Context) error {
			deadline, ok := ctx.Deadline()
			if !ok || time.Until(deadline) > time.Minute || !InStartPhase(ctx) {
				t.Errorf("launch runs without the start deadline (%v, %v) or outside a start phase", deadline, ok)
			}
			launches++
			steps = append(steps, "launch")
			return errTaken
		},
		retry: func(err error) bool {
			steps = append(steps, "retry")
			return errors.Is(err, errTaken)
		},
	}
	if err := p.run(context.Background()); !errors.Is(err, errTaken) {
		t.Fatalf("got %v, want the last launch's error", err)
	}
	want := "ensure prepare launch retry launch retry launch"
	if got := strings.Join(steps, " "); got != want {
		t.Errorf("steps %q, want %q", got, want)
	}

	// A failure retry refuses ends the start; so does a failed build,
	// before any launch.
	steps, launches = nil, 0
	p.retry = func(error) bool { return false }
	if err := p.run(context.Background()); !errors.Is(err, errTaken) || launches != 1 {
		t.Errorf("refused retry: got %v after %d launches, want one launch", err, launches)
	}
	errBuild := errors.New("build failed")
	p.ensure = func(context.Context) error { return errBuild }
	launches = 0
	if err := p.run(context.Background()); !errors.Is(err, errBuild) || launches != 0 {
		t.Errorf("failed ensure: got %v after %d launches, want its error and no launch", err, launches)
	}
}

// A peerProc child is seen running until terminate, which reaps it; Stop's
// stopOnce runs once and keeps its error.
func TestPeerProcChild(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	if sleep, err = filepath.EvalSymlinks(sleep); err != nil {
		t.Fatal(err)
	}
	var pid int
	p := &peerProc{name: "sleep", exe: sleep, log: filepath.Join(t.TempDir(), "sleep.log"), grace: 5 * time.Second, pid: &pid}
	if err := p.start(exec.Command(sleep, "60"), false); err != nil {
		t.Fatal(err)
	}
	if pid == 0 || !p.running() || p.hasExited() {
		t.Fatalf("started child %d is not seen running", pid)
	}
	var s stopOnce
	calls := 0
	stop := func() error { calls++; return p.terminate() }
	if err := s.do(stop); err != nil {
		t.Fatal(err)
	}
	if err := s.do(stop); err != nil || calls != 1 {
		t.Errorf("second stop: %v after %d calls, want nil after 1", err, calls)
	}
	if p.running() || !p.hasExited() || ProcessAlive(pid, "") {
		t.Errorf("child %d still running after terminate", pid)
	}
	// A proc that never started has nothing to terminate.
	var zero *peerProc
	if err := zero.terminate(); err != nil {
		t.Errorf("terminate of nothing: %v", err)
	}
}
