// Package bmc controls a machine through its baseboard management
// controller: power, the boot device override, and what the BMC reports
// about the machine. It knows nothing about Terraform.
//
// Two protocols are spoken, both through bmclib v2
// (github.com/bmc-toolbox/bmclib/v2):
//
//   - Redfish, with bmclib's gofish driver. Every operation logs in (a
//     Redfish session), does its work and logs out, so no session can expire
//     between operations. Reading the boot override goes to gofish directly,
//     because bmclib's answer cannot tell a pending one-time override from a
//     consumed one (BootSourceOverrideEnabled "Once" vs "Disabled").
//   - IPMI over LAN (RMCP+), with bmclib's ipmitool driver. What that driver
//     does not offer (reading the boot flags, the FRU and the BMC firmware)
//     runs ipmitool directly, as an argv with the password in the
//     IPMITOOL_PASSWORD environment variable, never on a command line.
//
// BMCs handle few sessions and often reject parallel ones, so every
// operation on one BMC (host:port) holds a process-wide lock (Lock) for its
// whole duration. Operations are bounded by Config.Timeout and the caller's
// context, and are retried with backoff after transient failures (session
// limit, busy BMC, dropped connection), never after a refused login.
// Errors say which of "wrong username or password" or "did not answer"
// happened (IsAuth, IsUnreachable).
//
// The package has no ErrNotFound: a BMC manages one machine, which nothing
// in the provider forgets for any answer of the BMC. Every failure, even a
// Redfish service that lists no computer system, is an *Error that keeps
// state.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocols of Config.Protocol.
const (
	ProtocolAuto    = "auto"
	ProtocolIPMI    = "ipmi"
	ProtocolRedfish = "redfish"
)

// Defaults.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultIPMIPort    = 623
	DefaultRedfishPort = 443
)

// Retry and polling parameters.
const (
	maxAttempts      = 4
	firstBackoff     = 250 * time.Millisecond
	maxBackoff       = 2 * time.Second
	firstPoll        = 250 * time.Millisecond
	maxPoll          = 2 * time.Second
	closeTimeout     = 10 * time.Second
	maxDetailInError = 300
)

// Config says how to reach a BMC.
type Config struct {
	// Host is the BMC's address or name, without scheme or port.
	Host string
	// Port is the BMC's port; 0 means 623 for IPMI and 443 for Redfish.
	Port int
	// Username and Password are the BMC credentials.
	Username, Password string
	// Protocol is "auto" (default), "ipmi" or "redfish". "auto" tries
	// Redfish first, then IPMI, and keeps the first that works.
	Protocol string
	// InsecureTLS accepts any Redfish certificate (BMCs mostly have
	// self-signed ones); otherwise the system's trusted CAs verify it.
	InsecureTLS bool
	// Timeout bounds each operation (default 30s). Waiting for the lock of a
	// BMC busy with another operation is bounded by the caller's context
	// only. With "auto", the first operation first spends up to one Timeout
	// on detecting the protocol.
	Timeout time.Duration
	// Logger, if set, receives debug messages. It never receives the
	// password.
	Logger func(msg string, fields map[string]any)
}

// BootOverride is the boot device override a BMC reports.
type BootOverride struct {
	// Device is the override's device: "pxe", "disk", "cdrom", "bios" or
	// "none" (IPMI BMCs may report other selectors, such as "floppy"). It is
	// what the BMC has recorded, also after the override was consumed.
	Device string
	// Persistent: the override applies to every boot, not only the next.
	Persistent bool
	// EFI: the override boots in UEFI mode (otherwise legacy BIOS).
	EFI bool
	// Active: an override is set and not yet consumed by a boot.
	Active bool
}

// Inventory is what the BMC reports about the machine; fields it does not
// report are empty.
type Inventory struct {
	Vendor, Model, Serial, BMCFirmware string
}

// Client talks to one BMC. It is safe for concurrent use; operations on the
// same BMC run one at a time.
type Client struct {
	cfg Config

	mu  sync.Mutex
	drv driver // nil until the protocol is known (auto before detection)

	ipmi    *ipmiDriver
	redfish *redfishDriver
}

// New validates cfg and returns a client. It does not contact the BMC.
func New(cfg Config) (*Client, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	cfg.Protocol = strings.ToLower(strings.TrimSpace(cfg.Protocol))
	if cfg.Protocol == "" {
		cfg.Protocol = ProtocolAuto
	}
	switch {
	case cfg.Host == "":
		return nil, errors.New("bmc: empty host")
	case strings.Contains(cfg.Host, "://") || strings.ContainsAny(cfg.Host, "/ \t\n"):
		return nil, fmt.Errorf("bmc: host %q must be an address or name, without scheme or path", cfg.Host)
	case cfg.Port < 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("bmc: port %d out of range", cfg.Port)
	case cfg.Username == "":
		return nil, errors.New("bmc: empty username")
	case strings.ContainsRune(cfg.Password, 0):
		return nil, errors.New("bmc: the password contains a NUL byte")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("bmc: negative timeout %s", cfg.Timeout)
	case cfg.Protocol == ProtocolIPMI && len(cfg.Password) > ipmiMaxPassword:
		return nil, fmt.Errorf("bmc: %w", errLongPassword)
	}
	// A host given with a port ("bmc:623", "[::1]:623") is a mistake too;
	// a bare IPv6 address is fine.
	if h, _, err := net.SplitHostPort(cfg.Host); err == nil && h != "" {
		return nil, fmt.Errorf("bmc: host %q contains a port; use the port setting", cfg.Host)
	}
	cfg.Host = strings.TrimSuffix(strings.TrimPrefix(cfg.Host, "["), "]")
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	c := &Client{cfg: cfg}
	switch cfg.Protocol {
	case ProtocolIPMI:
		c.ipmi = newIPMIDriver(c.cfg)
		c.drv = c.ipmi
	case ProtocolRedfish:
		c.redfish = newRedfishDriver(c.cfg)
		c.drv = c.redfish
	case ProtocolAuto:
		c.ipmi = newIPMIDriver(c.cfg)
		c.redfish = newRedfishDriver(c.cfg)
	default:
		return nil, fmt.Errorf("bmc: unknown protocol %q (want auto, ipmi or redfish)", cfg.Protocol)
	}
	return c, nil
}

// Protocol returns "ipmi" or "redfish": the configured protocol, or with
// "auto" the one detected by the first operation ("" before).
func (c *Client) Protocol() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drv == nil {
		return ""
	}
	return c.drv.protocol()
}

// PowerState returns "on" or "off".
func (c *Client) PowerState(ctx context.Context) (string, error) {
	var state string
	err := c.do(ctx, "read power state", true, func(ctx context.Context, s session) error {
		st, _, err := s.powerState(ctx)
		state = st
		return err
	})
	return state, err
}

// SetPower switches the machine "on" or "off" (hard, without waiting for
// the operating system), or power-"cycle"s or hard-"reset"s it. For on and
// off it waits until the BMC reports the new state.
func (c *Client) SetPower(ctx context.Context, state string) error {
	switch state {
	case "on", "off", "cycle", "reset":
	default:
		return fmt.Errorf("bmc: unknown power action %q (want on, off, cycle or reset)", state)
	}
	idempotent := state == "on" || state == "off"
	return c.do(ctx, "set power "+state, idempotent, func(ctx context.Context, s session) error {
		if err := s.setPower(ctx, state); err != nil {
			return err
		}
		if !idempotent {
			return nil
		}
		return c.waitPower(ctx, s, state)
	})
}

// waitPower polls until the BMC reports the wanted power state. Reading
// errors are not fatal while time is left: BMCs can be slow to answer right
// after a power change.
func (c *Client) waitPower(ctx context.Context, s session, want string) error {
	start := time.Now()
	delay := firstPoll
	var last string
	var lastErr error
	for {
		st, settled, err := s.powerState(ctx)
		if err == nil && st == want && settled {
			return nil
		}
		if err == nil {
			last, lastErr = st, nil
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			detail := fmt.Sprintf("the BMC accepted power %s but still reported %q after %s", want, last, formatDuration(time.Since(start)))
			if last == "" && lastErr != nil {
				detail = fmt.Sprintf("the BMC accepted power %s, then reading the power state failed for %s: %s",
					want, formatDuration(time.Since(start)), oneLine(lastErr.Error(), maxDetailInError))
			}
			hp := c.hostPort(s.protocol())
			return &Error{Op: "set power " + want, BMC: hp, Protocol: s.protocol(), Err: ctx.Err(), kind: kindOther,
				msg: "BMC at " + hp + ": " + c.scrub(detail)}
		case <-time.After(delay):
		}
		delay = min(delay*3/2, maxPoll)
	}
}

// SetBootDevice sets the boot device override: "pxe", "disk", "cdrom" or
// "bios", for the next boot only or every boot (persistent), in UEFI (efi)
// or legacy mode.
func (c *Client) SetBootDevice(ctx context.Context, device string, persistent, efi bool) error {
	switch device {
	case "pxe", "disk", "cdrom", "bios":
	default:
		return fmt.Errorf("bmc: unknown boot device %q (want pxe, disk, cdrom or bios)", device)
	}
	return c.do(ctx, "set boot device "+device, true, func(ctx context.Context, s session) error {
		return s.setBootDevice(ctx, device, persistent, efi)
	})
}

// BootOverride reads the boot device override.
func (c *Client) BootOverride(ctx context.Context) (BootOverride, error) {
	var o BootOverride
	err := c.do(ctx, "read boot override", true, func(ctx context.Context, s session) error {
		var err error
		o, err = s.bootOverride(ctx)
		return err
	})
	return o, err
}

// Inventory reads what the BMC reports about the machine.
func (c *Client) Inventory(ctx context.Context) (Inventory, error) {
	var inv Inventory
	err := c.do(ctx, "read inventory", true, func(ctx context.Context, s session) error {
		var err error
		inv, err = s.inventory(ctx)
		return err
	})
	return inv, err
}

// Close releases what the client holds. Sessions last one operation, so
// there is nothing left to log out of; Close exists so that callers need
// not know that.
func (c *Client) Close(ctx context.Context) error {
	return nil
}

// ---- locking ----

var bmcLocks sync.Map // key -> chan struct{} (capacity 1)

func lockChan(key string) chan struct{} {
	ch, _ := bmcLocks.LoadOrStore(key, make(chan struct{}, 1))
	return ch.(chan struct{})
}

func unlocker(ch chan struct{}) func() {
	var once sync.Once
	return func() { once.Do(func() { <-ch }) }
}

// Lock takes the process-wide lock of the BMC key ("host:port") and returns
// the function that releases it. Every Client method holds it while it
// talks to the BMC, so that one BMC sees one operation at a time.
func Lock(key string) (unlock func()) {
	ch := lockChan(key)
	ch <- struct{}{}
	return unlocker(ch)
}

// lockCtx is Lock, giving up when ctx is done.
func lockCtx(ctx context.Context, key string) (func(), error) {
	ch := lockChan(key)
	select {
	case ch <- struct{}{}:
		return unlocker(ch), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockKey is the lock key of a BMC: lower-case host and port.
func lockKey(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}

// ---- operations ----

// driver is one protocol.
type driver interface {
	protocol() string
	port() int
	// open starts the work of one operation attempt.
	open(ctx context.Context) (session, error)
	// classify turns a failure of an attempt into a kind; it may ask the
	// BMC (ipmitool -v) to tell a refused login from no answer.
	classify(ctx context.Context, err error) (kind, string, bool)
}

// session is the work of one operation attempt against one BMC.
type session interface {
	protocol() string
	powerState(ctx context.Context) (state string, settled bool, err error)
	setPower(ctx context.Context, action string) error
	setBootDevice(ctx context.Context, device string, persistent, efi bool) error
	bootOverride(ctx context.Context) (BootOverride, error)
	inventory(ctx context.Context) (Inventory, error)
	close(ctx context.Context)
}

func (c *Client) hostPort(protocol string) string {
	port := c.cfg.Port
	if port == 0 {
		port = DefaultRedfishPort
		if protocol == ProtocolIPMI {
			port = DefaultIPMIPort
		}
	}
	return net.JoinHostPort(c.cfg.Host, strconv.Itoa(port))
}

// driverFor returns the driver of the protocol in use, detecting it first
// with "auto".
func (c *Client) driverFor(ctx context.Context, op string) (driver, error) {
	c.mu.Lock()
	d := c.drv
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}

	// Detection gets one Timeout: Redfish first, with half of it so that
	// IPMI gets a chance when nothing answers on the Redfish port.
	probe := func(ctx context.Context, s session) error {
		_, _, err := s.powerState(ctx)
		return err
	}
	start := time.Now()
	budget := c.budget(ctx)
	rfCtx, cancel := context.WithTimeout(ctx, budget/2)
	rfErr := c.attempt(rfCtx, ctx, c.redfish, attemptOpts{op: op, idempotent: true, lock: true}, probe)
	cancel()
	if rfErr == nil {
		return c.setDriver(c.redfish), nil
	}
	var rfE *Error
	errors.As(rfErr, &rfE)
	if rfE == nil || (rfE.kind != kindNoAnswer && rfE.kind != kindRefused && rfE.kind != kindNotRedfish) {
		// Redfish answered: the credentials, the certificate or the
		// operation failed, which IPMI would not fix.
		return nil, rfErr
	}
	c.log("no Redfish service, trying IPMI", map[string]any{"bmc": c.hostPort(ProtocolRedfish), "error": rfErr.Error()})

	ipCtx, cancel := context.WithTimeout(ctx, budget-time.Since(start))
	defer cancel()
	ipErr := c.attempt(ipCtx, ctx, c.ipmi, attemptOpts{op: op, idempotent: true, lock: true, retryRefused: true}, probe)
	if ipErr == nil {
		return c.setDriver(c.ipmi), nil
	}
	var ipE *Error
	if !errors.As(ipErr, &ipE) {
		return nil, ipErr
	}
	// Neither protocol worked: say what happened to each. The kind is
	// IPMI's, the last hope (Redfish's was no answer or no service).
	e := *ipE
	e.Protocol = ""
	e.msg = fmt.Sprintf("Redfish: %s; IPMI: %s", rfE.msg, ipE.msg)
	return nil, &e
}

func (c *Client) setDriver(d driver) driver {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drv == nil {
		c.drv = d
		c.log("protocol detected", map[string]any{"bmc": c.hostPort(d.protocol()), "protocol": d.protocol()})
	}
	return c.drv
}

// budget is the time an operation may take: Timeout, or less if ctx ends
// sooner.
func (c *Client) budget(ctx context.Context) time.Duration {
	b := c.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < b {
		b = max(time.Until(dl), 0)
	}
	return b
}

// do runs one operation: detect the protocol if needed, take the BMC's
// lock, then attempt fn with retries, all within Timeout.
func (c *Client) do(ctx context.Context, op string, idempotent bool, fn func(context.Context, session) error) error {
	d, err := c.driverFor(ctx, op)
	if err != nil {
		return err
	}
	unlock, err := lockCtx(ctx, lockKey(c.cfg.Host, d.port()))
	if err != nil {
		return c.lockError(op, d, err)
	}
	defer unlock()
	opCtx, cancel := context.WithTimeout(ctx, c.budget(ctx))
	defer cancel()
	return c.attempt(opCtx, ctx, d, attemptOpts{op: op, idempotent: idempotent, retryRefused: true}, fn)
}

func (c *Client) lockError(op string, d driver, err error) *Error {
	hp := c.hostPort(d.protocol())
	return &Error{Op: op, BMC: hp, Protocol: d.protocol(), Err: err, kind: kindCanceled,
		msg: "gave up waiting for another operation on BMC at " + hp + " to finish"}
}

// attemptOpts says how to attempt an operation.
type attemptOpts struct {
	op string
	// idempotent operations may be repeated after any transient failure.
	idempotent bool
	// lock: take the BMC's lock (the caller does not hold it).
	lock bool
	// retryRefused: a refused connection is retried (a rebooting BMC);
	// protocol detection moves on to the next protocol instead.
	retryRefused bool
}

// attempt runs fn in a session with retries, bounded by opCtx. callerCtx
// tells the caller's cancellation from the operation's timeout.
func (c *Client) attempt(opCtx, callerCtx context.Context, d driver, o attemptOpts, fn func(context.Context, session) error) error {
	opStart := time.Now()
	if o.lock {
		unlock, err := lockCtx(opCtx, lockKey(c.cfg.Host, d.port()))
		if err != nil {
			return c.lockError(o.op, d, err)
		}
		defer unlock()
	}
	backoff := firstBackoff
	for attemptNo := 1; ; attemptNo++ {
		start := time.Now()
		fields := map[string]any{"bmc": c.hostPort(d.protocol()), "protocol": d.protocol(), "op": o.op, "attempt": attemptNo}
		c.log("bmc operation", fields)
		err := c.runSession(opCtx, d, fn)
		fields["elapsed_ms"] = time.Since(start).Milliseconds()
		if err == nil {
			c.log("bmc operation done", fields)
			return nil
		}
		e := c.classify(opCtx, callerCtx, d, o.op, opStart, err)
		fields["error"] = e.Error()
		retry := e.retriable(o.idempotent) && (e.kind != kindRefused || o.retryRefused)
		if !retry || attemptNo >= maxAttempts {
			c.log("bmc operation failed", fields)
			return e
		}
		c.log("bmc operation failed, retrying", fields)
		select {
		case <-opCtx.Done():
			return c.classify(opCtx, callerCtx, d, o.op, opStart, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// runSession opens a session, runs fn and closes the session.
func (c *Client) runSession(ctx context.Context, d driver, fn func(context.Context, session) error) error {
	s, err := d.open(ctx)
	if err != nil {
		return beforeCommand(err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		s.close(closeCtx)
	}()
	return fn(ctx, s)
}

// classify turns err, the failure of an attempt that started at opStart,
// into an *Error.
func (c *Client) classify(opCtx, callerCtx context.Context, d driver, op string, opStart time.Time, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e // classified already (waitPower)
	}
	proto, hostPort := d.protocol(), c.hostPort(d.protocol())
	before := isBeforeCommand(err)
	mk := func(k kind, detail string) *Error {
		e := newError(k, op, hostPort, proto, c.cfg.Username, time.Since(opStart), c.scrub(oneLine(detail, maxDetailInError)), err)
		e.beforeCommand = before
		return e
	}
	switch {
	case errors.Is(callerCtx.Err(), context.Canceled):
		return mk(kindCanceled, "")
	case opCtx.Err() != nil:
		return mk(kindNoAnswer, "")
	}
	k, detail, sessionFailed := d.classify(opCtx, err)
	if opCtx.Err() != nil && k != kindAuth && k != kindPrivilege {
		// The diagnosis ran out of time: nothing answered in time.
		return mk(kindNoAnswer, "")
	}
	before = before || sessionFailed
	return mk(k, detail)
}

// beforeCommandError marks a failure that happened before the operation's
// command could reach the BMC.
type beforeCommandError struct{ err error }

func (e beforeCommandError) Error() string { return e.err.Error() }
func (e beforeCommandError) Unwrap() error { return e.err }

func beforeCommand(err error) error { return beforeCommandError{err} }

func isBeforeCommand(err error) bool {
	var b beforeCommandError
	return errors.As(err, &b)
}

// log sends a debug message to the configured logger, with the password
// masked out of every string.
func (c *Client) log(msg string, fields map[string]any) {
	if c.cfg.Logger == nil {
		return
	}
	clean := make(map[string]any, len(fields))
	for k, v := range fields {
		if s, ok := v.(string); ok {
			v = c.scrub(s)
		}
		clean[k] = v
	}
	c.cfg.Logger(c.scrub(msg), clean)
}

// scrub masks the password in s (defence in depth: no code path puts it in
// a message on purpose).
func (c *Client) scrub(s string) string {
	if c.cfg.Password == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Password, "***")
}
