package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file runs a real IPMI BMC for tests: ipmi_sim from Debian's openipmi
// package, spoken to over RMCP+ (IPMI 2.0 "lanplus") with ipmitool. Two
// things of ipmi_sim 2.0.33 need help, both handled here:
//
//   - Boot flags. ipmi_sim passes only the 4-bit boot device selector of
//     boot parameter 5 to its chassis_control program and answers
//     `chassis bootparam get 5` with the valid, persistent and EFI bits
//     always clear. A small ipmi_sim module (ipmisim/bootopts.c, loaded with
//     lan.conf's loadlib and built with the C compiler on first use, cached
//     under CacheDir) replaces the Set/Get System Boot Options commands and
//     keeps all five bytes of parameter 5 in a file, so that
//     `ipmitool chassis bootdev pxe options=persistent,efiboot` reads back as
//     it was set.
//   - Cipher suites. ipmi_sim does not answer Get Channel Cipher Suites, on
//     which ipmitool 1.8.19 waits about 10 s per call unless a cipher suite
//     is given; Ipmitool passes `-C 3` (what bmclib tries first). ipmi_sim
//     does not implement cipher suite 17.
//
// Without a VM the chassis is simulated: ipmi_sim's chassis_control hook is
// a shell script keeping the power state in a file. With a VM (see
// IPMISimVM and StartPXEVM) ipmi_sim is the BMC of a qemu VM: "power on"
// runs a start command that becomes qemu, and the VM's exit is "power off".

// ipmiBootOptsSource is the ipmi_sim module that keeps the boot options.
//
//go:embed ipmisim/bootopts.c
var ipmiBootOptsSource []byte

// ipmiBootOptsLayout versions how the module is built; bumping it rebuilds.
const ipmiBootOptsLayout = "ipmisim-bootopts/1"

// openIPMIIncludeDir holds the headers (Debian's libopenipmi-dev) the module
// is compiled against; their content is part of the module's cache key.
const openIPMIIncludeDir = "/usr/include/OpenIPMI"

const (
	// ipmiSimBinary and ipmitoolBinary come with Debian's openipmi and
	// ipmitool packages.
	ipmiSimBinary  = "ipmi_sim"
	ipmitoolBinary = "ipmitool"
	// ipmiSimHost is where the BMC listens.
	ipmiSimHost = "127.0.0.1"
	// DefaultIPMIUser and DefaultIPMIPassword are the BMC's admin login
	// unless IPMISimOptions says otherwise.
	DefaultIPMIUser     = "admin"
	DefaultIPMIPassword = "ipmipw7Hq2x9Kd"
	// ipmitoolCipherSuite is passed to every ipmitool call (see above).
	ipmitoolCipherSuite = "3"
	// ipmitoolTimeout and ipmitoolRetries are ipmitool's -N (seconds per
	// attempt) and -R: a BMC that does not answer fails a call after about
	// six seconds.
	ipmitoolTimeout = "1"
	ipmitoolRetries = "2"
	// ipmiSimStartTimeout caps startup even when ctx has no deadline.
	ipmiSimStartTimeout = time.Minute
	// ipmiSimStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	ipmiSimStopGrace = 5 * time.Second
	// ipmiSimPortAttempts bounds retries when a picked port was taken by
	// someone else before ipmi_sim could bind it.
	ipmiSimPortAttempts = 3
	// ipmiSimPowerOffWait and ipmiSimKillWait are lan.conf's poweroff_wait
	// and kill_wait in VM mode: how long ipmi_sim waits for a VM to go after
	// a power off before SIGTERM, then before SIGKILL.
	ipmiSimPowerOffWait = 5
	ipmiSimKillWait     = 5
	// Limits of IPMI 2.0 user names and passwords.
	maxIPMIUserLen     = 16
	maxIPMIPasswordLen = 20
)

// Files inside an IPMISim directory.
const (
	ipmiSimConfName      = "lan.conf"
	ipmiSimEmuName       = "sim.emu"
	ipmiSimChassisName   = "chassis-control.sh"
	ipmiSimPowerName     = "power"
	ipmiSimHistoryName   = "chassis-history"
	ipmiSimBootFlagsName = "boot-flags"
	ipmiSimStateDirName  = "state"
	ipmiSimLogName       = "ipmi_sim.log"
)

// Environment of ipmi_sim, inherited by a VM's start command.
const (
	// IPMISimEnvSerialPort holds the TCP port on 127.0.0.1 of ipmi_sim's
	// VM serial interface, for qemu's ipmi-bmc-extern chardev.
	IPMISimEnvSerialPort = "IPMISIM_SERIAL_PORT"
	// IPMISimEnvBootFlags holds the path of the file with boot parameter 5
	// (see BootFlagsPath).
	IPMISimEnvBootFlags = "IPMISIM_BOOT_FLAGS"
)

// IPMISimOptions configures StartIPMISim. Zero values select the defaults.
type IPMISimOptions struct {
	// User and Password are the BMC's administrator login, "admin" and
	// "ipmipw7Hq2x9Kd" by default: distinctive, so the secret sweep cannot confuse it with ordinary words (IPMI allows up to 16 and 20 bytes).
	User, Password string
	// Port is the UDP RMCP+ port on 127.0.0.1; 0 picks a free one.
	Port int
	// VM nil simulates a chassis whose power and boot state live in files
	// of Dir; non-nil makes ipmi_sim the BMC of a qemu VM (see StartPXEVM).
	VM *IPMISimVM
	// Detach makes ipmi_sim (and a VM it runs) outlive this process (for
	// the demo lab). Otherwise it is a child of this process, killed by Stop
	// or when this process dies.
	Detach bool
	// Logf receives progress messages (the module build); may be nil.
	Logf func(string, ...any)
}

// IPMISimVM puts ipmi_sim in VM mode: lan.conf's `serial 15 127.0.0.1 PORT
// codec VM` line, which qemu's `-device ipmi-bmc-extern` connects to, and
// `startcmd`/`startnow false`, so that "chassis power on" runs StartCmd and
// the power is on while its process lives. "chassis power off" asks qemu
// over that connection to power off, and ipmi_sim kills the process if it
// is still there a few seconds later. StartPXEVM fills it in.
type IPMISimVM struct {
	// StartCmd is run by ipmi_sim through the shell on power on, in the
	// BMC's Dir, with IPMISimEnvSerialPort and IPMISimEnvBootFlags in its
	// environment. It must end by exec'ing qemu (its process is the VM's
	// power) with `-chardev socket,host=127.0.0.1,port=$IPMISIM_SERIAL_PORT,
	// reconnect=N,id=X -device ipmi-bmc-extern,chardev=X,id=B
	// -device isa-ipmi-kcs,bmc=B`. It must not contain double quotes.
	StartCmd string
	// SerialPort is the TCP port of the VM serial interface on 127.0.0.1;
	// 0 picks a free one. StartIPMISim sets the port it used.
	SerialPort int
}

// IPMISim is a running ipmi_sim BMC.
type IPMISim struct {
	// Host and Port are the RMCP+ (UDP) address, "127.0.0.1".
	Host string
	Port int
	// User and Password are the administrator login.
	User, Password string
	// Dir holds lan.conf, the power and boot flag files, ipmi_sim's state
	// directory and its log.
	Dir string
	// PID is the ipmi_sim process.
	PID int
	// LogPath is ipmi_sim's stdout and stderr (it logs little once running).
	LogPath string

	simPath      string // resolved ipmi_sim executable, for ProcessAlive
	ipmitoolPath string
	modulePath   string
	vm           *IPMISimVM
	detach       bool
	proc         peerProc

	stopped stopOnce
}

// StartIPMISim writes an ipmi_sim configuration into dir (created if
// needed; power and boot flag files already there are kept, like a BMC's
// NVRAM), starts ipmi_sim on it and waits until it answers RMCP pings on its
// port. It builds the boot options module first if needed. Startup is
// bounded by ctx and by an internal timeout. The caller must Stop it.
func StartIPMISim(ctx context.Context, dir string, opts IPMISimOptions) (*IPMISim, error) {
	opts.Logf = logfOrNop(opts.Logf)
	s, err := prepareIPMISim(dir, opts)
	if err != nil {
		return nil, err
	}
	wantSerial := 0
	if s.vm != nil {
		wantSerial = s.vm.SerialPort
	}
	fixedPorts := opts.Port != 0 && (s.vm == nil || wantSerial != 0)
	err = peerStart{
		ensure: func(ctx context.Context) (err error) {
			s.modulePath, err = EnsureIPMIBootOptsModule(ctx, opts.Logf)
			return err
		},
		timeout:  ipmiSimStartTimeout,
		attempts: ipmiSimPortAttempts,
		launch: func(ctx context.Context) error {
			if err := s.launch(ctx); err != nil {
				return fmt.Errorf("starting ipmi_sim in %s: %w", s.Dir, err)
			}
			return nil
		},
		retry: func(err error) bool {
			if fixedPorts || !errors.Is(err, errPortInUse) {
				return false
			}
			// Pick other ports.
			s.Port = opts.Port
			if s.vm != nil {
				s.vm.SerialPort = wantSerial
			}
			return true
		},
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepareIPMISim validates opts, locates the tools and creates dir.
func prepareIPMISim(dir string, opts IPMISimOptions) (*IPMISim, error) {
	simPath, err := exec.LookPath(ipmiSimBinary)
	if err != nil {
		return nil, fmt.Errorf("%s is needed for the IPMI BMC (Debian's openipmi; run scripts/install-deps): %w", ipmiSimBinary, err)
	}
	if simPath, err = filepath.EvalSymlinks(simPath); err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ipmiSimBinary, err)
	}
	tool, err := exec.LookPath(ipmitoolBinary)
	if err != nil {
		return nil, fmt.Errorf("%s is needed to talk to the IPMI BMC (Debian's ipmitool; run scripts/install-deps): %w", ipmitoolBinary, err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("resolving ipmi_sim dir: %w", err)
	}
	if strings.ContainsAny(dir, " \t\n\"'\\$`") {
		return nil, fmt.Errorf("ipmi_sim dir %q contains characters lan.conf cannot express", dir)
	}
	s := &IPMISim{
		Host:         ipmiSimHost,
		Port:         opts.Port,
		User:         opts.User,
		Password:     opts.Password,
		Dir:          dir,
		LogPath:      filepath.Join(dir, ipmiSimLogName),
		simPath:      simPath,
		ipmitoolPath: tool,
		vm:           opts.VM,
		detach:       opts.Detach,
	}
	s.proc = peerProc{name: "ipmi_sim", exe: simPath, log: s.LogPath, grace: ipmiSimStopGrace, pid: &s.PID}
	if s.User == "" {
		s.User = DefaultIPMIUser
	}
	if s.Password == "" {
		s.Password = DefaultIPMIPassword
	}
	noteSecret("BMC password (ipmi_sim)", s.Password)
	if err := checkIPMICredential("user", s.User, maxIPMIUserLen); err != nil {
		return nil, err
	}
	if err := checkIPMICredential("password", s.Password, maxIPMIPasswordLen); err != nil {
		return nil, err
	}
	if s.vm != nil && (s.vm.StartCmd == "" || strings.ContainsAny(s.vm.StartCmd, "\"\n")) {
		return nil, fmt.Errorf("ipmi_sim VM start command %q is empty or has double quotes or newlines", s.vm.StartCmd)
	}
	if err := os.MkdirAll(filepath.Join(dir, ipmiSimStateDirName), 0o755); err != nil {
		return nil, fmt.Errorf("creating ipmi_sim dir: %w", err)
	}
	return s, nil
}

// checkIPMICredential rejects values lan.conf cannot quote or IPMI cannot
// carry.
func checkIPMICredential(what, v string, max int) error {
	if len(v) > max || strings.ContainsAny(v, "\"'\n\\") {
		return fmt.Errorf("IPMI %s %q is longer than %d bytes or contains quotes, backslashes or newlines", what, v, max)
	}
	return nil
}

// BootFlagsPath is the file holding boot parameter 5 (boot flags) of the
// BMC: five hex bytes on one line, e.g. "e0 04 00 00 00" after
// `chassis bootdev pxe options=persistent,efiboot`. A VM's start command
// reads it the way a BIOS asks its BMC, and rewrites it to consume a
// one-shot flag.
func (s *IPMISim) BootFlagsPath() string { return filepath.Join(s.Dir, ipmiSimBootFlagsName) }

// HostPort returns "127.0.0.1:port".
func (s *IPMISim) HostPort() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// configure picks free ports if needed and writes the configuration files.
func (s *IPMISim) configure() error {
	if s.Port == 0 {
		port, err := freeUDPPort(s.Host)
		if err != nil {
			return err
		}
		s.Port = port
	}
	if s.vm != nil && s.vm.SerialPort == 0 {
		port, err := freePort(s.Host)
		if err != nil {
			return err
		}
		s.vm.SerialPort = port
	}
	type file struct {
		name, data string
		mode       os.FileMode
	}
	files := []file{
		{ipmiSimConfName, s.lanConf(), 0o600},
		{ipmiSimEmuName, ipmiSimEmu, 0o644},
	}
	if s.vm == nil {
		files = append(files, file{ipmiSimChassisName, chassisControlScript(s.Dir), 0o755})
	}
	for _, f := range files {
		if err := writeFileMode(filepath.Join(s.Dir, f.name), []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("writing ipmi_sim config: %w", err)
		}
	}
	return nil
}

// lanConf renders lan.conf (see ipmi_lan(5)).
func (s *IPMISim) lanConf() string {
	guid := make([]byte, 16)
	_, _ = rand.Read(guid) // never fails on Linux
	lines := []string{
		"# Generated by the terraform-provider-homelab testbed.",
		`name "homelab"`,
		"startlan 1",
		fmt.Sprintf("  addr %s %d", s.Host, s.Port),
		"  priv_limit admin",
		"  allowed_auths_callback none md2 md5 straight",
		"  allowed_auths_user none md2 md5 straight",
		"  allowed_auths_operator none md2 md5 straight",
		"  allowed_auths_admin none md2 md5 straight",
		"  guid " + hex.EncodeToString(guid),
		"endlan",
		fmt.Sprintf("loadlib %q %q", s.modulePath, s.BootFlagsPath()),
		fmt.Sprintf("user 2 true %q %q admin 10 none md2 md5 straight", s.User, s.Password),
	}
	if s.vm == nil {
		lines = append(lines, fmt.Sprintf("chassis_control %q", filepath.Join(s.Dir, ipmiSimChassisName)))
	} else {
		lines = append(lines,
			fmt.Sprintf("serial 15 %s %d codec VM", s.Host, s.vm.SerialPort),
			fmt.Sprintf("startcmd %q", s.vm.StartCmd),
			"startnow false",
			fmt.Sprintf("poweroff_wait %d", ipmiSimPowerOffWait),
			fmt.Sprintf("kill_wait %d", ipmiSimKillWait),
		)
	}
	return strings.Join(lines, "\n") + "\n"
}

// ipmiSimEmu sets up the BMC at IPMB address 0x20: a device with chassis,
// SEL, SDR, FRU and sensor support and an empty SEL.
const ipmiSimEmu = `# Generated by the terraform-provider-homelab testbed.
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`

// chassisControlScript is ipmi_sim's chassis_control program for a
// simulated chassis. ipmi_sim runs it as `SCRIPT get NAME...` (print
// "NAME:VALUE" lines) and `SCRIPT set NAME VALUE...`. The power state is the
// file "power" ("0" or "1"); a soft shutdown powers off; resets are counted
// in "resets"; every "set" is appended to "chassis-history" as "NAME VALUE"
// lines (see ChassisHistory). Boot options never reach it (the module
// answers those).
func chassisControlScript(dir string) string {
	return `#!/bin/sh
# Generated by the terraform-provider-homelab testbed: the chassis_control
# program of a simulated chassis (see ipmisim.go).
dir='` + dir + `'
store() { printf '%s\n' "$2" >"$dir/$1.tmp" && mv -f "$dir/$1.tmp" "$dir/$1"; }
op=$1
shift
case $op in
get)
	for name in "$@"; do
		case $name in
		power) v=$(cat "$dir/` + ipmiSimPowerName + `" 2>/dev/null); echo "power:${v:-0}" ;;
		boot) echo "boot:none" ;;
		*) echo "$name:0" ;;
		esac
	done
	;;
set)
	while [ $# -ge 2 ]; do
		printf '%s %s\n' "$1" "$2" >>"$dir/` + ipmiSimHistoryName + `"
		case $1 in
		power) store ` + ipmiSimPowerName + ` "$2" ;;
		shutdown) [ "$2" = 0 ] || store ` + ipmiSimPowerName + ` 0 ;;
		reset) n=$(cat "$dir/resets" 2>/dev/null); store resets $((${n:-0} + 1)) ;;
		esac
		shift 2
	done
	;;
esac
exit 0
`
}

// launch writes the configuration, starts ipmi_sim and waits until it is
// ready on its port.
func (s *IPMISim) launch(ctx context.Context) error {
	if err := s.configure(); err != nil {
		return err
	}
	cmd := exec.Command(s.simPath,
		"-c", filepath.Join(s.Dir, ipmiSimConfName),
		"-f", filepath.Join(s.Dir, ipmiSimEmuName),
		"-s", filepath.Join(s.Dir, ipmiSimStateDirName),
		"-n")
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), IPMISimEnvBootFlags+"="+s.BootFlagsPath())
	if s.vm != nil {
		cmd.Env = append(cmd.Env, IPMISimEnvSerialPort+"="+strconv.Itoa(s.vm.SerialPort))
	}
	if err := s.proc.start(cmd, s.detach); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		s.proc.abort()
		return err
	}
	return nil
}

// waitReady polls until ipmi_sim answers an RMCP presence ping on its port
// and is the only process bound to it, failing early when it exits.
// ipmi_sim binds its UDP port with SO_REUSEADDR, so a port another process
// took in the meantime does not make it fail: it has to be checked.
func (s *IPMISim) waitReady(ctx context.Context) error {
	return waitUntil(ctx, readyPollInterval, func() (bool, error) {
		if !s.proc.running() {
			return false, s.startFailure(errors.New("ipmi_sim exited during startup"))
		}
		if asfPing(s.HostPort(), probeTimeout) == nil {
			owned, foreign, err := udpPortOwners(s.PID, s.Port)
			switch {
			case err != nil:
				return false, s.startFailure(err)
			case foreign:
				return false, s.startFailure(fmt.Errorf("%w: another process is bound to UDP port %d", errPortInUse, s.Port))
			case owned:
				return true, nil
			}
		}
		return false, nil
	}, func(err error) error {
		return s.startFailure(fmt.Errorf("ipmi_sim not answering on %s: %w", s.HostPort(), err))
	})
}

// startFailure decorates a startup error with the log, marking ports that
// were taken so that StartIPMISim can retry other ones.
func (s *IPMISim) startFailure(err error) error {
	log, _ := os.ReadFile(s.LogPath)
	if bytes.Contains(log, []byte("Address already in use")) && !errors.Is(err, errPortInUse) {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("%w; ipmi_sim log %s:\n%s", err, s.LogPath, tail(log, maxOutputInError))
}

// Ipmitool runs `ipmitool -I lanplus -H host -p port -U user -E
// -C 3 -N 1 -R 2 args...` (the password in IPMITOOL_PASSWORD, never argv) against the BMC (out-of-band actions in tests) and
// returns its combined output. A failing command is an error quoting the
// output; so is ctx ending, which kills ipmitool.
func (s *IPMISim) Ipmitool(ctx context.Context, args ...string) (string, error) {
	full := append([]string{
		"-I", "lanplus", "-H", s.Host, "-p", strconv.Itoa(s.Port),
		"-U", s.User, "-E", // password in IPMITOOL_PASSWORD, never in argv
		"-C", ipmitoolCipherSuite, "-N", ipmitoolTimeout, "-R", ipmitoolRetries,
	}, args...)
	cmd := exec.CommandContext(ctx, s.ipmitoolPath, full...)
	cmd.Env = append(os.Environ(), "IPMITOOL_PASSWORD="+s.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return string(out), fmt.Errorf("ipmitool %s against %s: %w: %s", strings.Join(args, " "), s.HostPort(), err, tail(out, maxOutputInError))
	}
	return string(out), nil
}

// PowerOn reports the chassis power state (`ipmitool chassis power status`).
func (s *IPMISim) PowerOn(ctx context.Context) (bool, error) {
	out, err := s.Ipmitool(ctx, "chassis", "power", "status")
	if err != nil {
		return false, err
	}
	switch {
	case strings.Contains(out, "Chassis Power is on"):
		return true, nil
	case strings.Contains(out, "Chassis Power is off"):
		return false, nil
	}
	return false, fmt.Errorf("unexpected output of ipmitool chassis power status: %q", out)
}

// SetPower turns the chassis power on or off (`ipmitool chassis power
// on|off`). In VM mode power on starts the VM and power off stops it.
func (s *IPMISim) SetPower(ctx context.Context, on bool) error {
	arg, want := "off", "Chassis Power Control: Down/Off"
	if on {
		arg, want = "on", "Chassis Power Control: Up/On"
	}
	out, err := s.Ipmitool(ctx, "chassis", "power", arg)
	if err != nil {
		return err
	}
	if !strings.Contains(out, want) {
		return fmt.Errorf("unexpected output of ipmitool chassis power %s: %q", arg, out)
	}
	return nil
}

// bootDeviceNames maps boot device selectors (boot parameter 5, data 2
// bits 5:2) to the names BootFlags reports.
var bootDeviceNames = map[byte]string{
	0x0: "none",  // no override
	0x1: "pxe",   // force PXE
	0x2: "disk",  // force boot from default hard drive
	0x3: "disk",  // ... request safe mode
	0x5: "cdrom", // force boot from default CD/DVD
	0x6: "bios",  // force BIOS setup
	0x9: "cdrom", // force boot from remotely connected CD/DVD
	0xb: "disk",  // force boot from remotely connected hard drive
}

// BootFlags reads boot parameter 5 (`ipmitool chassis bootparam get 5`):
// the boot device, normalized to "pxe", "disk", "cdrom", "bios" or "none"
// (other selectors, e.g. floppy, are an error), whether it applies to all
// future boots (persistent) or the next one only, whether the next boot is
// EFI, and whether the flags are valid at all (a firmware ignores invalid
// flags).
func (s *IPMISim) BootFlags(ctx context.Context) (device string, persistent, efi, valid bool, err error) {
	data, err := s.bootFlagBytes(ctx)
	if err != nil {
		return "", false, false, false, err
	}
	sel := (data[1] >> 2) & 0xf
	device, ok := bootDeviceNames[sel]
	if !ok {
		return "", false, false, false, fmt.Errorf("boot device selector 0x%x is none of pxe, disk, cdrom, bios, none", sel)
	}
	return device, data[0]&0x40 != 0, data[0]&0x20 != 0, data[0]&0x80 != 0, nil
}

// bootFlagBytes returns the data bytes of boot parameter 5.
func (s *IPMISim) bootFlagBytes(ctx context.Context) ([]byte, error) {
	out, err := s.Ipmitool(ctx, "chassis", "bootparam", "get", "5")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Boot parameter data:")
		if !ok {
			continue
		}
		data, err := hex.DecodeString(strings.TrimSpace(rest))
		if err != nil || len(data) < 2 {
			break
		}
		return data, nil
	}
	return nil, fmt.Errorf("no boot flags in the output of ipmitool chassis bootparam get 5: %q", out)
}

// SimulateBoot does what a server's firmware does with its BMC's boot flags
// when it boots: valid one-shot (non-persistent) flags are consumed, i.e.
// cleared to "no override" (valid bit off, device none), through Set System
// Boot Options like a BIOS would; persistent flags stay. In VM mode the
// VM's start command does the same at every power on.
func (s *IPMISim) SimulateBoot(ctx context.Context) error {
	data, err := s.bootFlagBytes(ctx)
	if err != nil {
		return err
	}
	if data[0]&0x80 == 0 || data[0]&0x40 != 0 {
		return nil // invalid (ignored by the firmware) or persistent
	}
	// Set System Boot Options (netfn chassis 0x00, command 0x08),
	// parameter 5, all five data bytes zero.
	_, err = s.Ipmitool(ctx, "raw", "0x00", "0x08", "0x05", "0x00", "0x00", "0x00", "0x00", "0x00")
	return err
}

// ChassisHistory returns, oldest first, every chassis control request
// ipmi_sim passed to the simulated chassis since it was created, one
// "NAME VALUE" per request as ipmi_sim's chassis_control program received
// it: "power 1" (power on), "power 0" (power off), "reset 1" (reset) and so
// on. It is the BMC's own record of what it did to the machine, for tests
// that must prove a power operation happened or did not. It is only kept
// for a simulated chassis (not in VM mode).
func (s *IPMISim) ChassisHistory() ([]string, error) {
	if s.vm != nil {
		return nil, errors.New("ipmi_sim in VM mode keeps no chassis history")
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, ipmiSimHistoryName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, nil
	}
	return strings.Split(text, "\n"), nil
}

// Pause stops ipmi_sim (SIGSTOP): the BMC stops answering, as a hung BMC
// does, until Resume. A VM it runs keeps running.
func (s *IPMISim) Pause() error {
	return s.signal(syscall.SIGSTOP)
}

// Resume lets a paused ipmi_sim continue (SIGCONT); requests that arrived
// meanwhile may still be answered late.
func (s *IPMISim) Resume() error {
	return s.signal(syscall.SIGCONT)
}

func (s *IPMISim) signal(sig syscall.Signal) error {
	if s.PID == 0 || !ProcessAlive(s.PID, s.simPath) {
		return fmt.Errorf("ipmi_sim on %s is not running", s.HostPort())
	}
	if err := syscall.Kill(s.PID, sig); err != nil {
		return fmt.Errorf("signalling ipmi_sim %d: %w", s.PID, err)
	}
	return nil
}

// Stop terminates ipmi_sim and everything it started, such as a VM (SIGTERM,
// then SIGKILL after a grace period); a paused ipmi_sim is resumed first.
// It is idempotent and also stops a detached ipmi_sim started by this
// process. Dir is left in place.
func (s *IPMISim) Stop() error {
	return s.stopped.do(func() error {
		if s.PID != 0 && ProcessAlive(s.PID, s.simPath) {
			_ = syscall.Kill(s.PID, syscall.SIGCONT)
		}
		if err := s.proc.terminate(); err != nil {
			return fmt.Errorf("stopping ipmi_sim %s: %w", s.HostPort(), err)
		}
		return nil
	})
}

// freeUDPPort returns a UDP port on addr that was free a moment ago.
func freeUDPPort(addr string) (int, error) {
	c, err := net.ListenPacket("udp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free UDP port on %s: %w", addr, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// asfPing sends an RMCP/ASF presence ping to hostPort and waits for the
// matching pong, which any IPMI LAN interface answers without a session.
func asfPing(hostPort string, timeout time.Duration) error {
	c, err := net.DialTimeout("udp", hostPort, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	const tag = 0x5a
	ping := []byte{
		0x06, 0x00, 0xff, 0x06, // RMCP v1, no ack, class ASF
		0x00, 0x00, 0x11, 0xbe, // ASF IANA enterprise number 4542
		0x80, tag, 0x00, 0x00, // presence ping, message tag, reserved, no data
	}
	if _, err := c.Write(ping); err != nil {
		return err
	}
	buf := make([]byte, 128)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n < 12 || buf[8] != 0x40 || buf[9] != tag {
		return fmt.Errorf("unexpected RMCP answer % x", buf[:n])
	}
	return nil
}

// udpPortOwners reports whether pid has a UDP socket bound to port and
// whether any other socket is bound to it, from /proc/net/udp{,6}.
func udpPortOwners(pid, port int) (owned, foreign bool, err error) {
	mine, err := socketInodes(pid)
	if err != nil {
		return false, false, err
	}
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return false, false, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
			if err != nil || int(p) != port {
				continue
			}
			if mine[f[9]] {
				owned = true
			} else {
				foreign = true
			}
		}
	}
	return owned, foreign, nil
}

// socketInodes returns the inode numbers (as in /proc/net tables) of the
// sockets pid has open.
func socketInodes(pid int) (map[string]bool, error) {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, fmt.Errorf("listing sockets of process %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(rest, "]")] = true
		}
	}
	return inodes, nil
}

// EnsureIPMIBootOptsModule returns the boot options module of ipmi_sim,
// compiled on first use into <CacheDir>/ipmisim-bootopts-<hash>/bootopts.so.
// The hash covers the module source and the OpenIPMI headers it is built
// against. Building needs a C compiler and libopenipmi-dev.
func EnsureIPMIBootOptsModule(ctx context.Context, logf func(string, ...any)) (string, error) {
	h := sha256.New()
	h.Write([]byte(ipmiBootOptsLayout))
	h.Write([]byte{0})
	h.Write(ipmiBootOptsSource)
	for _, name := range []string{"msg.h", "mcserv.h", "lanserv.h"} {
		data, err := os.ReadFile(filepath.Join(openIPMIIncludeDir, name))
		if err != nil {
			return "", fmt.Errorf("the OpenIPMI headers are needed to build the ipmi_sim boot options module (Debian's libopenipmi-dev; run scripts/install-deps): %w", err)
		}
		h.Write([]byte{0})
		h.Write(data)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	name := "ipmisim-bootopts-" + hex.EncodeToString(h.Sum(nil))[:12]
	dir := filepath.Join(cache, name)
	so := filepath.Join(dir, "bootopts.so")
	err = withFileLock(ctx, filepath.Join(cache, name+".lock"), func() error {
		if _, err := os.Stat(so); err == nil {
			return nil
		}
		return buildIPMIBootOptsModule(ctx, dir, so, logf)
	})
	if err != nil {
		return "", fmt.Errorf("ensuring the ipmi_sim boot options module: %w", err)
	}
	return so, nil
}

// buildIPMIBootOptsModule compiles the module into so (atomically).
func buildIPMIBootOptsModule(ctx context.Context, dir, so string, logf func(string, ...any)) error {
	if err := allowBuild(ctx, "the ipmi_sim boot options module"); err != nil {
		return err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	ccPath, err := exec.LookPath(cc)
	if err != nil {
		return fmt.Errorf("a C compiler is needed to build the ipmi_sim boot options module (Debian's gcc; run scripts/install-deps): %w", err)
	}
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(dir, "bootopts.c")
	if err := os.WriteFile(src, ipmiBootOptsSource, 0o644); err != nil {
		return err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".bootopts.%d.so", os.Getpid()))
	defer os.Remove(tmp) // no-op after the rename
	cmd := exec.CommandContext(ctx, ccPath, "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compiling %s: %w: %s", src, err, tail(out, maxOutputInError))
	}
	if err := os.Rename(tmp, so); err != nil {
		return err
	}
	logf("built the ipmi_sim boot options module %s in %s", so, time.Since(start).Round(time.Millisecond))
	return nil
}
