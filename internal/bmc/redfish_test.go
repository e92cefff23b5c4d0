package bmc_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// testPassword is distinctive so that the log check below finds any leak.
const testPassword = "Pw5-never-logged-42" // IPMI allows 20 bytes at most

// logRecorder collects what the client logs.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) log(msg string, fields map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %v", msg, fields))
}

// checkNoPassword fails when any log line holds the password.
func (l *logRecorder) checkNoPassword(t *testing.T, password string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		t.Error("the logger received nothing")
	}
	for _, line := range l.lines {
		if strings.Contains(line, password) {
			t.Errorf("log line contains the password: %s", line)
		}
	}
}

func startRedfishSim(t *testing.T) *testbed.RedfishSim {
	t.Helper()
	s, err := testbed.StartRedfishSim(testbed.RedfishSimOptions{Password: testPassword})
	if err != nil {
		t.Fatalf("StartRedfishSim: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func newClient(t *testing.T, cfg bmc.Config) *bmc.Client {
	t.Helper()
	c, err := bmc.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func redfishConfig(s *testbed.RedfishSim, logs *logRecorder) bmc.Config {
	cfg := bmc.Config{Host: s.Host, Port: s.Port, Username: s.User, Password: s.Password,
		Protocol: "redfish", InsecureTLS: true, Timeout: 15 * time.Second}
	if logs != nil {
		cfg.Logger = logs.log
	}
	return cfg
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPower(t *testing.T, c *bmc.Client, want string) {
	t.Helper()
	got, err := c.PowerState(testCtx(t))
	if err != nil || got != want {
		t.Fatalf("PowerState = %q, %v; want %q", got, err, want)
	}
}

func mustOverride(t *testing.T, c *bmc.Client, want bmc.BootOverride) {
	t.Helper()
	got, err := c.BootOverride(testCtx(t))
	if err != nil || got != want {
		t.Fatalf("BootOverride = %+v, %v; want %+v", got, err, want)
	}
}

func TestRedfishPowerBootInventory(t *testing.T) {
	s := startRedfishSim(t)
	logs := &logRecorder{}
	c := newClient(t, redfishConfig(s, logs))
	ctx := testCtx(t)
	if p := c.Protocol(); p != "redfish" {
		t.Fatalf("Protocol() = %q", p)
	}

	// Power.
	mustPower(t, c, "off")
	start := time.Now()
	if err := c.SetPower(ctx, "on"); err != nil {
		t.Fatalf("SetPower on: %v", err)
	}
	t.Logf("SetPower on took %s", time.Since(start))
	if !s.PowerOn() {
		t.Fatal("simulator is off after SetPower on")
	}
	mustPower(t, c, "on")
	if err := c.SetPower(ctx, "on"); err != nil { // already on
		t.Fatalf("SetPower on again: %v", err)
	}
	if err := c.SetPower(ctx, "off"); err != nil {
		t.Fatalf("SetPower off: %v", err)
	}
	mustPower(t, c, "off")
	for _, action := range []string{"cycle", "reset"} {
		s.SetPower(true)
		boots := s.Boots()
		if err := c.SetPower(ctx, action); err != nil {
			t.Fatalf("SetPower %s: %v", action, err)
		}
		if s.Boots() != boots+1 || !s.PowerOn() {
			t.Fatalf("SetPower %s did not reboot the machine", action)
		}
	}
	s.SetPower(false) // out of band
	mustPower(t, c, "off")
	if err := c.SetPower(ctx, "sideways"); err == nil {
		t.Fatal("SetPower accepted an unknown action")
	}

	// Boot override: once, consumed by a boot.
	mustOverride(t, c, bmc.BootOverride{Device: "none", EFI: true})
	if err := c.SetBootDevice(ctx, "pxe", false, true); err != nil {
		t.Fatalf("SetBootDevice: %v", err)
	}
	if target, enabled, mode := s.BootOverride(); target != "Pxe" || enabled != "Once" || mode != "UEFI" {
		t.Fatalf("simulator override %s %s %s", target, enabled, mode)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "pxe", EFI: true, Active: true})
	s.SimulateBoot()
	mustOverride(t, c, bmc.BootOverride{Device: "pxe", EFI: true})

	// Continuous survives boots.
	if err := c.SetBootDevice(ctx, "disk", true, false); err != nil {
		t.Fatalf("SetBootDevice: %v", err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "disk", Persistent: true, Active: true})
	s.SimulateBoot()
	if err := c.SetPower(ctx, "on"); err != nil {
		t.Fatalf("SetPower on: %v", err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "disk", Persistent: true, Active: true})

	// A one-time override set while on is consumed by the next power-on.
	for _, dev := range []string{"cdrom", "bios"} {
		if err := c.SetBootDevice(ctx, dev, false, false); err != nil {
			t.Fatalf("SetBootDevice %s: %v", dev, err)
		}
		mustOverride(t, c, bmc.BootOverride{Device: dev, Active: true})
		if err := c.SetPower(ctx, "off"); err != nil {
			t.Fatal(err)
		}
		mustOverride(t, c, bmc.BootOverride{Device: dev, Active: true})
		if err := c.SetPower(ctx, "on"); err != nil {
			t.Fatal(err)
		}
		mustOverride(t, c, bmc.BootOverride{Device: dev})
	}
	if err := c.SetBootDevice(ctx, "usb", false, false); err == nil {
		t.Fatal("SetBootDevice accepted an unknown device")
	}

	inv, err := c.Inventory(ctx)
	want := bmc.Inventory{Vendor: testbed.RedfishSimManufacturer, Model: testbed.RedfishSimModel,
		Serial: testbed.RedfishSimSerial, BMCFirmware: testbed.RedfishSimBMCFirmware}
	if err != nil || inv != want {
		t.Fatalf("Inventory = %+v, %v; want %+v", inv, err, want)
	}

	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d Redfish sessions left open", n)
	}
	logs.checkNoPassword(t, testPassword)
}

func TestRedfishWrongPassword(t *testing.T) {
	s := startRedfishSim(t)
	for _, proto := range []string{"redfish", "auto"} {
		logs := &logRecorder{}
		cfg := redfishConfig(s, logs)
		cfg.Protocol = proto
		cfg.Password = "wrong-" + testPassword[:12]
		c := newClient(t, cfg)
		before := s.Requests()
		start := time.Now()
		_, err := c.PowerState(testCtx(t))
		t.Logf("%s: %v (after %s, %d requests)", proto, err, time.Since(start), s.Requests()-before)
		if !bmc.IsAuth(err) || bmc.IsUnreachable(err) {
			t.Fatalf("%s: %v: IsAuth %v, IsUnreachable %v", proto, err, bmc.IsAuth(err), bmc.IsUnreachable(err))
		}
		if !strings.Contains(err.Error(), "wrong username or password") || strings.Contains(err.Error(), testPassword) {
			t.Fatalf("%s: unclear error: %v", proto, err)
		}
		// A refused login is not retried: service root and one login.
		if n := s.Requests() - before; n > 3 {
			t.Fatalf("%s: %d requests for a refused login", proto, n)
		}
		if c.Protocol() != "redfish" && proto == "redfish" || c.Protocol() != "" && proto == "auto" {
			t.Fatalf("%s: Protocol() = %q", proto, c.Protocol())
		}
		for _, err := range []error{
			c.SetPower(testCtx(t), "on"),
			c.SetBootDevice(testCtx(t), "pxe", false, false),
			func() error { _, err := c.BootOverride(testCtx(t)); return err }(),
			func() error { _, err := c.Inventory(testCtx(t)); return err }(),
		} {
			if !bmc.IsAuth(err) {
				t.Fatalf("%s: %v is not an auth error", proto, err)
			}
		}
		logs.checkNoPassword(t, cfg.Password)
	}
	if s.PowerOn() {
		t.Fatal("the machine was powered on with a wrong password")
	}
}

func TestRedfishUnreachable(t *testing.T) {
	// A stopped simulator: the port refuses connections.
	s := startRedfishSim(t)
	cfg := redfishConfig(s, nil)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"redfish", "auto"} {
		cfg.Protocol = proto
		cfg.Timeout = 5 * time.Second
		c := newClient(t, cfg)
		start := time.Now()
		_, err := c.PowerState(testCtx(t))
		elapsed := time.Since(start)
		t.Logf("%s: %v (after %s)", proto, err, elapsed)
		if !bmc.IsUnreachable(err) || bmc.IsAuth(err) {
			t.Fatalf("%s: %v: IsUnreachable %v", proto, err, bmc.IsUnreachable(err))
		}
		if !strings.Contains(err.Error(), net.JoinHostPort(s.Host, strconv.Itoa(s.Port))) {
			t.Fatalf("%s: error does not name the BMC: %v", proto, err)
		}
		if elapsed > 6*time.Second {
			t.Fatalf("%s: took %s", proto, elapsed)
		}
	}

	// A port that accepts connections but never answers.
	addr, stop, err := testbed.StartBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	c := newClient(t, bmc.Config{Host: host, Port: port, Username: "admin", Password: "x",
		Protocol: "redfish", InsecureTLS: true, Timeout: 2 * time.Second})
	start := time.Now()
	err = c.SetPower(testCtx(t), "on")
	elapsed := time.Since(start)
	t.Logf("blackhole: %v (after %s)", err, elapsed)
	if !bmc.IsUnreachable(err) || !strings.Contains(err.Error(), "BMC at "+addr+" did not answer within 2s") {
		t.Fatalf("blackhole: %v", err)
	}
	if elapsed < 2*time.Second || elapsed > 4*time.Second {
		t.Fatalf("blackhole: took %s, want about the 2s timeout", elapsed)
	}

	// The caller's deadline, when shorter, bounds the operation too.
	c = newClient(t, bmc.Config{Host: host, Port: port, Username: "admin", Password: "x",
		Protocol: "redfish", InsecureTLS: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_, err = c.PowerState(ctx)
	if !bmc.IsUnreachable(err) || time.Since(start) > 3*time.Second {
		t.Fatalf("short caller deadline: %v after %s", err, time.Since(start))
	}
}

func TestRedfishAutoPicksRedfish(t *testing.T) {
	s := startRedfishSim(t)
	cfg := redfishConfig(s, nil)
	cfg.Protocol = "auto"
	c := newClient(t, cfg)
	if p := c.Protocol(); p != "" {
		t.Fatalf("Protocol() before connecting = %q", p)
	}
	mustPower(t, c, "off")
	if p := c.Protocol(); p != "redfish" {
		t.Fatalf("Protocol() = %q, want redfish", p)
	}
	if err := c.SetBootDevice(testCtx(t), "pxe", true, true); err != nil {
		t.Fatal(err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "pxe", Persistent: true, EFI: true, Active: true})
}

func TestRedfishTLSVerification(t *testing.T) {
	s := startRedfishSim(t)
	cfg := redfishConfig(s, nil)
	cfg.InsecureTLS = false
	for _, proto := range []string{"redfish", "auto"} {
		cfg.Protocol = proto
		c := newClient(t, cfg)
		_, err := c.PowerState(testCtx(t))
		if err == nil || bmc.IsAuth(err) || bmc.IsUnreachable(err) || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("%s: self-signed certificate: %v", proto, err)
		}
		t.Logf("%s: %v", proto, err)
	}
}

// rawLogin opens a Redfish session directly, as another client would.
func rawLogin(t *testing.T, s *testbed.RedfishSim) (location string, status int) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test of a local simulator
	body, _ := json.Marshal(map[string]string{"UserName": s.User, "Password": s.Password})
	resp, err := hc.Post(s.URL+"/redfish/v1/SessionService/Sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location"), resp.StatusCode
}

func rawLogout(t *testing.T, s *testbed.RedfishSim, location string) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test of a local simulator
	req, _ := http.NewRequest(http.MethodDelete, s.URL+location, nil)
	req.SetBasicAuth(s.User, s.Password)
	resp, err := hc.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
}

// TestRedfishRetriesSessionLimit fills the BMC's session table: the login
// is refused with 503 and retried with backoff until a session is free.
func TestRedfishRetriesSessionLimit(t *testing.T) {
	s := startRedfishSim(t)
	logs := &logRecorder{}
	c := newClient(t, redfishConfig(s, logs))
	var held []string
	for {
		loc, status := rawLogin(t, s)
		if status != http.StatusCreated {
			break
		}
		held = append(held, loc)
	}
	go func() {
		time.Sleep(600 * time.Millisecond)
		for _, loc := range held {
			rawLogout(t, s, loc)
		}
	}()
	start := time.Now()
	mustPower(t, c, "off")
	t.Logf("succeeded after %s with %d sessions held for 600ms", time.Since(start), len(held))
	retried := false
	for _, l := range logs.lines {
		retried = retried || strings.Contains(l, "retrying") && strings.Contains(l, "503")
	}
	if !retried {
		t.Fatalf("no retry after a 503 in the log: %v", logs.lines)
	}

	// When the table stays full, the error says so after the retries.
	for {
		if _, status := rawLogin(t, s); status != http.StatusCreated {
			break
		}
	}
	_, err := c.PowerState(testCtx(t))
	if err == nil || bmc.IsAuth(err) || bmc.IsUnreachable(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("full session table: %v", err)
	}
	t.Logf("full session table: %v", err)
}

// TestRedfishOneOperationAtATime checks that operations on one BMC wait for
// each other (Lock) and that concurrent clients all succeed.
func TestRedfishOneOperationAtATime(t *testing.T) {
	s := startRedfishSim(t)
	c := newClient(t, redfishConfig(s, nil))
	key := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))

	unlock := bmc.Lock(key)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	before := s.Requests()
	_, err := c.PowerState(ctx)
	if err == nil || s.Requests() != before {
		t.Fatalf("operation ran while the BMC was locked: %v", err)
	}
	t.Logf("while locked: %v", err)
	unlock()
	unlock() // idempotent
	mustPower(t, c, "off")

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c2, err := bmc.New(redfishConfig(s, nil))
			if err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				_, err = c2.PowerState(testCtx(t))
			} else {
				err = c2.SetBootDevice(testCtx(t), "pxe", false, false)
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestNewValidates(t *testing.T) {
	good := bmc.Config{Host: "10.0.0.5", Username: "admin", Password: "pw"}
	for _, tc := range []struct {
		name string
		edit func(*bmc.Config)
	}{
		{"empty host", func(c *bmc.Config) { c.Host = "" }},
		{"scheme", func(c *bmc.Config) { c.Host = "https://10.0.0.5" }},
		{"host with port", func(c *bmc.Config) { c.Host = "10.0.0.5:623" }},
		{"port", func(c *bmc.Config) { c.Port = 70000 }},
		{"user", func(c *bmc.Config) { c.Username = "" }},
		{"protocol", func(c *bmc.Config) { c.Protocol = "snmp" }},
		{"timeout", func(c *bmc.Config) { c.Timeout = -time.Second }},
	} {
		cfg := good
		tc.edit(&cfg)
		if _, err := bmc.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, cfg)
		}
	}
	for _, host := range []string{"10.0.0.5", "bmc.lan", "fe80::1", "[fe80::1]"} {
		cfg := good
		cfg.Host = host
		c, err := bmc.New(cfg)
		if err != nil {
			t.Errorf("New(%q): %v", host, err)
			continue
		}
		if c.Protocol() != "" {
			t.Errorf("auto: Protocol() = %q before any operation", c.Protocol())
		}
	}
	cfg := good
	cfg.Protocol = "IPMI"
	if c, err := bmc.New(cfg); err != nil || c.Protocol() != "ipmi" {
		t.Fatalf("New(ipmi) = %v", err)
	}
}

// captureOutput runs fn with the process's stdout and stderr redirected to
// a pipe and returns what was written to them.
func captureOutput(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, r)
	}()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	func() {
		defer func() { os.Stdout, os.Stderr = stdout, stderr }()
		fn()
	}()
	_ = w.Close()
	<-done
	_ = r.Close()
	return buf.String()
}

// TestRedfishDebugEnvPrintsNoSecrets: DEBUG_BMCLIB=true makes bmclib dump
// every Redfish request and response (login body, session token) to the
// process's stdout, which Terraform logs. The client must not let it.
func TestRedfishDebugEnvPrintsNoSecrets(t *testing.T) {
	t.Setenv("DEBUG_BMCLIB", "true")
	t.Setenv("BMCLIB_LOG_LEVEL", "trace")
	s := startRedfishSim(t)
	c := newClient(t, redfishConfig(s, nil))
	ctx := testCtx(t)
	out := captureOutput(t, func() {
		if err := c.SetPower(ctx, "on"); err != nil {
			t.Errorf("SetPower on: %v", err)
		}
		if _, err := c.PowerState(ctx); err != nil {
			t.Errorf("PowerState: %v", err)
		}
		if err := c.SetBootDevice(ctx, "pxe", false, true); err != nil {
			t.Errorf("SetBootDevice: %v", err)
		}
	})
	tokens := s.Tokens()
	if len(tokens) == 0 {
		t.Fatal("the simulator issued no session token: the test proves nothing")
	}
	// Secrets are shown masked in the failure message.
	masked := strings.ReplaceAll(out, s.Password, "[PASSWORD]")
	for _, tok := range tokens {
		masked = strings.ReplaceAll(masked, tok, "[SESSION TOKEN]")
	}
	for _, marker := range []string{"[PASSWORD]", "[SESSION TOKEN]"} {
		if i := strings.Index(masked, marker); i >= 0 {
			t.Errorf("%s appears in the process's output:\n%s", marker, excerpt(masked, i))
		}
	}
	if i := strings.Index(masked, "SessionService/Sessions"); i >= 0 {
		t.Errorf("the process's output holds a Redfish request dump:\n%s", excerpt(masked, i))
	}
}

// excerpt returns up to 600 bytes of s around byte i.
func excerpt(s string, i int) string {
	from, to := max(0, i-300), min(len(s), i+300)
	return s[from:to]
}
