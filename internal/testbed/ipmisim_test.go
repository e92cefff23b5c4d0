package testbed

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTestIPMISim starts a simulated-chassis BMC and stops it at cleanup.
func startTestIPMISim(t *testing.T, opts IPMISimOptions) *IPMISim {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Logf = t.Logf
	start := time.Now()
	s, err := StartIPMISim(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatalf("StartIPMISim: %v", err)
	}
	t.Logf("ipmi_sim ready on %s in %s (includes the module check or build)", s.HostPort(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// TestIPMISim exercises the simulated chassis through real IPMI: power,
// persistent and one-shot boot flags as ipmitool (and bmclib's ipmitool
// driver) sets them, a wrong password, and a BMC that stops answering.
func TestIPMISim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startTestIPMISim(t, IPMISimOptions{})
	if s.Host != "127.0.0.1" || s.Port == 0 || s.User != "admin" || s.Password != DefaultIPMIPassword || s.PID == 0 {
		t.Fatalf("unexpected BMC %+v", s)
	}

	t.Run("Power", func(t *testing.T) {
		assertPower(ctx, t, s, false)
		for _, on := range []bool{true, false, true} {
			if err := s.SetPower(ctx, on); err != nil {
				t.Fatal(err)
			}
			assertPower(ctx, t, s, on)
			want := map[bool]string{true: "1", false: "0"}[on]
			if got, err := os.ReadFile(filepath.Join(s.Dir, ipmiSimPowerName)); err != nil || strings.TrimSpace(string(got)) != want {
				t.Fatalf("power file = %q (%v), want %q", got, err, want)
			}
		}
		// A soft shutdown (the OS shutting down) powers off too.
		if _, err := s.Ipmitool(ctx, "chassis", "power", "soft"); err != nil {
			t.Fatal(err)
		}
		assertPower(ctx, t, s, false)
	})

	t.Run("BootFlags", func(t *testing.T) {
		assertBootFlags(ctx, t, s, "none", false, false, false)
		steps := []struct {
			args            []string
			device          string
			persistent, efi bool
		}{
			// What bmclib v2.3.5 sends for BootDeviceSet("pxe", true, true).
			{[]string{"pxe", "options=persistent,efiboot"}, "pxe", true, true},
			// Its PxeOnceEfi, BootDeviceSet("disk", false, false), PxeOnceMbr.
			{[]string{"pxe", "options=efiboot"}, "pxe", false, true},
			{[]string{"disk"}, "disk", false, false},
			{[]string{"pxe"}, "pxe", false, false},
			{[]string{"cdrom", "options=persistent"}, "cdrom", true, false},
			{[]string{"bios"}, "bios", false, false},
		}
		for _, st := range steps {
			args := append([]string{"chassis", "bootdev"}, st.args...)
			out, err := s.Ipmitool(ctx, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "Set Boot Device to "+st.args[0]) {
				t.Fatalf("%v printed %q", args, out)
			}
			assertBootFlags(ctx, t, s, st.device, st.persistent, st.efi, true)
			// Booting consumes a one-shot flag and keeps a persistent one.
			if err := s.SimulateBoot(ctx); err != nil {
				t.Fatal(err)
			}
			if st.persistent {
				assertBootFlags(ctx, t, s, st.device, true, st.efi, true)
			} else {
				assertBootFlags(ctx, t, s, "none", false, false, false)
			}
		}
		// The flags are stored in the file a VM's firmware reads.
		data, err := os.ReadFile(s.BootFlagsPath())
		if err != nil || strings.TrimSpace(string(data)) != "00 00 00 00 00" {
			t.Fatalf("boot flags file = %q (%v), want cleared flags", data, err)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		// Passwords travel in IPMITOOL_PASSWORD (-E), never in argv: the
		// acceptance tests' secret sweep samples every process's argv on
		// the machine, this package's included.
		ipmitool := func(user, password string) ([]byte, error) {
			cmd := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-H", s.Host, "-p", strconv.Itoa(s.Port),
				"-U", user, "-E", "-C", "3", "chassis", "power", "status")
			cmd.Env = append(os.Environ(), "IPMITOOL_PASSWORD="+password)
			return cmd.CombinedOutput()
		}
		out, err := ipmitool(s.User, "wrong-password")
		if err == nil {
			t.Fatalf("ipmitool with a wrong password succeeded: %s", out)
		}
		t.Logf("wrong password: %v: %s", err, strings.TrimSpace(string(out)))
		if out, err := ipmitool("nobody", s.Password); err == nil {
			t.Fatalf("ipmitool with an unknown user succeeded: %s", out)
		}
		if out, err := ipmitool(s.User, s.Password); err != nil {
			t.Fatalf("ipmitool with the right password failed: %v: %s", err, out)
		}
	})

	t.Run("PauseResume", func(t *testing.T) {
		if err := s.Pause(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := s.PowerOn(ctx)
		elapsed := time.Since(start)
		if err == nil {
			_ = s.Resume()
			t.Fatal("a paused BMC answered")
		}
		t.Logf("paused BMC: ipmitool gave up after %s: %v", elapsed.Round(time.Millisecond), firstLine(err.Error()))
		// A caller's own deadline ends the call earlier.
		short, cancel := context.WithTimeout(ctx, time.Second)
		_, err = s.PowerOn(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("PowerOn with a 1s deadline on a paused BMC: %v, want a deadline error", err)
		}
		if err := s.Resume(); err != nil {
			t.Fatal(err)
		}
		assertPower(ctx, t, s, false)
	})

	t.Run("Stop", func(t *testing.T) {
		pid := s.PID
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if ProcessAlive(pid, "") {
			t.Fatalf("ipmi_sim %d still running after Stop", pid)
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := s.PowerOn(short); err == nil {
			t.Fatal("a stopped BMC answered")
		}
	})
}

// TestIPMISimPortTaken checks that a BMC does not silently share its port
// with another one (ipmi_sim binds with SO_REUSEADDR).
func TestIPMISimPortTaken(t *testing.T) {
	first := startTestIPMISim(t, IPMISimOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := StartIPMISim(ctx, t.TempDir(), IPMISimOptions{Port: first.Port})
	if err == nil {
		second.Stop()
		t.Fatalf("a second BMC started on the port of the first, %d", first.Port)
	}
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("second BMC on a taken port: %v, want a port-in-use error", err)
	}
	if on, err := first.PowerOn(ctx); err != nil || on {
		t.Fatalf("first BMC after the failed start: power on=%t, %v", on, err)
	}
}

func assertPower(ctx context.Context, t *testing.T, s *IPMISim, want bool) {
	t.Helper()
	on, err := s.PowerOn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if on != want {
		t.Fatalf("power on = %t, want %t", on, want)
	}
}

func assertBootFlags(ctx context.Context, t *testing.T, s *IPMISim, device string, persistent, efi, valid bool) {
	t.Helper()
	gotDevice, gotPersistent, gotEFI, gotValid, err := s.BootFlags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gotDevice != device || gotPersistent != persistent || gotEFI != efi || gotValid != valid {
		t.Fatalf("boot flags: device=%s persistent=%t efi=%t valid=%t, want device=%s persistent=%t efi=%t valid=%t",
			gotDevice, gotPersistent, gotEFI, gotValid, device, persistent, efi, valid)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestIPMISimDetached checks that a detached BMC runs in its own session
// (so it outlives the test process) and that Stop still ends it.
func TestIPMISimDetached(t *testing.T) {
	s := startTestIPMISim(t, IPMISimOptions{Detach: true, User: "operator1", Password: "pass-word"})
	sid, own := procSession(t, s.PID), procSession(t, os.Getpid())
	if sid == own || sid != s.PID {
		t.Fatalf("detached ipmi_sim %d is in session %d (ours %d), want its own", s.PID, sid, own)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.SetPower(ctx, true); err != nil {
		t.Fatal(err)
	}
	assertPower(ctx, t, s, true)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if ProcessAlive(s.PID, "") {
		t.Fatalf("detached ipmi_sim %d still running after Stop", s.PID)
	}
}

// procSession returns the session id of pid from /proc/PID/stat.
func procSession(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesized command: state ppid pgrp session ...
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestIPMISimChassisHistory: every chassis control request reaches the
// history, reads (status, boot flags) do not.
func TestIPMISimChassisHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startTestIPMISim(t, IPMISimOptions{})
	if h, err := s.ChassisHistory(); err != nil || len(h) != 0 {
		t.Fatalf("fresh BMC: history %q, %v; want none", h, err)
	}
	for _, args := range [][]string{{"chassis", "power", "status"}, {"chassis", "bootdev", "pxe"}, {"chassis", "bootparam", "get", "5"}} {
		if _, err := s.Ipmitool(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := s.ChassisHistory(); err != nil || len(h) != 0 {
		t.Fatalf("after reads and a boot flag: history %q, %v; want none", h, err)
	}
	for _, args := range [][]string{{"chassis", "power", "on"}, {"chassis", "power", "cycle"}, {"chassis", "power", "reset"}, {"chassis", "power", "off"}} {
		if _, err := s.Ipmitool(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.ChassisHistory()
	if err != nil {
		t.Fatal(err)
	}
	// A power cycle is "power 0" at once (ipmi_sim powers on again later).
	if got := strings.Join(h, ","); !strings.HasPrefix(got, "power 1,power 0,") || !strings.Contains(got, "reset 1") || !strings.HasSuffix(got, "power 0") {
		t.Fatalf("history %q, want power on, cycle (power 0), reset, power off", h)
	}
}
