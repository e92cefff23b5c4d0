package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file gives VMs a shared LAN, so that several of them (e.g. the nodes
// of a cluster) reach each other and the host reaches them, as machines on
// one switch do.
//
// The LAN's switch is a Linux bridge in a network namespace of its own,
// named like the LAN. The host joins it through a veth pair whose host end
// (also named like the LAN) carries the host's address; each VM joins it
// through a tap device created inside that namespace and handed to qemu as
// an open file descriptor. Keeping the bridge out of the host's namespace
// makes the host's firewall and forwarding settings irrelevant: bridged
// frames only pass netfilter (br_netfilter, bridge-nf-call-iptables is on by
// default) in the namespace that holds the bridge, whose tables are empty,
// and the host itself only sends and receives on a directly connected
// subnet, which needs no IP forwarding.
//
// Each LAN is marked with its owner (the pid and start time of the process
// that created it) in the alias of its interfaces; StartLAN deletes LANs
// whose owner is gone. A detached LAN (the demo lab's) is kept until
// StopLANByName.

const (
	// lanNamePrefix starts every LAN name; lanNameRE is the whole name,
	// well within IFNAMSIZ (15 characters).
	lanNamePrefix = "hlb"
	// lanMarkerPrefix starts the interface alias that records a LAN's owner:
	// "homelab-testbed:<pid>:<start time>" or "homelab-testbed:detached".
	lanMarkerPrefix   = "homelab-testbed:"
	lanMarkerDetached = lanMarkerPrefix + "detached"
	// lanNetnsDir is where `ip netns` keeps named network namespaces.
	lanNetnsDir = "/run/netns"
	// lanLockPath serializes creating LANs (and picking their subnets) and
	// deleting stale ones across processes. It lives in /run because LANs
	// are machine-wide, whatever cache directory a process uses.
	lanLockPath = "/run/homelab-testbed-lan.lock"
	// lanUplink is the namespace's end of the host's veth pair.
	lanUplink = "uplink"
	// LANs are /24s in 10.231.0.0/16; the host is .1, nodes from .10.
	lanPrefix         = 24
	lanHostOctet      = 1
	lanFirstNodeOctet = 10
	lanLastNodeOctet  = 254
	// lanMaxTapAttempts bounds the search for a free tap name.
	lanMaxTapAttempts = 64
	// lanTimeout caps creating or deleting a LAN when ctx allows longer
	// (waiting for the lock included).
	lanTimeout = 2 * time.Minute
)

// lanBase is the /16 that LAN subnets are taken from.
var lanBase = [2]byte{10, 231}

var lanNameRE = regexp.MustCompile(`^` + lanNamePrefix + `[0-9a-f]{6}$`)

// LAN is a host-local Ethernet segment for VMs (see StartLAN). Its
// addresses are in a /24 of 10.231.0.0/16: the host is .1, and Addr hands
// out node addresses from .10.
type LAN struct {
	// Name names the LAN's network namespace, the bridge inside it and the
	// host's interface on it: "hlb" and six hex digits.
	Name string
	// HostIP is the host's address on the LAN and Prefix the length of the
	// LAN's prefix (24).
	HostIP string
	Prefix int
	// Subnet is the LAN's network in CIDR notation, e.g. "10.231.7.0/24".
	Subnet string

	mu      sync.Mutex
	nextTap int
	stopped bool
	stopErr error
}

// StartLAN creates a LAN: a network namespace holding a bridge, a veth pair
// linking the host to it, and the host's address in a /24 of 10.231.0.0/16
// that no address or route of this host overlaps. First it deletes the
// LANs of processes that are gone. It needs root and iproute2's `ip`. The
// caller must Stop the LAN (or Detach it); VMs join it through OpenTap (see
// ZFSVMOptions.LAN).
func StartLAN(ctx context.Context) (*LAN, error) {
	if err := requireRoot("creating a VM LAN"); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("iproute2's ip is needed for a VM LAN: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, lanTimeout)
	defer cancel()
	var lan *LAN
	err := withFileLock(ctx, lanLockPath, func() error {
		if err := cleanStaleLANs(ctx); err != nil {
			return err
		}
		used, err := usedIPv4Nets(ctx)
		if err != nil {
			return err
		}
		x, err := pickLANSubnet(used, os.Getpid())
		if err != nil {
			return err
		}
		name, err := newLANName()
		if err != nil {
			return err
		}
		lan = newLAN(name, x)
		marker, err := lanOwnerMarker(os.Getpid())
		if err != nil {
			return err
		}
		if err := lan.create(ctx, marker); err != nil {
			_ = StopLANByName(name)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("starting VM LAN: %w", err)
	}
	return lan, nil
}

// newLAN describes the LAN name on 10.231.x.0/24.
func newLAN(name string, x int) *LAN {
	return &LAN{
		Name:   name,
		HostIP: fmt.Sprintf("%d.%d.%d.%d", lanBase[0], lanBase[1], x, lanHostOctet),
		Prefix: lanPrefix,
		Subnet: fmt.Sprintf("%d.%d.%d.0/%d", lanBase[0], lanBase[1], x, lanPrefix),
	}
}

// create sets up the namespace, bridge and veth pair, marking both ends
// with marker.
func (l *LAN) create(ctx context.Context, marker string) error {
	n := l.Name
	steps := [][]string{
		{"netns", "add", n},
		{"-n", n, "link", "set", "lo", "up"},
		{"-n", n, "link", "add", n, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"-n", n, "link", "set", n, "alias", marker},
		{"link", "add", n, "type", "veth", "peer", "name", lanUplink, "netns", n},
		{"link", "set", n, "alias", marker},
		{"-n", n, "link", "set", lanUplink, "master", n},
		{"-n", n, "link", "set", lanUplink, "up"},
		{"-n", n, "link", "set", n, "up"},
		{"addr", "add", l.HostIP + "/" + strconv.Itoa(l.Prefix), "dev", n},
		{"link", "set", n, "up"},
	}
	for _, args := range steps {
		if _, err := runIP(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Addr returns the LAN address of node i (0-based): .10, .11, ... It
// returns "" when i is out of range (0..244).
func (l *LAN) Addr(i int) string {
	if i < 0 || lanFirstNodeOctet+i > lanLastNodeOctet {
		return ""
	}
	ip := l.subnetIP()
	if ip == nil {
		return ""
	}
	ip[3] = byte(lanFirstNodeOctet + i)
	return ip.String()
}

// subnetIP is a copy of the LAN's network address.
func (l *LAN) subnetIP() net.IP {
	_, n, err := net.ParseCIDR(l.Subnet)
	if err != nil {
		return nil
	}
	return append(net.IP(nil), n.IP.To4()...)
}

// checkNodeAddr fails unless addr is an IPv4 address of the LAN usable by a
// VM: not the network, broadcast or host address.
func (l *LAN) checkNodeAddr(addr string) error {
	ip := net.ParseIP(addr).To4()
	_, subnet, err := net.ParseCIDR(l.Subnet)
	if ip == nil || err != nil || !subnet.Contains(ip) || ip[3] == 0 || ip[3] == 255 || ip.String() == l.HostIP {
		return fmt.Errorf("%q is not a node address of LAN %s (%s, host %s)", addr, l.Name, l.Subnet, l.HostIP)
	}
	return nil
}

// lanMAC is the stable, locally administered MAC address of the LAN NIC
// with address addr: 02:68:6c ("hl") and the last three octets of addr.
func lanMAC(addr string) string {
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("02:68:6c:%02x:%02x:%02x", ip[1], ip[2], ip[3])
}

// OpenTap creates a tap device on the LAN's bridge and returns it open,
// with its name in the LAN's namespace. Pass the file to qemu (e.g. as
// ExtraFiles[0], `-netdev tap,id=n1,fd=3`) and close this copy: the device
// exists as long as any copy is open, so it vanishes when qemu exits.
func (l *LAN) OpenTap() (tap *os.File, ifname string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return nil, "", fmt.Errorf("LAN %s is stopped", l.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lanTimeout)
	defer cancel()
	for attempt := 0; attempt < lanMaxTapAttempts; attempt++ {
		ifname = "tap" + strconv.Itoa(l.nextTap)
		l.nextTap++
		tap, err = openTapInNetns(filepath.Join(lanNetnsDir, l.Name), ifname)
		if errors.Is(err, syscall.EBUSY) {
			continue // in use by another process sharing a detached LAN
		}
		if err != nil {
			return nil, "", fmt.Errorf("creating a tap on LAN %s: %w", l.Name, err)
		}
		if _, err := runIP(ctx, "-n", l.Name, "link", "set", "dev", ifname, "master", l.Name, "up"); err != nil {
			tap.Close()
			return nil, "", fmt.Errorf("attaching tap %s to LAN %s: %w", ifname, l.Name, err)
		}
		return tap, ifname, nil
	}
	return nil, "", fmt.Errorf("no free tap name on LAN %s after %d attempts", l.Name, lanMaxTapAttempts)
}

// openTapInNetns opens /dev/net/tun from inside the network namespace at
// nsPath and attaches it to a (new, non-persistent) tap device ifname
// there. The namespace is entered on a locked thread that is moved back to
// its own namespace afterwards; if that fails the goroutine exits still
// locked and the Go runtime discards the thread. (Relying on the discard
// alone let a later ipmi_sim start inside the LAN namespace.)
func openTapInNetns(nsPath, ifname string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{nil, fmt.Errorf("opening this thread's network namespace: %w", err)}
			return
		}
		defer self.Close()
		f, err := openTapLocked(nsPath, ifname)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{f, err}
	}()
	r := <-done
	return r.f, r.err
}

// openTapLocked is openTapInNetns on a locked thread; it leaves the thread
// in the namespace at nsPath.
func openTapLocked(nsPath, ifname string) (*os.File, error) {
	ns, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace: %w", err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering network namespace %s: %w", nsPath, err)
	}
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return nil, fmt.Errorf("tap name %q: %w", ifname, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", ifname, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun ("+ifname+")"), nil
}

// Detach makes the LAN outlive this process: it is no longer deleted as
// stale once this process is gone, only by Stop or StopLANByName (the demo
// lab's `down`).
func (l *LAN) Detach() error {
	ctx, cancel := context.WithTimeout(context.Background(), lanTimeout)
	defer cancel()
	if _, err := runIP(ctx, "-n", l.Name, "link", "set", l.Name, "alias", lanMarkerDetached); err != nil {
		return fmt.Errorf("detaching LAN %s: %w", l.Name, err)
	}
	if _, err := runIP(ctx, "link", "set", l.Name, "alias", lanMarkerDetached); err != nil {
		return fmt.Errorf("detaching LAN %s: %w", l.Name, err)
	}
	return nil
}

// Stop deletes the LAN (see StopLANByName). It is idempotent.
func (l *LAN) Stop() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.stopped = true
		l.stopErr = StopLANByName(l.Name)
	}
	return l.stopErr
}

// StopLANByName deletes the LAN name, e.g. a detached one from another
// process: the host's interface on it (which takes the veth pair) and its
// network namespace. Taps and the bridge go with the namespace once no VM
// holds a tap open. A LAN that does not exist is not an error.
func StopLANByName(name string) error {
	if !lanNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a testbed LAN name", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lanTimeout)
	defer cancel()
	var errs []error
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err == nil {
		if _, err := runIP(ctx, "link", "del", "dev", name); err != nil && hostLinkExists(name) {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join(lanNetnsDir, name)); err == nil {
		if _, err := runIP(ctx, "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting VM LAN %s: %w", name, err)
	}
	return nil
}

// hostLinkExists reports whether the host's namespace has interface name.
func hostLinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// LookupLAN describes the existing LAN name (e.g. a detached one, from
// another process) from the host's address on it.
func LookupLAN(name string) (*LAN, error) {
	if !lanNameRE.MatchString(name) {
		return nil, fmt.Errorf("%q is not a testbed LAN name", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lanTimeout)
	defer cancel()
	out, err := runIP(ctx, "-j", "-4", "addr", "show", "dev", name)
	if err != nil {
		return nil, fmt.Errorf("looking up LAN %s: %w", name, err)
	}
	var links []ipAddrJSON
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("parsing ip addr output: %w", err)
	}
	for _, link := range links {
		for _, a := range link.AddrInfo {
			ip := net.ParseIP(a.Local).To4()
			if a.Family != "inet" || ip == nil || ip[0] != lanBase[0] || ip[1] != lanBase[1] || a.Prefixlen != lanPrefix {
				continue
			}
			return newLAN(name, int(ip[2])), nil
		}
	}
	return nil, fmt.Errorf("LAN %s has no address in %d.%d.0.0/16", name, lanBase[0], lanBase[1])
}

// ipAddrJSON is one interface of `ip -j addr`; ipLinkJSON of `ip -j link`;
// ipRouteJSON one route of `ip -j route`.
type ipAddrJSON struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

type ipLinkJSON struct {
	Ifname  string `json:"ifname"`
	Ifalias string `json:"ifalias"`
}

type ipRouteJSON struct {
	Dst string `json:"dst"`
}

// runIP runs iproute2's ip and returns its stdout.
func runIP(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// usedIPv4Nets lists the networks of the host's IPv4 addresses and routes
// (all tables, default routes excepted), which a new LAN must not overlap.
func usedIPv4Nets(ctx context.Context) ([]*net.IPNet, error) {
	var used []*net.IPNet
	out, err := runIP(ctx, "-j", "-4", "addr", "show")
	if err != nil {
		return nil, err
	}
	var links []ipAddrJSON
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("parsing ip addr output: %w", err)
	}
	for _, link := range links {
		for _, a := range link.AddrInfo {
			if a.Family != "inet" {
				continue
			}
			if _, n, err := net.ParseCIDR(a.Local + "/" + strconv.Itoa(a.Prefixlen)); err == nil {
				used = append(used, n)
			}
		}
	}
	out, err = runIP(ctx, "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, err
	}
	var routes []ipRouteJSON
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("parsing ip route output: %w", err)
	}
	for _, r := range routes {
		if n := parseRouteDst(r.Dst); n != nil {
			used = append(used, n)
		}
	}
	return used, nil
}

// parseRouteDst parses the dst of `ip -j route` ("10.0.0.0/8" or a bare
// host address); "default" and anything unparsable give nil.
func parseRouteDst(dst string) *net.IPNet {
	if dst == "" || dst == "default" {
		return nil
	}
	if !strings.Contains(dst, "/") {
		dst += "/32"
	}
	_, n, err := net.ParseCIDR(dst)
	if err != nil || n.IP.To4() == nil {
		return nil
	}
	return n
}

// pickLANSubnet returns the x of the first 10.231.x.0/24 that overlaps none
// of used, starting at an offset derived from seed (the pid) so that
// concurrent processes tend to pick different ones.
func pickLANSubnet(used []*net.IPNet, seed int) (int, error) {
	start := seed % 256
	if start < 0 {
		start += 256
	}
	for i := 0; i < 256; i++ {
		x := (start + i) % 256
		cand := &net.IPNet{IP: net.IPv4(lanBase[0], lanBase[1], byte(x), 0).To4(), Mask: net.CIDRMask(lanPrefix, 32)}
		free := true
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				free = false
				break
			}
		}
		if free {
			return x, nil
		}
	}
	return 0, fmt.Errorf("every /24 of %d.%d.0.0/16 overlaps an address or route of this host", lanBase[0], lanBase[1])
}

// newLANName returns a random LAN name not used by a namespace or a host
// interface.
func newLANName() (string, error) {
	for range 16 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		name := lanNamePrefix + hex.EncodeToString(b[:])
		if _, err := os.Stat(filepath.Join(lanNetnsDir, name)); err == nil {
			continue
		}
		if hostLinkExists(name) {
			continue
		}
		return name, nil
	}
	return "", errors.New("no free LAN name found")
}

// lanOwnerMarker is the alias marking a LAN as owned by process pid.
func lanOwnerMarker(pid int) (string, error) {
	start, err := procStartTime(pid)
	if err != nil {
		return "", fmt.Errorf("reading the start time of process %d: %w", pid, err)
	}
	return lanMarkerPrefix + strconv.Itoa(pid) + ":" + strconv.FormatUint(start, 10), nil
}

// lanMarkerLive reports whether a LAN with this marker is in use: detached,
// or owned by a process that still runs (same pid and start time). An
// empty or foreign marker is not live.
func lanMarkerLive(marker string) bool {
	if marker == lanMarkerDetached {
		return true
	}
	rest, ok := strings.CutPrefix(marker, lanMarkerPrefix)
	if !ok {
		return false
	}
	pidStr, startStr, ok := strings.Cut(rest, ":")
	if !ok {
		return false
	}
	pid, err1 := strconv.Atoi(pidStr)
	start, err2 := strconv.ParseUint(startStr, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false
	}
	got, err := procStartTime(pid)
	return err == nil && got == start
}

// procStartTime returns the start time of pid (field 22 of
// /proc/<pid>/stat, in clock ticks since boot), which tells a process
// apart from a later one that reuses its pid.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, errors.New("malformed /proc stat")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// cleanStaleLANs deletes the LANs (namespaces and host interfaces named
// like one) whose owner is gone. The caller holds lanLockPath, so a LAN
// without a marker is a leftover of a creation that died, not one in
// progress.
func cleanStaleLANs(ctx context.Context) error {
	names := map[string]string{} // name -> marker of the host interface
	entries, err := os.ReadDir(lanNetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("listing network namespaces: %w", err)
	}
	for _, e := range entries {
		if lanNameRE.MatchString(e.Name()) {
			names[e.Name()] = ""
		}
	}
	out, err := runIP(ctx, "-j", "link", "show")
	if err != nil {
		return err
	}
	var links []ipLinkJSON
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return fmt.Errorf("parsing ip link output: %w", err)
	}
	for _, l := range links {
		if lanNameRE.MatchString(l.Ifname) {
			names[l.Ifname] = l.Ifalias
		}
	}
	var errs []error
	for name, marker := range names {
		if marker == "" {
			marker = bridgeMarker(ctx, name)
		}
		if lanMarkerLive(marker) {
			continue
		}
		if err := StopLANByName(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting stale LANs: %w", err)
	}
	return nil
}

// bridgeMarker is the alias of the bridge in LAN name's namespace, or "".
func bridgeMarker(ctx context.Context, name string) string {
	if _, err := os.Stat(filepath.Join(lanNetnsDir, name)); err != nil {
		return ""
	}
	out, err := runIP(ctx, "-n", name, "-j", "link", "show", "dev", name)
	if err != nil {
		return ""
	}
	var links []ipLinkJSON
	if json.Unmarshal([]byte(out), &links) != nil || len(links) != 1 {
		return ""
	}
	return links[0].Ifalias
}
