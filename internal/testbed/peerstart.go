package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// The start sequence the testbed's peers share (sshd, ipmi_sim,
// rest-server, etcd with kube-apiserver, the ZFS VM's qemu): ensure what is
// built and cached, prepare the instance, then launch under a start
// deadline, retrying on other ports when a picked one was taken; each
// process logs to a file, runs as a child killed with this process or
// detached in its own session, and is stopped once.

// logfOrNop returns logf, or a logger that drops every message when logf
// is nil.
func logfOrNop(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}

// peerStart is how a peer starts, in three steps that never overlap.
type peerStart struct {
	// ensure returns what the peer needs from the cache (a binary, a module,
	// an image), building it when missing: minutes on a cold cache. It runs
	// under the caller's ctx only, never under the start deadline (see
	// ErrBuildDuringStart); nil when the peer needs no build.
	ensure func(ctx context.Context) error
	// prepare writes the instance (directory, keys, disks) with what ensure
	// returned, under the caller's ctx only; may be nil.
	prepare func(ctx context.Context) error
	// launch starts the peer's processes and waits until they are ready. Its
	// ctx is bounded by timeout and marked as a start phase, so that any
	// build it would cause fails with ErrBuildDuringStart instead of running
	// out the deadline.
	launch func(ctx context.Context) error
	// timeout bounds all launch attempts together, even when ctx has no
	// deadline.
	timeout time.Duration
	// attempts bounds the launches (0 or 1: one).
	attempts int
	// retry is asked after a failed launch that may be repeated: it reports
	// whether another attempt can succeed (e.g. a picked port was taken by
	// another process) and readies it. nil: no retry.
	retry func(err error) bool
}

// run ensures, prepares, then launches until launch succeeds, fails for
// good or the attempts are spent. It returns the error of the failing step
// as that step returned it.
func (p peerStart) run(ctx context.Context) error {
	// Builds first, without a start deadline.
	if p.ensure != nil {
		if err := p.ensure(ctx); err != nil {
			return err
		}
	}
	if p.prepare != nil {
		if err := p.prepare(ctx); err != nil {
			return err
		}
	}
	// Then the start, under its deadline, where no build may run.
	ctx, cancel := context.WithTimeout(StartPhase(ctx), p.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := p.launch(ctx)
		if err == nil || attempt >= p.attempts || p.retry == nil || !p.retry(err) {
			return err
		}
	}
}

// peerProc is one process of a peer.
type peerProc struct {
	name  string        // in messages: "sshd", "etcd"
	exe   string        // resolved executable; guards pid against reuse (see ProcessAlive)
	log   string        // receives stdout and stderr; emptied at every start
	grace time.Duration // after SIGTERM before SIGKILL, and for a child to be reaped
	// pid points at the peer's exported pid field (0: not running).
	pid *int
	// exited is closed when a child exits; nil for a detached process.
	exited chan struct{}
}

// start runs cmd (built with p.exe and its arguments, directory,
// environment and extra files) with its output in p.log: as a child killed
// when this process dies, or detached in its own session and released.
func (p *peerProc) start(cmd *exec.Cmd, detach bool) error {
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s log: %w", p.name, err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Do not outlive the test process even when it crashes. (Linux
		// sends the signal when the forking OS thread exits, which the Go
		// runtime only does for goroutines that exit while locked to one.)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", p.exe, err)
	}
	*p.pid = cmd.Process.Pid
	if detach {
		p.exited = nil
		return cmd.Process.Release() // never fails on Linux
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		_ = cmd.Wait() // reported through exited and the log
		close(exited)
	}()
	return nil
}

// hasExited reports whether a child has exited; a detached process never
// has, as far as this tells.
func (p *peerProc) hasExited() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// running reports whether the process runs: a child until it exits, a
// detached process while ProcessAlive finds it.
func (p *peerProc) running() bool {
	if p.exited == nil {
		return ProcessAlive(*p.pid, p.exe)
	}
	return !p.hasExited()
}

// waitExited waits, at most p.grace, for a child to be reaped.
func (p *peerProc) waitExited() {
	if p.exited == nil {
		return
	}
	select {
	case <-p.exited:
	case <-time.After(p.grace):
	}
}

// terminate stops the process and its descendants (TerminateProcess) and
// waits for a child to be reaped. A process that is not running (pid 0)
// is left alone.
func (p *peerProc) terminate() error {
	if p == nil || p.pid == nil || *p.pid == 0 {
		return nil
	}
	err := TerminateProcess(*p.pid, p.exe, p.grace)
	p.waitExited()
	return err
}

// abort terminates what a failed launch attempt started and forgets its
// pid.
func (p *peerProc) abort() {
	_ = p.terminate()
	*p.pid = 0
}

// stopOnce makes a peer's Stop idempotent: the first call stops, every
// call returns the first call's error.
type stopOnce struct {
	once sync.Once
	err  error
}

// do runs stop the first time it is called.
func (s *stopOnce) do(stop func() error) error {
	s.once.Do(func() { s.err = stop() })
	return s.err
}

// waitUntil runs check every interval until it reports the peer ready or
// fails (check decorates its own errors). When ctx ends first it returns
// late(ctx.Err()), which says what was not ready.
func waitUntil(ctx context.Context, interval time.Duration, check func() (ready bool, err error), late func(error) error) error {
	for {
		if ready, err := check(); ready || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return late(ctx.Err())
		case <-time.After(interval):
		}
	}
}
