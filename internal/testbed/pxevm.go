package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// This file runs an end-to-end PXE target for tests: a diskless qemu VM
// (TCG) whose BMC is an ipmi_sim in VM mode. Powering it on through IPMI
// runs a start script that plays the firmware's part with the BMC's boot
// flags and then becomes qemu; with the boot device "pxe" the NIC's iPXE ROM
// boots over qemu's user-mode network, whose DHCP and TFTP serve a
// directory the test fills. EnsurePXEBootFiles provides a Debian kernel and
// a tiny initramfs that report the boot on the serial console and power the
// VM off.

// pxeInitSource is the initramfs's /init (package pxeinit), built on first
// use and cached by the hash of this source.
//
//go:embed pxeinit/main.go
var pxeInitSource []byte

// pxeInitrdLayout versions how the initramfs is built from pxeInitSource;
// bumping it rebuilds.
const pxeInitrdLayout = "pxe-initrd/1"

const (
	// PXEBootMarker starts the console line the initramfs prints:
	// "homelab-pxe: booted BOOTIF=<value> cmdline=<kernel command line>".
	PXEBootMarker = "homelab-pxe: booted"
	// DefaultPXEMAC is the VM's MAC address unless PXEVMOptions says
	// otherwise.
	DefaultPXEMAC = "52:54:00:12:34:56"
	// defaultPXEBootFile is the DHCP boot file unless set.
	defaultPXEBootFile = "boot.ipxe"
	// pxeKernelMetaPackage depends on Debian's current amd64 kernel.
	pxeKernelMetaPackage = "linux-image-amd64"
	// pxeVMMemoryMB is the VM's memory: enough for a Debian kernel and a
	// small initramfs.
	pxeVMMemoryMB = 512
	// pxeConsolePoll is how often WaitConsole reads the console log.
	pxeConsolePoll = 200 * time.Millisecond
	// pxeVMGoneChecks is how many consecutive console polls must find the
	// VM powered off (with output in the log) before WaitConsole gives up.
	pxeVMGoneChecks = 10
)

// Files of a PXE VM directory.
const (
	pxeVMBMCDir      = "bmc"
	pxeVMStartScript = "start-vm.sh"
	pxeVMConsoleLog  = "console.log"
	pxeVMQEMULog     = "qemu.log"
	pxeVMPowerLog    = "power-on.log"
)

// PXEVMOptions configures StartPXEVM.
type PXEVMOptions struct {
	// TFTPDir is served over TFTP by qemu (required).
	TFTPDir string
	// BootFile is the DHCP boot file name, relative to TFTPDir,
	// "boot.ipxe" by default. iPXE runs it if it is an iPXE script.
	BootFile string
	// MAC is the NIC's address, "52:54:00:12:34:56" style; DefaultPXEMAC
	// if empty.
	MAC string
	// Logf receives progress messages; may be nil.
	Logf func(string, ...any)
}

// PXEVM is a diskless VM with one NIC, powered and told its boot device
// through real IPMI. It is powered off until BMC powers it on.
type PXEVM struct {
	// BMC is the VM's BMC: power and boot device through real IPMI. The
	// boot flags are read at every power on: valid flags with device "pxe"
	// network-boot, anything else finds no bootable device (there is no
	// disk, and the NIC has no boot ROM then). A one-shot flag is consumed
	// by the power on that used it. The EFI bit is kept but the VM always
	// boots legacy BIOS (SeaBIOS). A guest reboot keeps the boot device of
	// its power on.
	BMC *IPMISim
	// MAC is the NIC's address, lower-case "52:54:00:12:34:56" style.
	MAC string
	// ConsoleLog is the VM's serial console (firmware, iPXE and Linux
	// output), emptied at every power on.
	ConsoleLog string
	// TFTPDir is the directory served over TFTP.
	TFTPDir string

	dir      string
	qemuPath string
}

// StartPXEVM prepares a PXE VM in dir (created if needed) and starts its
// BMC; the VM itself is powered off. The caller must Stop it.
func StartPXEVM(ctx context.Context, dir string, opts PXEVMOptions) (*PXEVM, error) {
	opts.Logf = logfOrNop(opts.Logf)
	if opts.BootFile == "" {
		opts.BootFile = defaultPXEBootFile
	}
	if opts.MAC == "" {
		opts.MAC = DefaultPXEMAC
	}
	hw, err := net.ParseMAC(opts.MAC)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("PXE VM MAC %q is not a 6-byte MAC address", opts.MAC)
	}
	if opts.TFTPDir == "" {
		return nil, errors.New("PXE VM: TFTPDir is required")
	}
	tftp, err := filepath.Abs(opts.TFTPDir)
	if err != nil || !dirExists(tftp) {
		return nil, fmt.Errorf("PXE VM TFTP dir %q is not a directory", opts.TFTPDir)
	}
	qemu, err := exec.LookPath(qemuBinary)
	if err != nil {
		return nil, fmt.Errorf("%s is needed for the PXE VM (Debian's qemu-system-x86; run scripts/install-deps): %w", qemuBinary, err)
	}
	if qemu, err = filepath.EvalSymlinks(qemu); err != nil {
		return nil, fmt.Errorf("resolving %s: %w", qemuBinary, err)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return nil, fmt.Errorf("setpriv (util-linux) is needed for the PXE VM: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("resolving PXE VM dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating PXE VM dir: %w", err)
	}
	v := &PXEVM{
		MAC:        hw.String(),
		ConsoleLog: filepath.Join(dir, pxeVMConsoleLog),
		TFTPDir:    tftp,
		dir:        dir,
		qemuPath:   qemu,
	}
	script := filepath.Join(dir, pxeVMStartScript)
	if err := writeFileMode(script, []byte(v.startScript(setpriv, opts.BootFile)), 0o755); err != nil {
		return nil, fmt.Errorf("writing the PXE VM start script: %w", err)
	}
	bmc, err := StartIPMISim(ctx, filepath.Join(dir, pxeVMBMCDir), IPMISimOptions{
		VM:   &IPMISimVM{StartCmd: "/bin/sh " + script},
		Logf: opts.Logf,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the PXE VM's BMC: %w", err)
	}
	v.BMC = bmc
	return v, nil
}

// startScript renders the VM's start command (see PXEVM.BMC): ipmi_sim runs
// it on power on, and the power is on while the qemu it becomes runs.
func (v *PXEVM) startScript(setpriv, bootFile string) string {
	netdev := "user,id=n0,tftp=" + qemuOptEscape(v.TFTPDir) + ",bootfile=" + qemuOptEscape(bootFile)
	return `#!/bin/sh
# Generated by the terraform-provider-homelab testbed (see pxevm.go).
# ipmi_sim, the VM's BMC, runs this on "chassis power on"; the VM is on while
# this process (which becomes qemu) lives. It first plays the firmware's
# part: it reads the BMC's boot flags (boot parameter 5: valid, persistent,
# device), consumes a valid one-shot flag and network-boots (PXE with the
# NIC's iPXE ROM) only when the flags say pxe. Otherwise the NIC has no boot
# ROM, and the diskless VM finds nothing to boot.
set -eu
flags=${` + IPMISimEnvBootFlags + `:?}
b1=00 b2=00
if [ -s "$flags" ]; then
	read -r b1 b2 _ <"$flags" || true
fi
order=c rom=,romfile= device="no override"
if [ $((0x$b1 & 0x80)) -ne 0 ]; then
	case $(((0x$b2 >> 2) & 15)) in
	1) order=n rom= device=pxe ;;
	2 | 3 | 11) device=disk ;;
	5 | 9) order=d device=cdrom ;;
	6) device=bios ;;
	0) ;;
	*) device="selector $(((0x$b2 >> 2) & 15))" ;;
	esac
	if [ $((0x$b1 & 0x40)) -eq 0 ]; then
		printf '00 00 00 00 00\n' >"$flags.boot"
		mv -f "$flags.boot" "$flags"
	fi
fi
echo "$(date '+%F %T') power on: boot flags $b1 $b2, boot device $device" >>` + remote.Quote(filepath.Join(v.dir, pxeVMPowerLog)) + `
: >` + remote.Quote(v.ConsoleLog) + `
exec ` + remote.Quote(setpriv) + ` --pdeathsig KILL ` + remote.Quote(v.qemuPath) + ` \
	-name pxe-vm -accel tcg -m ` + fmt.Sprint(pxeVMMemoryMB) + ` -smp 1 \
	-nodefaults -no-user-config -display none -machine graphics=off -monitor none \
	-serial ` + remote.Quote("file:"+v.ConsoleLog) + ` \
	-netdev ` + remote.Quote(netdev) + ` \
	-device "virtio-net-pci,netdev=n0,mac=` + v.MAC + `$rom" -boot "order=$order" \
	-chardev "socket,id=ipmi0,host=` + ipmiSimHost + `,port=${` + IPMISimEnvSerialPort + `:?},reconnect=2" \
	-device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0 \
	>>` + remote.Quote(filepath.Join(v.dir, pxeVMQEMULog)) + ` 2>&1
`
}

// WaitConsole waits until the console log contains substr and returns the
// log. The wait is bounded by ctx; it also fails when the VM was powered on
// and is off again without having printed substr. Right after a power on
// the log may still hold the previous power on's output for a moment.
func (v *PXEVM) WaitConsole(ctx context.Context, substr string) (string, error) {
	gone := 0
	for {
		data, _ := os.ReadFile(v.ConsoleLog)
		if bytes.Contains(data, []byte(substr)) {
			return string(data), nil
		}
		if len(data) > 0 && !v.running() {
			gone++
		} else {
			gone = 0
		}
		if gone >= pxeVMGoneChecks {
			return string(data), v.consoleFailure(fmt.Errorf("the PXE VM powered off without printing %q", substr))
		}
		select {
		case <-ctx.Done():
			return string(data), v.consoleFailure(fmt.Errorf("waiting for %q on the PXE VM console: %w", substr, ctx.Err()))
		case <-time.After(pxeConsolePoll):
		}
	}
}

// running reports whether the VM's qemu runs (under its BMC).
func (v *PXEVM) running() bool {
	if v.BMC == nil || v.BMC.PID == 0 {
		return false
	}
	for _, pid := range descendants(v.BMC.PID) {
		if ProcessAlive(pid, v.qemuPath) {
			return true
		}
	}
	return false
}

// consoleFailure decorates err with the BMC, power-on, qemu and console
// logs.
func (v *PXEVM) consoleFailure(err error) error {
	console, _ := os.ReadFile(v.ConsoleLog)
	qlog, _ := os.ReadFile(filepath.Join(v.dir, pxeVMQEMULog))
	plog, _ := os.ReadFile(filepath.Join(v.dir, pxeVMPowerLog))
	var blog []byte
	if v.BMC != nil {
		blog, _ = os.ReadFile(v.BMC.LogPath) // also the start script's errors
	}
	return fmt.Errorf("%w\nBMC log:\n%s\npower-on log:\n%s\nqemu log:\n%s\nconsole %s (tail):\n%s", err,
		tail(blog, maxOutputInError), tail(plog, maxOutputInError), tail(qlog, maxOutputInError),
		v.ConsoleLog, tail(console, consoleTailInError))
}

// Stop stops the BMC and the VM if it runs. It is idempotent.
func (v *PXEVM) Stop() error {
	if v.BMC == nil {
		return nil
	}
	return v.BMC.Stop()
}

// EnsurePXEBootFiles returns a Linux kernel and an initramfs that boot in
// the PXE VM, both cached under CacheDir:
//
//   - the kernel is the one of Debian's linux-image-amd64, fetched with
//     `apt-get download` (never installed) and cached by package version in
//     pxe-kernel-<package>_<version>/vmlinuz; when apt knows no candidate
//     (no package lists) a cached kernel is used, else the lists are updated
//     first (root);
//   - the initramfs is a gzip'd newc cpio whose /init is package pxeinit,
//     built with CGO_ENABLED=0 and cached by the hash of its source in
//     pxe-initrd-<hash>/initrd.img. /init prints one line to the console,
//     PXEBootMarker + " BOOTIF=<BOOTIF= of the kernel command line>
//     cmdline=<the whole command line>", and powers the VM off.
//
// Concurrent callers serialize on file locks. logf may be nil.
func EnsurePXEBootFiles(ctx context.Context, logf func(string, ...any)) (kernel, initrd string, err error) {
	logf = logfOrNop(logf)
	cache, err := CacheDir()
	if err != nil {
		return "", "", err
	}
	if kernel, err = ensurePXEKernel(ctx, cache, logf); err != nil {
		return "", "", err
	}
	if initrd, err = ensurePXEInitrd(ctx, cache, logf); err != nil {
		return "", "", err
	}
	return kernel, initrd, nil
}

// pxeKernelFile is the kernel's name in its cache directory.
const pxeKernelFile = "vmlinuz"

// ensurePXEKernel returns the cached kernel of the current Debian kernel
// package, downloading it first if needed.
func ensurePXEKernel(ctx context.Context, cache string, logf func(string, ...any)) (string, error) {
	pkg, version, err := debianKernelPackage(ctx)
	if err != nil {
		if cached := newestCachedKernel(cache); cached != "" {
			logf("using cached kernel %s (apt: %v)", cached, err)
			return cached, nil
		}
		logf("apt knows no kernel package (%v); updating the package lists", err)
		if err := requireRoot("updating the apt package lists for the PXE kernel"); err != nil {
			return "", err
		}
		if out, err := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get update: %w: %s", err, tail(out, maxOutputInError))
		}
		if pkg, version, err = debianKernelPackage(ctx); err != nil {
			return "", err
		}
	}
	name := "pxe-kernel-" + safeName(pkg+"_"+version)
	dir := filepath.Join(cache, name)
	kernel := filepath.Join(dir, pxeKernelFile)
	err = withFileLock(ctx, filepath.Join(cache, name+".lock"), func() error {
		if checkBzImage(kernel) == nil {
			return nil
		}
		return downloadPXEKernel(ctx, cache, dir, pkg, version, logf)
	})
	if err != nil {
		return "", fmt.Errorf("ensuring the PXE kernel %s %s: %w", pkg, version, err)
	}
	return kernel, nil
}

// debianKernelPackage returns the kernel package linux-image-amd64 depends
// on and its candidate version, from apt's local package lists.
func debianKernelPackage(ctx context.Context) (pkg, version string, err error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", pxeKernelMetaPackage).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache depends %s: %w: %s", pxeKernelMetaPackage, err, tail(out, maxOutputInError))
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			pkg = f[1]
			break
		}
	}
	if pkg == "" {
		return "", "", fmt.Errorf("no linux-image dependency of %s in: %s", pxeKernelMetaPackage, tail(out, maxOutputInError))
	}
	out, err = exec.CommandContext(ctx, "apt-cache", "policy", pkg).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache policy %s: %w: %s", pkg, err, tail(out, maxOutputInError))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			version = strings.TrimSpace(rest)
		}
	}
	if version == "" || version == "(none)" {
		return "", "", fmt.Errorf("apt has no candidate version of %s", pkg)
	}
	return pkg, version, nil
}

// newestCachedKernel returns the most recently cached PXE kernel, or "".
func newestCachedKernel(cache string) string {
	dirs, _ := filepath.Glob(filepath.Join(cache, "pxe-kernel-*"))
	var best string
	var bestTime time.Time
	for _, d := range dirs {
		k := filepath.Join(d, pxeKernelFile)
		fi, err := os.Stat(k)
		if err != nil || checkBzImage(k) != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestTime) {
			best, bestTime = k, fi.ModTime()
		}
	}
	return best
}

var unsafeNameRE = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

// safeName makes s usable as a file name.
func safeName(s string) string { return unsafeNameRE.ReplaceAllString(s, "_") }

// downloadPXEKernel downloads pkg=version with apt-get into a scratch
// directory, extracts boot/vmlinuz-* from it and installs it as dir (the
// caller holds the lock).
func downloadPXEKernel(ctx context.Context, cache, dir, pkg, version string, logf func(string, ...any)) error {
	if err := allowBuild(ctx, "the PXE kernel "+pkg+" "+version); err != nil {
		return err
	}
	start := time.Now()
	stale, _ := filepath.Glob(filepath.Join(cache, "."+filepath.Base(dir)+".build-*"))
	for _, d := range stale {
		_ = os.RemoveAll(d)
	}
	work, err := os.MkdirTemp(cache, "."+filepath.Base(dir)+".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	args := []string{"download", "-q"}
	if os.Geteuid() == 0 {
		// Download as root into this private directory instead of as _apt.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	cmd := exec.CommandContext(ctx, "apt-get", append(args, pkg+"="+version)...)
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s=%s: %w: %s", pkg, version, err, tail(out, maxOutputInError))
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s=%s left %d .deb files", pkg, version, len(debs))
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	if err := extractDebKernel(ctx, debs[0], filepath.Join(out, pxeKernelFile)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "package"), []byte(pkg+" "+version+"\n"), 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir) // an incomplete earlier attempt
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("installing the kernel: %w", err)
	}
	logf("downloaded kernel %s %s into %s in %s", pkg, version, dir, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// extractDebKernel writes the boot/vmlinuz-* of a kernel .deb to dst,
// reading the package's file tree from `dpkg-deb --fsys-tarfile`.
func extractDebKernel(ctx context.Context, deb, dst string) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// dpkg-deb decompresses in a child process: kill its whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running dpkg-deb: %w", err)
	}
	found, extractErr := extractTarKernel(pipe, dst)
	if found && extractErr == nil {
		// The kernel comes early in the archive; skip the modules.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return checkBzImage(dst)
	}
	_, _ = io.Copy(io.Discard, pipe) // let dpkg-deb finish writing
	waitErr := cmd.Wait()
	switch {
	case extractErr != nil:
		return extractErr
	case waitErr != nil:
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", deb, waitErr, tail(stderr.Bytes(), maxOutputInError))
	}
	return fmt.Errorf("no boot/vmlinuz-* in %s", deb)
}

// extractTarKernel copies the first ./boot/vmlinuz-* entry of a tar stream
// to dst.
func extractTarKernel(r io.Reader, dst string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading the kernel package: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(name, "boot/vmlinuz-") {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, fmt.Errorf("extracting %s: %w", name, err)
		}
		return true, f.Close()
	}
}

// checkBzImage checks that path is an x86 Linux boot image ("HdrS" at
// offset 0x202).
func checkBzImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, 0x202); err != nil || string(magic) != "HdrS" {
		return fmt.Errorf("%s is not a Linux bzImage", path)
	}
	return nil
}

// pxeInitrdFile is the initramfs's name in its cache directory.
const pxeInitrdFile = "initrd.img"

// ensurePXEInitrd returns the cached initramfs, building it first if needed.
func ensurePXEInitrd(ctx context.Context, cache string, logf func(string, ...any)) (string, error) {
	h := sha256.New()
	h.Write([]byte(pxeInitrdLayout))
	h.Write([]byte{0})
	h.Write(pxeInitSource)
	name := "pxe-initrd-" + hex.EncodeToString(h.Sum(nil))[:12]
	dir := filepath.Join(cache, name)
	initrd := filepath.Join(dir, pxeInitrdFile)
	err := withFileLock(ctx, filepath.Join(cache, name+".lock"), func() error {
		if _, err := os.Stat(initrd); err == nil {
			return nil
		}
		return buildPXEInitrd(ctx, dir, initrd, logf)
	})
	if err != nil {
		return "", fmt.Errorf("ensuring the PXE initramfs: %w", err)
	}
	return initrd, nil
}

// buildPXEInitrd builds pxeinit (static, linux/amd64) in a scratch module
// and packs it as /init into a gzip'd newc cpio at initrd (atomically).
func buildPXEInitrd(ctx context.Context, dir, initrd string, logf func(string, ...any)) error {
	if err := allowBuild(ctx, "the PXE initramfs"); err != nil {
		return err
	}
	start := time.Now()
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pxeinit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	files := map[string]string{
		"go.mod":  "module pxeinit\n\ngo 1.21\n",
		"main.go": string(pxeInitSource),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	bin := filepath.Join(work, "init")
	env := append(goEnv(), "GOOS=linux", "GOARCH=amd64")
	if _, err := runGoIn(ctx, goBin, work, env, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "."); err != nil {
		return fmt.Errorf("building pxeinit: %w", err)
	}
	initData, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := writeNewc(zw, []cpioEntry{
		{name: "dev", mode: cpioDir | 0o755},
		{name: "dev/console", mode: cpioCharDev | 0o600, rdevMajor: 5, rdevMinor: 1},
		{name: "proc", mode: cpioDir | 0o555},
		{name: "init", mode: cpioRegular | 0o755, data: initData},
	}); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", pxeInitrdFile, os.Getpid()))
	defer os.Remove(tmp) // no-op after the rename
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, initrd); err != nil {
		return err
	}
	logf("built the PXE initramfs %s (%d bytes) in %s", initrd, buf.Len(), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// File types of cpio modes.
const (
	cpioDir     = 0o040000
	cpioCharDev = 0o020000
	cpioRegular = 0o100000
)

// cpioEntry is one file of a newc cpio archive.
type cpioEntry struct {
	name                 string
	mode                 uint32 // type and permission bits
	data                 []byte
	rdevMajor, rdevMinor uint32
}

// writeNewc writes entries and the trailer as a "newc" (SVR4, no CRC) cpio
// archive, the format of Linux initramfs images. Owners are root and
// timestamps zero, so the output depends on the entries only.
func writeNewc(w io.Writer, entries []cpioEntry) error {
	sorted := append([]cpioEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	sorted = append(sorted, cpioEntry{name: "TRAILER!!!"})
	for i, e := range sorted {
		nlink := 1
		if e.mode&0o170000 == cpioDir {
			nlink = 2
		}
		ino := i + 1
		if e.name == "TRAILER!!!" {
			ino, nlink = 0, 1
		}
		hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.rdevMajor, e.rdevMinor, len(e.name)+1, 0)
		rec := append([]byte(hdr), e.name...)
		rec = append(rec, 0)
		rec = append(rec, make([]byte, pad4(len(rec)))...)
		rec = append(rec, e.data...)
		rec = append(rec, make([]byte, pad4(len(e.data)))...)
		if _, err := w.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

// pad4 is the padding that brings n to a multiple of four.
func pad4(n int) int { return (4 - n%4) % 4 }
