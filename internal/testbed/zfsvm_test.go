package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestZFSVM boots one VM (building the image on first use) and exercises
// it: ZFS version, a pool with log and cache, JSON output, unplugging and
// replugging a disk, Reset, and cutting the network link.
func TestZFSVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	start := time.Now()
	vm, err := StartZFSVM(ctx, t.TempDir(), ZFSVMOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartZFSVM: %v", err)
	}
	t.Cleanup(func() {
		if err := vm.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if ProcessAlive(vm.PID, vm.QEMUPath) {
			t.Errorf("qemu %d still running after Stop", vm.PID)
		}
	})
	t.Logf("VM ready in %s (includes the image check or build)", time.Since(start).Round(100*time.Millisecond))

	if len(vm.Disks) != 6 || vm.Disks[0] != "/dev/disk/by-id/virtio-disk1" {
		t.Fatalf("Disks = %v, want 6 disks starting with /dev/disk/by-id/virtio-disk1", vm.Disks)
	}

	t.Run("Version", func(t *testing.T) { testZFSVMVersion(ctx, t, vm) })
	t.Run("KnownHosts", func(t *testing.T) { testZFSVMKnownHosts(t, vm) })
	t.Run("PoolUnplugReset", func(t *testing.T) { testZFSVMPoolUnplugReset(ctx, t, vm) })
	t.Run("Link", func(t *testing.T) { testZFSVMLink(ctx, t, vm) })
}

// testZFSVMVersion checks that userland and kernel module are OpenZFS 2.3.
func testZFSVMVersion(ctx context.Context, t *testing.T, vm *ZFSVM) {
	out, err := vm.Run(ctx, "zfs version")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "zfs-2.3.") || !strings.HasPrefix(lines[1], "zfs-kmod-2.3.") {
		t.Fatalf("zfs version printed %q, want zfs-2.3.x and zfs-kmod-2.3.x", out)
	}
	t.Logf("zfs version: %s", strings.Join(lines, ", "))
}

// testZFSVMKnownHosts logs in the way the provider does: with the key file
// and known_hosts file the VM describes.
func testZFSVMKnownHosts(t *testing.T, vm *ZFSVM) {
	if got, err := os.ReadFile(vm.KeyPath); err != nil || string(got) != string(vm.PrivateKeyPEM) {
		t.Fatalf("KeyPath does not hold PrivateKeyPEM (%v)", err)
	}
	kh, err := os.ReadFile(vm.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "[127.0.0.1]:" + strconv.Itoa(vm.SSHPort) + " " + vm.HostKeyLine
	if !strings.HasPrefix(string(kh), wantPrefix) {
		t.Fatalf("known_hosts = %q, want prefix %q", kh, wantPrefix)
	}
	cb, err := knownhosts.New(vm.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := vm.ClientConfig()
	cfg.HostKeyCallback = cb
	c, err := ssh.Dial("tcp", vm.SSHAddr(), cfg)
	if err != nil {
		t.Fatalf("ssh with known_hosts: %v", err)
	}
	defer c.Close()
	if out, err := runOn(c, "hostname"); err != nil || strings.TrimSpace(out) != "zfs-lab" {
		t.Fatalf("hostname = %q, %v; want zfs-lab", out, err)
	}
}

// testZFSVMPoolUnplugReset creates a mirror pool with log and cache,
// degrades it by unplugging a disk, plugs it back and resets the VM.
func testZFSVMPoolUnplugReset(ctx context.Context, t *testing.T, vm *ZFSVM) {
	d := vm.Disks
	mustRunVM(ctx, t, vm, "zpool create -f -o ashift=12 tank mirror "+d[0]+" "+d[1]+" log "+d[2]+" cache "+d[3])
	stdout, _, err := vm.Output(ctx, "zpool status -j tank")
	if err != nil {
		t.Fatal(err)
	}
	if got := poolState(t, stdout, "tank"); got != "ONLINE" {
		t.Fatalf("new pool state %q, want ONLINE", got)
	}

	if err := vm.UnplugDisk(ctx, 2); err != nil {
		t.Fatalf("UnplugDisk: %v", err)
	}
	if out, err := vm.Run(ctx, "test -e "+d[1]); err == nil {
		t.Fatalf("%s still exists after UnplugDisk: %s", d[1], out)
	}
	waitPoolHealth(ctx, t, vm, "tank", "DEGRADED")

	if err := vm.ReplugDisk(ctx, 2); err != nil {
		t.Fatalf("ReplugDisk: %v", err)
	}
	mustRunVM(ctx, t, vm, "test -b "+d[1])

	// Unplug again and leave it to Reset to plug it back.
	if err := vm.UnplugDisk(ctx, 2); err != nil {
		t.Fatalf("UnplugDisk (again): %v", err)
	}
	start := time.Now()
	if err := vm.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	t.Logf("Reset took %s", time.Since(start).Round(10*time.Millisecond))
	if out := mustRunVM(ctx, t, vm, "zpool list -H"); strings.TrimSpace(out) != "" {
		t.Fatalf("pools left after Reset:\n%s", out)
	}
	for _, disk := range d {
		// blkid -p exits 2 when it finds no signature at all.
		mustRunVM(ctx, t, vm, "test -b "+disk+" && { blkid -p "+disk+"; test $? -eq 2; } && test $(lsblk -nr "+disk+" | wc -l) -eq 1")
	}
	if out := mustRunVM(ctx, t, vm, "zpool import 2>&1 || true"); !strings.Contains(out, "no pools available") {
		t.Fatalf("zpool import after Reset found pools:\n%s", out)
	}
}

// testZFSVMLink cuts the NIC's link and restores it.
func testZFSVMLink(ctx context.Context, t *testing.T, vm *ZFSVM) {
	if err := vm.SetLink(ctx, false); err != nil {
		t.Fatalf("SetLink(false): %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	c, err := vm.DialSSH(dctx)
	cancel()
	if err == nil {
		c.Close()
		t.Fatal("SSH login succeeded with the link down")
	}
	if err := vm.SetLink(ctx, true); err != nil {
		t.Fatalf("SetLink(true): %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := vm.Run(rctx, "echo back"); err != nil || strings.TrimSpace(out) != "back" {
		t.Fatalf("after SetLink(true): %q, %v", out, err)
	}
	if err := vm.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
}

// mustRunVM runs script in the VM and fails the test on error.
func mustRunVM(ctx context.Context, t *testing.T, vm *ZFSVM, script string) string {
	t.Helper()
	out, err := vm.Run(ctx, script)
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return out
}

// poolState extracts pools.<name>.state from `zpool status -j`.
func poolState(t *testing.T, statusJSON, name string) string {
	t.Helper()
	var st struct {
		Pools map[string]struct {
			State string `json:"state"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		t.Fatalf("zpool status -j is not JSON: %v\n%s", err, statusJSON)
	}
	p, ok := st.Pools[name]
	if !ok {
		t.Fatalf("zpool status -j has no pool %q:\n%s", name, statusJSON)
	}
	return p.State
}

// waitPoolHealth polls until the pool's health is want, writing to the pool
// meanwhile so that ZFS notices a missing disk through failed I/O too.
func waitPoolHealth(ctx context.Context, t *testing.T, vm *ZFSVM, pool, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		out, err := vm.Run(ctx, "zpool list -H -o health "+pool)
		if err != nil {
			t.Fatal(err)
		}
		if got = strings.TrimSpace(out); got == want {
			return
		}
		mustRunVM(ctx, t, vm, "dd if=/dev/urandom of=/"+pool+"/poke bs=64k count=16 status=none conv=fsync; zpool sync "+pool)
		time.Sleep(time.Second)
	}
	status, _ := vm.Run(ctx, "zpool status "+pool)
	t.Fatalf("pool %s health %q, want %q\n%s", pool, got, want, status)
}

// runOn runs cmd in a new session of c and returns its output.
func runOn(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1G": 1 << 30, "512M": 512 << 20, "64k": 64 << 10, "2GiB": 2 << 30, "1T": 1 << 40, "4096": 4096, "3GB": 3 << 30,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "1X", "1.5G", "0"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestDebianMirrorParsing(t *testing.T) {
	deb822 := `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
`
	if got := mirrorFromDeb822(deb822); got != "http://mirror.example/debian" {
		t.Errorf("mirrorFromDeb822 = %q", got)
	}
	list := `# comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/x.gpg] https://mirror.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
`
	if got := mirrorFromSourcesList(list); got != "https://mirror.example/debian" {
		t.Errorf("mirrorFromSourcesList = %q", got)
	}
	if got := mirrorFromSourcesList("deb cdrom:[Debian]/ bookworm main\n"); got != "" {
		t.Errorf("mirrorFromSourcesList accepted a cdrom: %q", got)
	}
	t.Setenv(DebianMirrorEnv, "http://override.example/debian")
	if got, err := DebianMirror(); err != nil || got != "http://override.example/debian" {
		t.Errorf("DebianMirror with %s = %q, %v", DebianMirrorEnv, got, err)
	}
}

func TestZFSImageHash(t *testing.T) {
	h := zfsImageHash()
	if len(h) != 12 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("zfsImageHash = %q, want 12 hex digits", h)
	}
	if !strings.Contains(string(zfsImageRecipe), "zfs-dkms") {
		t.Fatal("embedded recipe does not install zfs-dkms")
	}
}

// TestQMPClient runs the client against a scripted fake QMP server that
// interleaves events with responses.
func TestQMPClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serverErr := make(chan error, 1)
	go func() { serverErr <- fakeQMPServer(l) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := dialQMP(ctx, sock)
	if err != nil {
		t.Fatalf("dialQMP: %v", err)
	}
	defer q.Close()
	ret, err := q.Execute(ctx, "device_del", map[string]any{"id": "vd2"})
	if err != nil || string(ret) != "{}" {
		t.Fatalf("device_del = %s, %v", ret, err)
	}
	data, err := q.WaitEvent(ctx, "DEVICE_DELETED", func(d json.RawMessage) bool {
		var ev struct{ Device string }
		return json.Unmarshal(d, &ev) == nil && ev.Device == "vd2"
	})
	if err != nil {
		t.Fatalf("WaitEvent: %v", err)
	}
	if !strings.Contains(string(data), "vd2") {
		t.Fatalf("event data %s", data)
	}
	_, err = q.Execute(ctx, "device_del", map[string]any{"id": "nope"})
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
		t.Fatalf("device_del nope: %v, want a DeviceNotFound QMPError", err)
	}
	// A command that never gets a response ends with ctx.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := q.Execute(short, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging command: %v, want deadline exceeded", err)
	}
	q.Close()
	if err := <-serverErr; err != nil {
		t.Fatalf("fake server: %v", err)
	}
}

// fakeQMPServer serves one client: greeting, capabilities, a device_del
// whose event arrives before its response, an error response and a
// command it never answers.
func fakeQMPServer(l net.Listener) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	send := func(s string) error { _, err := c.Write([]byte(s + "\n")); return err }
	recv := func() (map[string]any, error) {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(line, &m)
	}
	if err := send(`{"QMP": {"version": {}, "capabilities": []}}`); err != nil {
		return err
	}
	for step := 0; ; step++ {
		m, err := recv()
		if err != nil {
			return nil // client closed
		}
		id, _ := json.Marshal(m["id"])
		var replies []string
		switch {
		case m["execute"] == "qmp_capabilities":
			replies = []string{`{"return": {}, "id": ` + string(id) + `}`}
		case m["execute"] == "device_del" && strings.Contains(toJSON(m["arguments"]), "vd2"):
			replies = []string{
				`{"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/vd2/virtio-backend"}}`,
				`{"event": "DEVICE_DELETED", "data": {"device": "vd2", "path": "/machine/peripheral/vd2"}}`,
				`{"return": {}, "id": ` + string(id) + `}`,
			}
		case m["execute"] == "device_del":
			replies = []string{`{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}, "id": ` + string(id) + `}`}
		}
		for _, s := range replies {
			if err := send(s); err != nil {
				return err
			}
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
