// Package pxe renders a node's network-boot configuration and keeps it on a
// netboot server: a directory served over TFTP/HTTP, either on the machine
// the provider runs on (the local runner) or on a host reached over SSH
// (the SSH runner). It imports nothing from Terraform.
//
// # Layouts
//
// A Config describes exactly one of three layouts. Render returns the files
// the config owns; paths are absolute, under Config.Root. The MAC address is
// written as iPXE's ${net0/mac:hexhyp} prints it (aa-bb-cc-dd-ee-ff).
//
// Generated iPXE + pxelinux (Kernel set). <Root>/aa-bb-cc-dd-ee-ff.ipxe, so a
// generic boot.ipxe can "chain ${net0/mac:hexhyp}.ipxe":
//
//	#!ipxe
//	# Managed by Terraform (homelab provider); local changes are overwritten.
//	imgfree
//	kernel debian/linux initrd=initrd.gz initrd=firmware.cpio.gz console=ttyS0 BOOTIF=01-aa-bb-cc-dd-ee-ff
//	initrd --name initrd.gz debian/initrd.gz
//	initrd --name firmware.cpio.gz debian/firmware.cpio.gz
//	boot
//
// and <Root>/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff for (l)pxelinux clients:
//
//	# Managed by Terraform (homelab provider); local changes are overwritten.
//	DEFAULT homelab
//	LABEL homelab
//	  KERNEL debian/linux
//	  INITRD debian/initrd.gz,debian/firmware.cpio.gz
//	  APPEND console=ttyS0
//	  IPAPPEND 2
//
// The iPXE form works for BIOS and UEFI iPXE alike. Every initrd is loaded
// under an explicit name (its file name) and named again by an "initrd="
// argument on the kernel command line: a UEFI kernel's EFI stub finds its
// initrds through those arguments (iPXE serves them from a virtual file
// system), while BIOS iPXE hands every loaded image to the kernel and the
// kernel ignores the arguments. "imgfree" first drops images left over from
// an earlier attempt, which BIOS iPXE would otherwise pass on as extra
// initrds. The initrds' file names must therefore be distinct, and differ
// from the kernel's. The booting interface is passed as BOOTIF=01-<mac>, the
// form pxelinux's IPAPPEND 2 produces, with the MAC spelled out rather than
// taken from net0 (which need not be the interface that booted). When the
// command line already holds a BOOTIF= word, neither BOOTIF nor IPAPPEND 2 is
// added. Lines without content (no initrd, empty command line) are left out.
//
// Relative kernel and initrd paths are written as given (cleaned). iPXE
// resolves them against the script's own URI, which is at the top of Root,
// and pxelinux against the directory pxelinux.0 was loaded from, normally
// Root as well. http(s):// URLs work with iPXE and lpxelinux.0. iPXE expands
// ${...} settings in the kernel and command line; pxelinux does not.
//
// Custom iPXE script (IPXEScript set): <Root>/aa-bb-cc-dd-ee-ff.ipxe holds
// the script verbatim; no pxelinux file is written. The script must start
// with "#!ipxe", without which iPXE does not run it.
//
// Raspberry Pi (RaspberryPi set): the Pi bootloader asks for files under its
// serial number, so <Root>/<serial>/cmdline.txt holds Cmdline followed by a
// newline and <Root>/<serial>/config.txt holds Config (a final newline is
// added when missing; an empty Config gives an empty file). The firmware and
// kernel files in that directory are not the package's business.
//
// # Server
//
// Server writes files atomically (a temporary file in the same directory,
// renamed over the target; see remote.Runner.Upload) with mode 0644, after
// creating missing parent directories with mode 0755 so an unprivileged TFTP
// daemon can reach them; a directory standing where a file goes is an error,
// never written into. Read reads concurrently, reports missing files by
// leaving them out of its result and fails when the server cannot be
// reached, so drift detection never mistakes an unreachable server for
// deleted files. Remove tolerates missing files and removes a Raspberry Pi
// serial directory that it left empty. Every path reaches the shell as a
// positional parameter of a constant script, never spliced into a command
// line.
//
// # Not found
//
// The package has no ErrNotFound: nothing it manages is ever dropped from
// state for being missing. A missing netboot file is reported by its absence
// from Read's result (drift, which a write restores). A missing Root is the
// sentinel ErrRootMissing, and deliberately not a "not found": it is an
// unmounted file system or a rebuilt server, an error that keeps state and
// stops every write.
package pxe
