// Command pxeinit is the /init of the initramfs that the testbed's PXE VM
// boots (see testbed.EnsurePXEBootFiles). It reports on the serial console
// that the network boot reached Linux, with the BOOTIF= value and the whole
// kernel command line, and powers the VM off:
//
//	homelab-pxe: booted BOOTIF=<BOOTIF value> cmdline=<the whole /proc/cmdline>
//
// It is built statically (CGO_ENABLED=0) and uses the standard library only.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Marker starts the line pxeinit prints; testbed.PXEBootMarker repeats it.
const Marker = "homelab-pxe: booted"

func main() {
	console := openConsole()
	if err := os.MkdirAll("/proc", 0o555); err != nil {
		fmt.Fprintf(console, "homelab-pxe: mkdir /proc: %v\n", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Fprintf(console, "homelab-pxe: mounting /proc: %v\n", err)
	}
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(console, "homelab-pxe: reading /proc/cmdline: %v\n", err)
	}
	cmdline := strings.TrimSpace(string(data))
	fmt.Fprintf(console, "%s BOOTIF=%s cmdline=%s\n", Marker, bootIF(cmdline), cmdline)
	console.Sync()

	syscall.Sync()
	err = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	// Still running: init must never exit (the kernel would panic), so
	// report and idle.
	fmt.Fprintf(console, "homelab-pxe: power off failed: %v\n", err)
	for {
		time.Sleep(time.Hour)
	}
}

// bootIF returns the value of the last BOOTIF= parameter of cmdline, or "".
func bootIF(cmdline string) string {
	v := ""
	for _, f := range strings.Fields(cmdline) {
		if rest, ok := strings.CutPrefix(f, "BOOTIF="); ok {
			v = rest
		}
	}
	return v
}

// openConsole returns the console the kernel gave init (stdout) unless it
// is missing, then /dev/console or the first serial port.
func openConsole() *os.File {
	if _, err := os.Stdout.Stat(); err == nil {
		return os.Stdout
	}
	for _, p := range []string{"/dev/console", "/dev/ttyS0"} {
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			return f
		}
	}
	return os.Stdout
}
