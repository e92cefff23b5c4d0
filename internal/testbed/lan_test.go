package testbed

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestLANAllocation covers the pure parts of a LAN: subnet choice, node
// addresses, MACs, names and owner markers.
func TestLANAllocation(t *testing.T) {
	nets := func(cidrs ...string) []*net.IPNet {
		var out []*net.IPNet
		for _, c := range cidrs {
			n := parseRouteDst(c)
			if n == nil {
				t.Fatalf("parseRouteDst(%q) = nil", c)
			}
			out = append(out, n)
		}
		return out
	}
	for _, tc := range []struct {
		used []*net.IPNet
		seed int
		want int
	}{
		{nil, 7, 7},
		{nil, 256 + 3, 3},
		{nets("10.231.7.0/24", "10.231.8.5"), 7, 9},                  // a /24 and a host route
		{nets("10.231.7.128/25", "192.0.2.0/24"), 7, 8},              // smaller overlapping prefix
		{nets("10.231.255.0/24"), 255, 0},                            // wraps around
		{nets("10.0.0.0/8"), 7, -1},                                  // all taken by a covering route
		{nets("10.231.0.0/16"), 1, -1},                               // the whole /16
		{nets("10.230.0.0/16", "10.232.0.0/16", "0.0.0.0/1"), 5, -1}, // 0/1 covers 10/8
	} {
		got, err := pickLANSubnet(tc.used, tc.seed)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("pickLANSubnet(%v, %d) = %d, want an error", tc.used, tc.seed, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("pickLANSubnet(%v, %d) = %d, %v; want %d", tc.used, tc.seed, got, err, tc.want)
		}
	}
	if parseRouteDst("default") != nil || parseRouteDst("fe80::/64") != nil || parseRouteDst("") != nil {
		t.Error("parseRouteDst accepted default, IPv6 or empty")
	}

	lan := newLAN("hlb0a1b2c", 42)
	if lan.HostIP != "10.231.42.1" || lan.Prefix != 24 || lan.Subnet != "10.231.42.0/24" {
		t.Fatalf("newLAN = %+v", lan)
	}
	for i, want := range map[int]string{0: "10.231.42.10", 1: "10.231.42.11", 2: "10.231.42.12", 244: "10.231.42.254", 245: "", -1: ""} {
		if got := lan.Addr(i); got != want {
			t.Errorf("Addr(%d) = %q, want %q", i, got, want)
		}
	}
	for _, ok := range []string{"10.231.42.10", "10.231.42.2", "10.231.42.254"} {
		if err := lan.checkNodeAddr(ok); err != nil {
			t.Errorf("checkNodeAddr(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "10.231.42.1", "10.231.42.0", "10.231.42.255", "10.231.43.10", "fd00::10", "nonsense"} {
		if err := lan.checkNodeAddr(bad); err == nil {
			t.Errorf("checkNodeAddr(%q) accepted it", bad)
		}
	}
	if got := lanMAC("10.231.42.10"); got != "02:68:6c:e7:2a:0a" {
		t.Errorf("lanMAC = %q", got)
	}
	if mac, err := net.ParseMAC(lanMAC("10.231.42.11")); err != nil || mac[0]&2 == 0 || mac[0]&1 != 0 {
		t.Errorf("lanMAC is not a locally administered unicast MAC: %v, %v", mac, err)
	}

	seen := map[string]bool{}
	for range 20 {
		name, err := newLANName()
		if err != nil {
			t.Fatal(err)
		}
		if !lanNameRE.MatchString(name) || len(name) > 15 || seen[name] {
			t.Fatalf("newLANName = %q (invalid, longer than IFNAMSIZ-1 or repeated)", name)
		}
		seen[name] = true
	}
	for _, bad := range []string{"eth0", "hlb", "hlb0a1b2", "hlb0a1b2c3", "hlbXYZ123", "../hlb0a1b2c"} {
		if lanNameRE.MatchString(bad) {
			t.Errorf("lanNameRE matches %q", bad)
		}
	}

	own, err := lanOwnerMarker(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !lanMarkerLive(own) || !lanMarkerLive(lanMarkerDetached) {
		t.Errorf("own marker %q or the detached marker is not live", own)
	}
	pid, start, _ := strings.Cut(strings.TrimPrefix(own, lanMarkerPrefix), ":")
	n, _ := strconv.ParseUint(start, 10, 64)
	for _, dead := range []string{
		"", "homelab-testbed:", "something else", "homelab-testbed:0:1",
		lanMarkerPrefix + pid + ":" + strconv.FormatUint(n+1, 10), // pid reused by another process
		lanMarkerPrefix + "2147483646:1",                          // no such process
	} {
		if lanMarkerLive(dead) {
			t.Errorf("lanMarkerLive(%q) = true", dead)
		}
	}
}

// TestLANLifecycle creates LANs without VMs: addresses, taps, stale
// cleanup, detaching and stopping.
func TestLANLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lan := startTestLAN(ctx, t)
	if !lanNameRE.MatchString(lan.Name) {
		t.Fatalf("LAN name %q", lan.Name)
	}
	if out, err := runIP(ctx, "-4", "-o", "addr", "show", "dev", lan.Name); err != nil || !strings.Contains(out, lan.HostIP+"/24") {
		t.Fatalf("host interface %s lacks %s/24: %q, %v", lan.Name, lan.HostIP, out, err)
	}
	if got, err := LookupLAN(lan.Name); err != nil || got.HostIP != lan.HostIP || got.Subnet != lan.Subnet || got.Prefix != lan.Prefix {
		t.Fatalf("LookupLAN = %+v, %v; want %+v", got, err, lan)
	}
	if alias := bridgeMarker(ctx, lan.Name); !lanMarkerLive(alias) || alias == lanMarkerDetached {
		t.Fatalf("bridge alias %q does not name this process", alias)
	}

	// A tap lives on the bridge while open and vanishes when closed.
	tap, ifname, err := lan.OpenTap()
	if err != nil {
		t.Fatalf("OpenTap: %v", err)
	}
	out, err := runIP(ctx, "-n", lan.Name, "-o", "link", "show", "dev", ifname)
	if err != nil || !strings.Contains(out, "master "+lan.Name) {
		tap.Close()
		t.Fatalf("tap %s not on the bridge: %q, %v", ifname, out, err)
	}
	tap2, ifname2, err := lan.OpenTap()
	if err != nil || ifname2 == ifname {
		t.Fatalf("second OpenTap = %q, %v", ifname2, err)
	}
	tap2.Close()
	tap.Close()
	if _, err := runIP(ctx, "-n", lan.Name, "link", "show", "dev", ifname); err == nil {
		t.Fatalf("tap %s still exists after closing it", ifname)
	}

	// A LAN of a dead process is deleted by the next StartLAN; a detached
	// one is kept.
	stale := createMarkedLAN(ctx, t, lanMarkerPrefix+"2147483646:1")
	detached := createMarkedLAN(ctx, t, lanMarkerDetached)
	other := startTestLAN(ctx, t)
	if other.Subnet == lan.Subnet || other.Name == lan.Name {
		t.Fatalf("second LAN %+v reuses the first's subnet or name %+v", other, lan)
	}
	if lanExists(stale.Name) {
		t.Errorf("stale LAN %s survived StartLAN", stale.Name)
	}
	if !lanExists(detached.Name) || !lanExists(lan.Name) {
		t.Errorf("StartLAN deleted a live (%s) or detached (%s) LAN", lan.Name, detached.Name)
	}
	if err := StopLANByName(detached.Name); err != nil || lanExists(detached.Name) {
		t.Errorf("StopLANByName(%s): %v (exists: %t)", detached.Name, err, lanExists(detached.Name))
	}
	if err := StopLANByName(detached.Name); err != nil {
		t.Errorf("StopLANByName of a deleted LAN: %v", err)
	}
	if err := StopLANByName("eth0"); err == nil {
		t.Error("StopLANByName accepted eth0")
	}

	if err := lan.Detach(); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if alias := bridgeMarker(ctx, lan.Name); alias != lanMarkerDetached {
		t.Fatalf("bridge alias after Detach = %q", alias)
	}
	if err := lan.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := lan.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if lanExists(lan.Name) {
		t.Fatalf("LAN %s exists after Stop", lan.Name)
	}
	if _, _, err := lan.OpenTap(); err == nil {
		t.Fatal("OpenTap on a stopped LAN succeeded")
	}
}

// TestLANTwoVMs boots two node VMs on one LAN and proves that they reach
// each other and the host, and that the host reaches them, on their LAN
// addresses.
func TestLANTwoVMs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	lan := startTestLAN(ctx, t)

	names := []string{"lan-node-a", "lan-node-b"}
	vms := make([]*ZFSVM, len(names))
	errs := make([]error, len(names))
	start := time.Now()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vms[i], errs[i] = StartZFSVM(ctx, filepath.Join(t.TempDir(), name), ZFSVMOptions{
				NoDisks: true, Name: name, LAN: lan, LANAddr: lan.Addr(i), MemoryMB: 1024, Logf: t.Logf,
			})
		}()
	}
	wg.Wait()
	for i, vm := range vms {
		if vm != nil {
			t.Cleanup(func() {
				if err := vm.Stop(); err != nil {
					t.Errorf("Stop: %v", err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatalf("StartZFSVM %s: %v", names[i], errs[i])
		}
	}
	t.Logf("2 VMs ready in parallel in %s", time.Since(start).Round(100*time.Millisecond))
	a, b := vms[0], vms[1]

	for i, vm := range vms {
		if vm.Name != names[i] || vm.LANAddr != lan.Addr(i) || vm.LANIf != "eth1" || vm.LANPrefix != 24 || len(vm.Disks) != 0 {
			t.Fatalf("VM %d: Name %q, LANAddr %q, LANIf %q, LANPrefix %d, Disks %v", i, vm.Name, vm.LANAddr, vm.LANIf, vm.LANPrefix, vm.Disks)
		}
		out := mustRunVM(ctx, t, vm, "hostname; cat /etc/hostname; getent hosts "+names[i]+"; ip -4 -o addr show dev eth1; ip -o link show dev eth1")
		for _, want := range []string{names[i] + "\n" + names[i] + "\n", lan.Addr(i) + " ", "inet " + lan.Addr(i) + "/24", lanMAC(lan.Addr(i))} {
			if !strings.Contains(out, want) {
				t.Fatalf("VM %s lacks %q:\n%s", names[i], want, out)
			}
		}
	}

	// A TCP service on B's LAN address.
	const port = 9345
	mustRunVM(ctx, t, b, listenerScript(b.LANAddr, port, "hello from "+b.Name))

	t.Run("NodeToNode", func(t *testing.T) {
		if got := connectFromVM(ctx, t, a, b.LANAddr, port); got != "hello from lan-node-b" {
			t.Fatalf("A read %q from B's listener", got)
		}
		if got := connectFromVM(ctx, t, a, b.LANAddr, 22); !strings.HasPrefix(got, "SSH-2.0-") {
			t.Fatalf("A read %q from B's sshd", got)
		}
	})
	t.Run("HostToNode", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(b.LANAddr, strconv.Itoa(port)), 10*time.Second)
		if err != nil {
			t.Fatalf("host to B's listener: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "hello from lan-node-b\n" {
			t.Fatalf("host read %q, %v from B's listener", line, err)
		}
		// A full SSH login on A's LAN address, as a provider would do.
		sc, err := ssh.Dial("tcp", net.JoinHostPort(a.LANAddr, "22"), a.ClientConfig())
		if err != nil {
			t.Fatalf("SSH to A's LAN address: %v", err)
		}
		defer sc.Close()
		if out, err := runOn(sc, "hostname"); err != nil || strings.TrimSpace(out) != "lan-node-a" {
			t.Fatalf("hostname over the LAN = %q, %v", out, err)
		}
	})
	t.Run("NodeToHost", func(t *testing.T) {
		l, err := net.Listen("tcp", net.JoinHostPort(lan.HostIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				_, _ = c.Write([]byte("hello from the host\n"))
				c.Close()
			}
		}()
		if got := connectFromVM(ctx, t, b, lan.HostIP, l.Addr().(*net.TCPAddr).Port); got != "hello from the host" {
			t.Fatalf("B read %q from the host", got)
		}
	})
	t.Run("LANLink", func(t *testing.T) {
		// With B's LAN cable pulled, A cannot reach it; Reset plugs it back.
		if err := b.SetLANLink(ctx, false); err != nil {
			t.Fatal(err)
		}
		if out, err := a.Run(ctx, tcpReadScript(b.LANAddr, port, 3)); err == nil {
			t.Fatalf("A reached B with B's LAN link down: %q", out)
		}
		if err := b.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if got := connectFromVM(ctx, t, a, b.LANAddr, port); got != "hello from lan-node-b" {
			t.Fatalf("after Reset A read %q from B", got)
		}
	})
}

// startTestLAN starts a LAN for the test and stops it at cleanup.
func startTestLAN(ctx context.Context, t *testing.T) *LAN {
	t.Helper()
	lan, err := StartLAN(ctx)
	if err != nil {
		t.Fatalf("StartLAN: %v", err)
	}
	t.Cleanup(func() {
		if err := lan.Stop(); err != nil {
			t.Errorf("LAN Stop: %v", err)
		}
		if lanExists(lan.Name) {
			t.Errorf("LAN %s exists after Stop", lan.Name)
		}
	})
	return lan
}

// createMarkedLAN creates a LAN with an arbitrary owner marker, as a dead
// or detaching process would have left it.
func createMarkedLAN(ctx context.Context, t *testing.T, marker string) *LAN {
	t.Helper()
	var lan *LAN
	err := withFileLock(ctx, lanLockPath, func() error {
		used, err := usedIPv4Nets(ctx)
		if err != nil {
			return err
		}
		x, err := pickLANSubnet(used, os.Getpid()+100)
		if err != nil {
			return err
		}
		name, err := newLANName()
		if err != nil {
			return err
		}
		lan = newLAN(name, x)
		return lan.create(ctx, marker)
	})
	if err != nil {
		if lan != nil {
			_ = StopLANByName(lan.Name)
		}
		t.Fatalf("creating a LAN marked %q: %v", marker, err)
	}
	t.Cleanup(func() { _ = StopLANByName(lan.Name) })
	return lan
}

// lanExists reports whether any part of LAN name is left.
func lanExists(name string) bool {
	_, err := os.Stat(filepath.Join(lanNetnsDir, name))
	return err == nil || hostLinkExists(name)
}

// listenerScript starts a background TCP server in the guest that greets
// every connection with one line, and waits until it listens.
func listenerScript(addr string, port int, greeting string) string {
	return `cat >/run/greeter.py <<'EOF'
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("` + addr + `", ` + strconv.Itoa(port) + `))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"` + greeting + `\n")
    c.close()
EOF
setsid python3 /run/greeter.py </dev/null >/run/greeter.log 2>&1 &
for _ in $(seq 100); do
  ss -Hltn "sport = :` + strconv.Itoa(port) + `" | grep -q . && exit 0
  sleep 0.2
done
cat /run/greeter.log; exit 1`
}

// tcpReadScript connects with bash's /dev/tcp and prints the first line
// the server sends, failing after timeout seconds.
func tcpReadScript(host string, port, timeout int) string {
	return "timeout " + strconv.Itoa(timeout) + " bash -c 'exec 3<>/dev/tcp/" + host + "/" + strconv.Itoa(port) + " && IFS= read -r line <&3 && printf %s \"$line\"'"
}

// connectFromVM reads the first line a TCP server sends to vm.
func connectFromVM(ctx context.Context, t *testing.T, vm *ZFSVM, host string, port int) string {
	t.Helper()
	out, err := vm.Run(ctx, tcpReadScript(host, port, 10))
	if err != nil {
		t.Fatalf("%s connecting to %s:%d: %v", vm.Name, host, port, err)
	}
	return strings.TrimRight(out, "\r\n")
}
