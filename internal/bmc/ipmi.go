package bmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/bmc-toolbox/bmclib/v2/providers/ipmitool"
)

// ipmitoolBinary is looked up in PATH (Debian's ipmitool package).
const ipmitoolBinary = "ipmitool"

// ipmiCipherSuites are tried in this order, as bmclib does: 3
// (HMAC-SHA1, AES-128) works almost everywhere, 17 (HMAC-SHA256) on BMCs
// that disabled the older suites.
var ipmiCipherSuites = []string{"3", "17"}

// Timeouts of the diagnosis run that tells a refused login from a BMC that
// does not answer: ipmitool's per-message timeout (-N) and retries (-R).
const (
	ipmiProbeTimeoutSeconds = "2"
	ipmiProbeRetries        = "1"
)

// ipmiDriver speaks IPMI over LAN (RMCP+, ipmitool's lanplus interface).
type ipmiDriver struct {
	cfg     Config
	portNum int

	mu     sync.Mutex
	cipher string // the cipher suite that worked, "" until one did
}

func newIPMIDriver(cfg Config) *ipmiDriver {
	p := cfg.Port
	if p == 0 {
		p = DefaultIPMIPort
	}
	return &ipmiDriver{cfg: cfg, portNum: p}
}

func (d *ipmiDriver) protocol() string { return ProtocolIPMI }
func (d *ipmiDriver) port() int        { return d.portNum }

func (d *ipmiDriver) learnedCipher() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cipher
}

func (d *ipmiDriver) learnCipher(cs string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cipher = cs
}

// ipmiMaxPassword is the longest password IPMI v2.0 (RMCP+) can carry.
const ipmiMaxPassword = 20

// Errors found before anything is sent.
var (
	errNoIpmitool   = errors.New("ipmitool is not installed (install the ipmitool package)")
	errLongPassword = fmt.Errorf("the password is longer than the %d bytes IPMI allows", ipmiMaxPassword)
)

func (d *ipmiDriver) open(ctx context.Context) (session, error) {
	if len(d.cfg.Password) > ipmiMaxPassword {
		return nil, errLongPassword
	}
	path, err := exec.LookPath(ipmitoolBinary)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoIpmitool, err)
	}
	return &ipmiSession{d: d, path: path}, nil
}

// ipmiSession is one operation attempt. IPMI "sessions" are ipmitool runs,
// each with its own RMCP+ session, so there is nothing to close.
type ipmiSession struct {
	d    *ipmiDriver
	path string
	bm   *bmclib.Client
}

func (s *ipmiSession) protocol() string          { return ProtocolIPMI }
func (s *ipmiSession) close(ctx context.Context) {}

// bmclib returns a bmclib client restricted to its ipmitool driver.
func (s *ipmiSession) bmclib() *bmclib.Client {
	if s.bm != nil {
		return s.bm
	}
	d := s.d
	opts := []bmclib.Option{
		bmclib.WithIpmitoolPort(strconv.Itoa(d.portNum)),
		bmclib.WithIpmitoolPath(s.path),
	}
	if cs := d.learnedCipher(); cs != "" {
		opts = append(opts, bmclib.WithIpmitoolCipherSuite(cs))
	}
	cl := bmclib.NewClient(d.cfg.Host, d.cfg.Username, d.cfg.Password, opts...)
	cl.Registry.Drivers = cl.Registry.For(ipmitool.ProviderName)
	s.bm = cl
	return cl
}

func (s *ipmiSession) powerState(ctx context.Context) (string, bool, error) {
	raw, err := s.bmclib().GetPowerState(ctx)
	if err != nil {
		return "", false, err
	}
	return normalizePowerState(raw)
}

func (s *ipmiSession) setPower(ctx context.Context, action string) error {
	ok, err := s.bmclib().SetPowerState(ctx, action)
	if err == nil && !ok {
		err = fmt.Errorf("the BMC did not confirm power %s", action)
	}
	return err
}

func (s *ipmiSession) setBootDevice(ctx context.Context, device string, persistent, efi bool) error {
	ok, err := s.bmclib().SetBootDevice(ctx, device, persistent, efi)
	if err == nil && !ok {
		err = fmt.Errorf("the BMC did not confirm boot device %s", device)
	}
	return err
}

func (s *ipmiSession) bootOverride(ctx context.Context) (BootOverride, error) {
	out, err := s.d.run(ctx, s.path, nil, "chassis", "bootparam", "get", "5")
	if err != nil {
		return BootOverride{}, err
	}
	return parseBootParam5(out)
}

func (s *ipmiSession) inventory(ctx context.Context) (Inventory, error) {
	var inv Inventory
	out, err := s.d.run(ctx, s.path, nil, "fru", "print", "0")
	var ie *ipmitoolError
	switch {
	case err == nil:
	case errors.As(err, &ie) && strings.Contains(ie.stdout+ie.stderr, "Device not present"):
		// No FRU data: the BMC reports no vendor, model or serial.
		out = ""
	default:
		return inv, err
	}
	inv.Vendor, inv.Model, inv.Serial = parseFRU(out)
	out, err = s.d.run(ctx, s.path, nil, "mc", "info")
	if err != nil {
		return inv, err
	}
	inv.BMCFirmware = parseMCInfo(out)
	return inv, nil
}

// ipmitoolError is a failed ipmitool run.
type ipmitoolError struct {
	args           []string // the command, without connection options
	code           int
	stdout, stderr string
	err            error
}

func (e *ipmitoolError) Error() string {
	msg := strings.TrimSpace(e.stderr)
	if out := strings.TrimSpace(e.stdout); out != "" {
		msg = strings.TrimSpace(out + "\n" + msg)
	}
	// ipmitool -v chatter says nothing about the failure.
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Loading IANA PEN Registry") &&
			!strings.HasPrefix(l, "Running Get VSO Capabilities") && !strings.HasPrefix(l, "Discovered IPMB address") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{e.err.Error()}
	}
	return fmt.Sprintf("ipmitool %s: %s", strings.Join(e.args, " "), strings.Join(lines, "; "))
}

func (e *ipmitoolError) Unwrap() error { return e.err }

// run runs ipmitool with the connection options, -v (so that failures say
// why) and args, trying the cipher suites until one is accepted. The
// password travels in the environment (-E), never in the argv. extra holds
// options placed before args (such as -N/-R).
func (d *ipmiDriver) run(ctx context.Context, path string, extra []string, args ...string) (string, error) {
	ciphers := ipmiCipherSuites
	if cs := d.learnedCipher(); cs != "" {
		ciphers = []string{cs}
	}
	var lastErr error
	for _, cs := range ciphers {
		argv := []string{"-I", "lanplus", "-H", d.cfg.Host, "-p", strconv.Itoa(d.portNum),
			"-U", d.cfg.Username, "-E", "-v", "-C", cs}
		argv = append(argv, extra...)
		argv = append(argv, args...)
		cmd := exec.CommandContext(ctx, path, argv...)
		cmd.Env = []string{"IPMITOOL_PASSWORD=" + d.cfg.Password, "LC_ALL=C"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		if err == nil {
			d.learnCipher(cs)
			return stdout.String(), nil
		}
		ie := &ipmitoolError{args: args, stdout: stdout.String(), stderr: stderr.String(), err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ie.code = ee.ExitCode()
		}
		if ctx.Err() != nil || !ipmiCipherUnsupported(ie.stderr) {
			return ie.stdout, ie
		}
		lastErr = ie
	}
	return "", lastErr
}

// classify tells what a failure means. bmclib runs ipmitool without -v, so
// its errors say only "Unable to establish IPMI v2 / RMCP+ session" for a
// wrong password and for a BMC that does not answer alike; a short
// diagnosis run with -v then tells them apart.
func (d *ipmiDriver) classify(ctx context.Context, err error) (kind, string, bool) {
	if errors.Is(err, errNoIpmitool) || errors.Is(err, errLongPassword) {
		return kindOther, err.Error(), true
	}
	text := err.Error()
	var ie *ipmitoolError
	if errors.As(err, &ie) {
		text = ie.stdout + "\n" + ie.stderr
	}
	noSession := strings.Contains(text, ipmiNoSessionMarker)
	if k := ipmiTextKind(text); k != kindOther {
		return k, ipmiDetail(k, err), noSession
	}
	if !noSession {
		return kindOther, err.Error(), false
	}
	path, lookErr := exec.LookPath(ipmitoolBinary)
	if lookErr != nil {
		return kindOther, err.Error(), true
	}
	_, perr := d.run(ctx, path, []string{"-N", ipmiProbeTimeoutSeconds, "-R", ipmiProbeRetries}, "chassis", "power", "status")
	if perr == nil {
		// The BMC answers and accepts the login now: the session failed
		// for a passing reason (session table full, lost packet).
		return kindTransient, "could not open a session: " + oneLine(text, maxDetailInError), true
	}
	var pe *ipmitoolError
	if errors.As(perr, &pe) {
		if k := ipmiTextKind(pe.stdout + "\n" + pe.stderr); k != kindOther {
			return k, ipmiDetail(k, perr), true
		}
	}
	return kindOther, perr.Error(), true
}

// ipmiDetail is the detail shown for a classified ipmitool failure: the
// tool's message for the unusual kinds, nothing for the ones whose message
// says it all.
func ipmiDetail(k kind, err error) string {
	switch k {
	case kindAuth, kindNoAnswer:
		return ""
	}
	return err.Error()
}
