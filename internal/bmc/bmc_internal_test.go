package bmc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDriver is a scripted protocol for tests of the operation machinery.
type fakeDriver struct {
	failOpen  []error // errors of successive opens (nil: success)
	opens     atomic.Int32
	kinds     map[string]kind // error text -> kind
	states    []string        // successive power states reported
	polls     atomic.Int32
	powerSets atomic.Int32
	setErr    error
}

func (d *fakeDriver) protocol() string { return ProtocolRedfish }
func (d *fakeDriver) port() int        { return 443 }

func (d *fakeDriver) open(ctx context.Context) (session, error) {
	n := int(d.opens.Add(1)) - 1
	if n < len(d.failOpen) && d.failOpen[n] != nil {
		return nil, d.failOpen[n]
	}
	return &fakeSession{d: d}, nil
}

func (d *fakeDriver) classify(ctx context.Context, err error) (kind, string, bool) {
	for text, k := range d.kinds {
		if strings.Contains(err.Error(), text) {
			return k, err.Error(), false
		}
	}
	return kindOther, err.Error(), false
}

type fakeSession struct{ d *fakeDriver }

func (s *fakeSession) protocol() string { return ProtocolRedfish }
func (s *fakeSession) powerState(ctx context.Context) (string, bool, error) {
	n := int(s.d.polls.Add(1)) - 1
	if n >= len(s.d.states) {
		n = len(s.d.states) - 1
	}
	return normalizePowerState(s.d.states[n])
}
func (s *fakeSession) setPower(ctx context.Context, action string) error {
	s.d.powerSets.Add(1)
	return s.d.setErr
}
func (s *fakeSession) setBootDevice(context.Context, string, bool, bool) error { return nil }
func (s *fakeSession) bootOverride(context.Context) (BootOverride, error)      { return BootOverride{}, nil }
func (s *fakeSession) inventory(context.Context) (Inventory, error)            { return Inventory{}, nil }
func (s *fakeSession) close(context.Context)                                   {}

var fakeHostCounter atomic.Int32

// newFakeClient returns a client of d on a host of its own (own lock).
func newFakeClient(t *testing.T, d *fakeDriver, logs *[]string) *Client {
	t.Helper()
	var mu sync.Mutex
	c, err := New(Config{Host: fmt.Sprintf("fake-%d.test", fakeHostCounter.Add(1)), Username: "admin",
		Password: "hunter2-secret", Protocol: ProtocolRedfish, Timeout: 3 * time.Second,
		Logger: func(msg string, fields map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			if logs != nil {
				*logs = append(*logs, fmt.Sprintf("%s %v", msg, fields))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	c.drv = d
	return c
}

func TestRetriesTransientNotAuth(t *testing.T) {
	busy := errors.New("HTTP 503 busy")
	d := &fakeDriver{failOpen: []error{busy, busy}, kinds: map[string]kind{"503": kindTransient}, states: []string{"On"}}
	c := newFakeClient(t, d, nil)
	start := time.Now()
	if st, err := c.PowerState(context.Background()); err != nil || st != "on" {
		t.Fatalf("PowerState = %q, %v", st, err)
	}
	if n := d.opens.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	if e := time.Since(start); e < firstBackoff*3 { // 250ms + 500ms of backoff
		t.Fatalf("no backoff between attempts: %s", e)
	}

	// Transient failures forever: maxAttempts, then the error.
	d = &fakeDriver{failOpen: []error{busy, busy, busy, busy, busy, busy}, kinds: map[string]kind{"503": kindTransient}, states: []string{"On"}}
	c = newFakeClient(t, d, nil)
	if _, err := c.PowerState(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("PowerState = %v", err)
	}
	if n := d.opens.Load(); n != maxAttempts {
		t.Fatalf("%d attempts, want %d", n, maxAttempts)
	}

	// A refused login is final at once.
	denied := errors.New("HTTP 401")
	d = &fakeDriver{failOpen: []error{denied, denied}, kinds: map[string]kind{"401": kindAuth}, states: []string{"On"}}
	c = newFakeClient(t, d, nil)
	_, err := c.PowerState(context.Background())
	if !IsAuth(err) || d.opens.Load() != 1 {
		t.Fatalf("PowerState = %v after %d attempts", err, d.opens.Load())
	}
}

func TestNonIdempotentNotRepeatedAfterCommand(t *testing.T) {
	// The power cycle command failed with a dropped connection: it may have
	// reached the BMC, so it is not sent again.
	d := &fakeDriver{setErr: errors.New("connection reset"), kinds: map[string]kind{"reset": kindTransient}, states: []string{"On"}}
	c := newFakeClient(t, d, nil)
	if err := c.SetPower(context.Background(), "cycle"); err == nil {
		t.Fatal("SetPower cycle succeeded")
	}
	if n := d.powerSets.Load(); n != 1 {
		t.Fatalf("power cycle sent %d times", n)
	}
	// Power on is idempotent: repeated.
	d = &fakeDriver{setErr: errors.New("connection reset"), kinds: map[string]kind{"reset": kindTransient}, states: []string{"On"}}
	c = newFakeClient(t, d, nil)
	_ = c.SetPower(context.Background(), "on")
	if n := d.powerSets.Load(); n != maxAttempts {
		t.Fatalf("power on sent %d times, want %d", n, maxAttempts)
	}
	// A session that could not be opened: the cycle never left, retry it.
	busy := errors.New("HTTP 503")
	d = &fakeDriver{failOpen: []error{busy}, kinds: map[string]kind{"503": kindTransient}, states: []string{"On"}}
	c = newFakeClient(t, d, nil)
	if err := c.SetPower(context.Background(), "cycle"); err != nil || d.powerSets.Load() != 1 || d.opens.Load() != 2 {
		t.Fatalf("SetPower cycle: %v (%d opens, %d sets)", err, d.opens.Load(), d.powerSets.Load())
	}
}

func TestSetPowerWaits(t *testing.T) {
	d := &fakeDriver{states: []string{"Off", "PoweringOn", "PoweringOn", "On"}}
	c := newFakeClient(t, d, nil)
	if err := c.SetPower(context.Background(), "on"); err != nil {
		t.Fatal(err)
	}
	if n := d.polls.Load(); n != 4 {
		t.Fatalf("%d polls, want 4", n)
	}

	// The BMC accepts the command but the state never changes.
	d = &fakeDriver{states: []string{"Off"}}
	c = newFakeClient(t, d, nil)
	c.cfg.Timeout = time.Second
	start := time.Now()
	err := c.SetPower(context.Background(), "on")
	if err == nil || IsUnreachable(err) || IsAuth(err) || !strings.Contains(err.Error(), `still reported "off" after 1s`) {
		t.Fatalf("SetPower on a stuck BMC: %v", err)
	}
	if e := time.Since(start); e < time.Second || e > 2*time.Second {
		t.Fatalf("took %s", e)
	}
	if d.powerSets.Load() != 1 {
		t.Fatalf("power on sent %d times", d.powerSets.Load())
	}

	// The caller cancels.
	d = &fakeDriver{states: []string{"Off"}}
	c = newFakeClient(t, d, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	err = c.SetPower(ctx, "on")
	if !errors.Is(err, context.Canceled) || IsUnreachable(err) {
		t.Fatalf("canceled SetPower: %v", err)
	}
}

func TestLoggerNeverSeesPassword(t *testing.T) {
	var logs []string
	leaky := errors.New("BMC said: bad password hunter2-secret")
	d := &fakeDriver{failOpen: []error{leaky}, states: []string{"On"}}
	c := newFakeClient(t, d, &logs)
	_, err := c.PowerState(context.Background())
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("error %v", err)
	}
	if len(logs) == 0 {
		t.Fatal("nothing logged")
	}
	for _, l := range logs {
		if strings.Contains(l, "hunter2-secret") {
			t.Fatalf("password logged: %s", l)
		}
	}
}

func TestLock(t *testing.T) {
	key := lockKey("Lock-Test.example", 623)
	if key != "lock-test.example:623" {
		t.Fatalf("lockKey = %q", key)
	}
	unlock := Lock(key)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockCtx(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: %v", err)
	}
	// Other BMCs are independent.
	Lock(lockKey("other.example", 623))()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Lock(key)()
	}()
	select {
	case <-done:
		t.Fatal("Lock did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	unlock()
	<-done
}

func TestErrorTexts(t *testing.T) {
	e := newError(kindNoAnswer, "read power state", "10.0.0.5:623", ProtocolIPMI, "admin", 30*time.Second, "", nil)
	if got := e.Error(); got != "read power state (IPMI): BMC at 10.0.0.5:623 did not answer within 30s" {
		t.Fatalf("no answer: %q", got)
	}
	e = newError(kindAuth, "set power on", "bmc.lan:443", ProtocolRedfish, "admin", time.Second, "", nil)
	if got := e.Error(); !strings.Contains(got, "wrong username or password") || !strings.Contains(got, `user "admin"`) || !IsAuth(e) {
		t.Fatalf("auth: %q", got)
	}
	wrapped := fmt.Errorf("refresh: %w", e)
	if !IsAuth(wrapped) || IsUnreachable(wrapped) {
		t.Fatal("classification lost through wrapping")
	}
	if IsAuth(errors.New("x")) || IsUnreachable(nil) {
		t.Fatal("plain errors classified")
	}
	multi := "2 errors occurred:\n\t* provider: gofish: 503: {\"error\": 1}\n\t* failed to get power state\n\n"
	if got := oneLine(multi, 100); got != `503: {"error": 1}` {
		t.Fatalf("oneLine = %q", got)
	}
}
