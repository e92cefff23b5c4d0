package bmc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// startIPMISim starts an ipmi_sim BMC; a missing ipmi_sim or ipmitool fails
// the test (these tests must not be skipped).
func startIPMISim(t *testing.T) *testbed.IPMISim {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := testbed.StartIPMISim(ctx, t.TempDir(), testbed.IPMISimOptions{Password: testPassword, Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartIPMISim: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func ipmiConfig(s *testbed.IPMISim, logs *logRecorder) bmc.Config {
	cfg := bmc.Config{Host: s.Host, Port: s.Port, Username: s.User, Password: s.Password,
		Protocol: "ipmi", Timeout: 15 * time.Second}
	if logs != nil {
		cfg.Logger = logs.log
	}
	return cfg
}

func simPower(t *testing.T, s *testbed.IPMISim) bool {
	t.Helper()
	on, err := s.PowerOn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return on
}

type simFlags struct {
	device                   string
	persistent, efi, isValid bool
}

func simBootFlags(t *testing.T, s *testbed.IPMISim) simFlags {
	t.Helper()
	dev, persistent, efi, valid, err := s.BootFlags(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return simFlags{dev, persistent, efi, valid}
}

func TestIPMIPowerBootInventory(t *testing.T) {
	s := startIPMISim(t)
	logs := &logRecorder{}
	c := newClient(t, ipmiConfig(s, logs))
	ctx := testCtx(t)
	if p := c.Protocol(); p != "ipmi" {
		t.Fatalf("Protocol() = %q", p)
	}

	mustPower(t, c, "off")
	start := time.Now()
	if err := c.SetPower(ctx, "on"); err != nil {
		t.Fatalf("SetPower on: %v", err)
	}
	t.Logf("SetPower on took %s", time.Since(start))
	if !simPower(t, s) {
		t.Fatal("ipmi_sim is off after SetPower on")
	}
	mustPower(t, c, "on")
	if err := c.SetPower(ctx, "on"); err != nil {
		t.Fatalf("SetPower on again: %v", err)
	}
	if err := c.SetPower(ctx, "off"); err != nil {
		t.Fatalf("SetPower off: %v", err)
	}
	mustPower(t, c, "off")
	if err := s.SetPower(ctx, true); err != nil { // out of band
		t.Fatal(err)
	}
	mustPower(t, c, "on")
	// ipmi_sim powers off at once and on again a second later.
	if err := c.SetPower(ctx, "cycle"); err != nil {
		t.Fatalf("SetPower cycle: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !simPower(t, s) {
		if time.Now().After(deadline) {
			t.Fatal("not on again 10s after a power cycle")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := c.SetPower(ctx, "reset"); err != nil {
		t.Fatalf("SetPower reset: %v", err)
	}
	mustPower(t, c, "on")

	// Boot override: once, consumed by the firmware at boot.
	mustOverride(t, c, bmc.BootOverride{Device: "none"})
	if err := c.SetBootDevice(ctx, "pxe", false, true); err != nil {
		t.Fatalf("SetBootDevice: %v", err)
	}
	if f := simBootFlags(t, s); f != (simFlags{"pxe", false, true, true}) {
		t.Fatalf("BMC boot flags %+v", f)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "pxe", EFI: true, Active: true})
	if err := s.SimulateBoot(ctx); err != nil {
		t.Fatal(err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "none"})

	// Persistent survives boots.
	if err := c.SetBootDevice(ctx, "disk", true, false); err != nil {
		t.Fatalf("SetBootDevice: %v", err)
	}
	if f := simBootFlags(t, s); f != (simFlags{"disk", true, false, true}) {
		t.Fatalf("BMC boot flags %+v", f)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "disk", Persistent: true, Active: true})
	if err := s.SimulateBoot(ctx); err != nil {
		t.Fatal(err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "disk", Persistent: true, Active: true})

	for _, dev := range []string{"cdrom", "bios"} {
		if err := c.SetBootDevice(ctx, dev, false, false); err != nil {
			t.Fatalf("SetBootDevice %s: %v", dev, err)
		}
		mustOverride(t, c, bmc.BootOverride{Device: dev, Active: true})
		if err := s.SimulateBoot(ctx); err != nil {
			t.Fatal(err)
		}
		mustOverride(t, c, bmc.BootOverride{Device: "none"})
	}

	// ipmi_sim has no FRU data: vendor, model and serial are not reported.
	inv, err := c.Inventory(ctx)
	if err != nil || inv != (bmc.Inventory{BMCFirmware: "9.08"}) {
		t.Fatalf("Inventory = %+v, %v", inv, err)
	}
	logs.checkNoPassword(t, testPassword)
}

func TestIPMIWrongCredentials(t *testing.T) {
	s := startIPMISim(t)
	for _, tc := range []struct{ name, user, password, proto string }{
		{"wrong password", s.User, "wrong-password", "ipmi"},
		{"unknown user", "nobody", s.Password, "ipmi"},
		{"wrong password, auto", s.User, "wrong-password", "auto"},
	} {
		logs := &logRecorder{}
		cfg := ipmiConfig(s, logs)
		cfg.Username, cfg.Password, cfg.Protocol = tc.user, tc.password, tc.proto
		c := newClient(t, cfg)
		start := time.Now()
		err := c.SetPower(testCtx(t), "on")
		t.Logf("%s: %v (after %s)", tc.name, err, time.Since(start))
		if !bmc.IsAuth(err) || bmc.IsUnreachable(err) {
			t.Fatalf("%s: %v: IsAuth %v, IsUnreachable %v", tc.name, err, bmc.IsAuth(err), bmc.IsUnreachable(err))
		}
		if !strings.Contains(err.Error(), "wrong username or password") || strings.Contains(err.Error(), tc.password) {
			t.Fatalf("%s: unclear error: %v", tc.name, err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: took %s", tc.name, time.Since(start))
		}
		for _, err := range []error{
			func() error { _, err := c.PowerState(testCtx(t)); return err }(),
			c.SetBootDevice(testCtx(t), "pxe", false, false),
			func() error { _, err := c.BootOverride(testCtx(t)); return err }(),
			func() error { _, err := c.Inventory(testCtx(t)); return err }(),
		} {
			if !bmc.IsAuth(err) {
				t.Fatalf("%s: %v is not an auth error", tc.name, err)
			}
		}
		logs.checkNoPassword(t, tc.password)
	}
	if simPower(t, s) {
		t.Fatal("powered on with wrong credentials")
	}
}

func TestIPMIUnreachable(t *testing.T) {
	s := startIPMISim(t)
	cfg := ipmiConfig(s, nil)
	cfg.Timeout = 3 * time.Second
	c := newClient(t, cfg)
	mustPower(t, c, "off")

	// A hung BMC: nothing answers.
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"PowerState", func() error { _, err := c.PowerState(testCtx(t)); return err }},
		{"SetPower", func() error { return c.SetPower(testCtx(t), "on") }},
		{"BootOverride", func() error { _, err := c.BootOverride(testCtx(t)); return err }},
	} {
		start := time.Now()
		err := op.run()
		elapsed := time.Since(start)
		t.Logf("%s: %v (after %s)", op.name, err, elapsed)
		if !bmc.IsUnreachable(err) || bmc.IsAuth(err) ||
			!strings.Contains(err.Error(), "BMC at "+s.HostPort()+" did not answer within 3s") {
			t.Fatalf("%s on a paused BMC: %v", op.name, err)
		}
		if elapsed < 3*time.Second || elapsed > 5*time.Second {
			t.Fatalf("%s: took %s, want about the 3s timeout", op.name, elapsed)
		}
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 15 * time.Second
	c = newClient(t, cfg)
	mustPower(t, c, "off")

	// A stopped BMC: UDP has no "refused" that ipmitool reports, so this is
	// no answer too.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 2 * time.Second
	c = newClient(t, cfg)
	_, err := c.PowerState(testCtx(t))
	if !bmc.IsUnreachable(err) {
		t.Fatalf("stopped BMC: %v", err)
	}
	t.Logf("stopped: %v", err)
}

// TestIPMIAutoFallsBack: with "auto", nothing speaks Redfish on the port
// (TCP), so the client settles on IPMI (UDP, same port number).
func TestIPMIAutoFallsBack(t *testing.T) {
	s := startIPMISim(t)
	cfg := ipmiConfig(s, nil)
	cfg.Protocol = "auto"
	c := newClient(t, cfg)
	mustPower(t, c, "off")
	if p := c.Protocol(); p != "ipmi" {
		t.Fatalf("Protocol() = %q, want ipmi", p)
	}
	if err := c.SetBootDevice(testCtx(t), "pxe", true, true); err != nil {
		t.Fatal(err)
	}
	mustOverride(t, c, bmc.BootOverride{Device: "pxe", Persistent: true, EFI: true, Active: true})
}
