package testbed

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bootIFRE finds the initramfs's console line.
var bootIFRE = regexp.MustCompile(regexp.QuoteMeta(PXEBootMarker) + ` BOOTIF=(\S*) cmdline=(.*)`)

// TestPXEVM network-boots a VM end to end: the boot device and the power
// are set through real IPMI, iPXE runs boot.ipxe from the TFTP directory,
// which chains the per-MAC script, which loads the kernel and initramfs;
// the initramfs reports BOOTIF and powers the VM off, which the BMC sees.
// Before that, a boot with the disk as boot device must not network-boot.
func TestPXEVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	kernel, initrd, err := EnsurePXEBootFiles(ctx, t.Logf)
	if err != nil {
		t.Fatalf("EnsurePXEBootFiles: %v", err)
	}
	t.Logf("PXE boot files ready in %s: %s, %s", time.Since(start).Round(100*time.Millisecond), kernel, initrd)

	tftp := t.TempDir()
	copyFile(t, kernel, filepath.Join(tftp, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(tftp, "initrd.img"))
	writeFile(t, filepath.Join(tftp, "boot.ipxe"), "#!ipxe\necho boot.ipxe: chaining the script of ${net0/mac}\nchain ${net0/mac:hexhyp}.ipxe\n")

	start = time.Now()
	vm, err := StartPXEVM(ctx, t.TempDir(), PXEVMOptions{TFTPDir: tftp, BootFile: "boot.ipxe", Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartPXEVM: %v", err)
	}
	t.Cleanup(func() {
		if err := vm.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if vm.running() {
			t.Errorf("qemu still running after Stop")
		}
	})
	t.Logf("PXE VM's BMC ready on %s in %s", vm.BMC.HostPort(), time.Since(start).Round(time.Millisecond))
	if vm.MAC != DefaultPXEMAC || vm.TFTPDir != tftp {
		t.Fatalf("MAC %s, TFTPDir %s; want %s, %s", vm.MAC, vm.TFTPDir, DefaultPXEMAC, tftp)
	}
	perMAC := strings.ReplaceAll(vm.MAC, ":", "-") + ".ipxe" // 52-54-00-12-34-56.ipxe
	writeFile(t, filepath.Join(tftp, perMAC),
		"#!ipxe\nkernel vmlinuz console=ttyS0 quiet BOOTIF=01-${net0/mac:hexhyp}\ninitrd initrd.img\nboot\n")
	assertPower(ctx, t, vm.BMC, false)

	t.Run("DiskDoesNotNetboot", func(t *testing.T) {
		if _, err := vm.BMC.Ipmitool(ctx, "chassis", "bootdev", "disk"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := vm.BMC.SetPower(ctx, true); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		console, err := vm.WaitConsole(wctx, "No bootable device")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("no bootable device after %s", time.Since(start).Round(100*time.Millisecond))
		if strings.Contains(console, "iPXE") {
			t.Fatalf("the VM ran iPXE with boot device disk:\n%s", console)
		}
		assertPower(ctx, t, vm.BMC, true)
		// The one-shot flag was consumed by this power on.
		assertBootFlags(ctx, t, vm.BMC, "none", false, false, false)
		if err := vm.BMC.SetPower(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitPower(ctx, t, vm.BMC, false, 30*time.Second)
	})

	t.Run("PXE", func(t *testing.T) {
		// What bmclib's PxeOnceMbr sends.
		if _, err := vm.BMC.Ipmitool(ctx, "chassis", "bootdev", "pxe"); err != nil {
			t.Fatal(err)
		}
		assertBootFlags(ctx, t, vm.BMC, "pxe", false, false, true)
		start := time.Now()
		if err := vm.BMC.SetPower(ctx, true); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		console, err := vm.WaitConsole(wctx, PXEBootMarker)
		if err != nil {
			t.Fatal(err)
		}
		booted := time.Since(start)
		m := bootIFRE.FindStringSubmatch(console)
		if m == nil {
			t.Fatalf("no complete %q line on the console:\n%s", PXEBootMarker, console)
		}
		wantBootIF := "01-" + strings.ReplaceAll(vm.MAC, ":", "-")
		if m[1] != wantBootIF {
			t.Fatalf("BOOTIF=%q, want %q (console line %q)", m[1], wantBootIF, m[0])
		}
		if !strings.Contains(m[2], "console=ttyS0") || !strings.Contains(m[2], "BOOTIF="+wantBootIF) {
			t.Fatalf("cmdline %q lacks the per-MAC script's parameters", m[2])
		}
		for _, step := range []string{"boot.ipxe: chaining the script of " + vm.MAC, perMAC + "... ok"} {
			if !strings.Contains(console, step) {
				t.Errorf("console lacks %q", step)
			}
		}
		// The guest powered itself off; the BMC must see it.
		waitPower(ctx, t, vm.BMC, false, time.Minute)
		t.Logf("PXE boot end to end: IPMI power on to console line %s, to BMC reporting power off %s",
			booted.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
		assertBootFlags(ctx, t, vm.BMC, "none", false, false, false)
	})
}

// TestPXEInitrd checks the initramfs: a gzip'd newc cpio with /init, the
// console device, and an /init that prints PXEBootMarker.
func TestPXEInitrd(t *testing.T) {
	if !bytes.Contains(pxeInitSource, []byte(`Marker = "`+PXEBootMarker+`"`)) {
		t.Fatalf("pxeinit's Marker differs from PXEBootMarker %q", PXEBootMarker)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := ensurePXEInitrd(ctx, cache, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ mode, rdevMajor, rdevMinor int }
	entries := map[string]entry{}
	for off := 0; off+110 <= len(data); {
		hdr := string(data[off : off+110])
		if !strings.HasPrefix(hdr, "070701") {
			t.Fatalf("bad cpio magic at %d: %q", off, hdr[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(hdr[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("bad cpio header field %d at %d: %v", i, off, err)
			}
			return int(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(data[off+110 : off+110+namesize-1])
		off += 110 + namesize
		off += pad4(off)
		entries[name] = entry{mode, rmaj, rmin}
		if name == "init" && !bytes.Contains(data[off:off+size], []byte(PXEBootMarker)) {
			t.Errorf("/init does not contain %q", PXEBootMarker)
		}
		off += size
		off += pad4(off)
		if name == "TRAILER!!!" {
			break
		}
	}
	want := map[string]entry{
		"init":        {cpioRegular | 0o755, 0, 0},
		"dev":         {cpioDir | 0o755, 0, 0},
		"dev/console": {cpioCharDev | 0o600, 5, 1},
		"proc":        {cpioDir | 0o555, 0, 0},
		"TRAILER!!!":  {0, 0, 0},
	}
	for name, w := range want {
		if got, ok := entries[name]; !ok || got != w {
			t.Errorf("initramfs entry %q = %+v (present %t), want %+v", name, got, ok, w)
		}
	}
}

// waitPower polls the BMC until the power is want.
func waitPower(ctx context.Context, t *testing.T, s *IPMISim, want bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		on, err := s.PowerOn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if on == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("power still on=%t after %s", on, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(data))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
