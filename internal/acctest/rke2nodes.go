package acctest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// The RKE2 test LAN: node VMs from the testbed's Debian image (the ZFS VM's,
// without data disks) on one testbed.LAN, so that they reach each other and
// the test process reaches them (kube-apiserver on <server IP>:6443, the
// supervisor on :9345).
const (
	// rke2NodeCount nodes are always booted: node 0 is the server, the
	// others agents.
	rke2NodeCount      = 3
	rke2ServerMemoryMB = 2048
	rke2AgentMemoryMB  = 1024
	// The server gets two vCPUs (etcd and kube-apiserver), agents one: on
	// two host cores, three emulated SMP guests booting at once starved a
	// vCPU into a kernel soft lockup (seen in CI).
	rke2ServerCPUs = 2
	rke2AgentCPUs  = 1
	// rke2BootAttempts and rke2VMBootTimeout bound booting one node VM: a boot
	// normally takes under two minutes here, a stuck one is retried (twice: on
	// a cold cache every package that waited for the image boots its VMs at once).
	rke2BootAttempts  = 3
	rke2VMBootTimeout = 3 * time.Minute
	// rke2BootTimeout bounds booting the nodes (the image may be built
	// first, about five minutes) and rke2ResetTimeout resetting them.
	rke2BootTimeout  = 30 * time.Minute
	rke2ResetTimeout = 5 * time.Minute
)

// RKE2Node is one VM of the RKE2 test LAN.
type RKE2Node struct {
	VM   *testbed.ZFSVM // SSH: VM.SSHHost:VM.SSHPort, root, VM.KeyPath
	Name string         // its hostname, e.g. "rke2-node-1"
	IP   string         // its LAN address (reachable from the host and the other nodes)
}

// RKE2Lab is the shared LAN + node VMs.
type RKE2Lab struct {
	LAN            *testbed.LAN
	Nodes          []RKE2Node
	KnownHostsPath string // one known_hosts file trusting every node's forwarded SSH address
	KeyPath        string // the root login key (same image key for all nodes)
}

var sharedRKE2 sharedPeer[*RKE2Lab]

// RKE2Nodes returns the package's RKE2 test LAN with at least n node VMs
// (booted on first use, in parallel; n <= 3), each reset: RKE2 uninstalled
// if present (`/usr/local/bin/rke2-uninstall.sh`), leftover
// rke2/etcd/kube-apiserver processes killed, /etc/rancher, /var/lib/rancher,
// /var/lib/kubelet and any /root/rke2-artifacts staging dir removed, rke2-*
// systemd units gone. The test holds the lab until it ends.
//
// All three nodes are booted and reset whatever n is: node 0 (the server,
// 2048 MiB, 2 vCPUs) and nodes 1 and 2 (1024 MiB, 1 vCPU), named
// rke2-node-1..3. Every node's /etc/hosts names all of them. Each node
// also has a NIC on the slirp network (eth0, 10.0.2.15 on every node, the
// default route): RKE2 must be told to use the LAN address (node-ip).
func RKE2Nodes(t *testing.T, n int) *RKE2Lab {
	t.Helper()
	if n < 1 || n > rke2NodeCount {
		t.Fatalf("RKE2Nodes(%d): the RKE2 test LAN has 1..%d nodes", n, rke2NodeCount)
	}
	lab := sharedRKE2.acquire(t, "rke2-nodes", startRKE2Lab)
	ctx, cancel := context.WithTimeout(context.Background(), rke2ResetTimeout)
	defer cancel()
	start := time.Now()
	if err := forEachNode(lab.Nodes, func(node RKE2Node) error { return lab.resetNode(ctx, node) }); err != nil {
		t.Fatalf("resetting the RKE2 nodes: %v", err)
	}
	t.Logf("RKE2 nodes reset in %s", time.Since(start).Round(100*time.Millisecond))
	return lab
}

// RKE2NodeRun runs a root shell script on node i, failing the test on error.
func RKE2NodeRun(t *testing.T, lab *RKE2Lab, i int, script string) string {
	t.Helper()
	if i < 0 || i >= len(lab.Nodes) {
		t.Fatalf("RKE2NodeRun: no node %d (the lab has %d)", i, len(lab.Nodes))
	}
	node := lab.Nodes[i]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := node.VM.Run(ctx, script)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", node.Name, script, err, out)
	}
	return strings.TrimSpace(out)
}

// RKE2Provider renders a provider "homelab" block with an ssh {} block using
// lab.KeyPath and lab.KnownHostsPath (see VMProvider in zfsvm.go for the shape).
func RKE2Provider(lab *RKE2Lab) string {
	return fmt.Sprintf(`
provider "homelab" {
  ssh {
    private_key      = file(%q)
    known_hosts_file = %q
  }
}
`, lab.KeyPath, lab.KnownHostsPath)
}

// RKE2NodeSSH renders the ssh { host, port } block of node i (its
// forwarded SSH port on 127.0.0.1). lab.KnownHostsPath also trusts each
// node's LAN address on port 22.
func RKE2NodeSSH(lab *RKE2Lab, i int) string {
	vm := lab.Nodes[i].VM
	return fmt.Sprintf(`ssh {
    host = %q
    port = %d
  }`, vm.SSHHost, vm.SSHPort)
}

// rke2NodeName is the hostname of node i (0-based).
func rke2NodeName(i int) string { return fmt.Sprintf("rke2-node-%d", i+1) }

// startRKE2Lab creates the LAN and boots the nodes in parallel.
func startRKE2Lab(dir string, logf func(string, ...any)) (*RKE2Lab, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), rke2BootTimeout)
	defer cancel()
	lan, err := testbed.StartLAN(ctx)
	if err != nil {
		return nil, nil, err
	}
	lab := &RKE2Lab{
		LAN:            lan,
		Nodes:          make([]RKE2Node, rke2NodeCount),
		KnownHostsPath: filepath.Join(dir, "known_hosts"),
		KeyPath:        filepath.Join(dir, "id_ed25519"),
	}
	stop := func() {
		for _, node := range lab.Nodes {
			if node.VM != nil {
				_ = node.VM.Stop()
			}
		}
		_ = lan.Stop()
	}
	// Build the image (if needed) once, not in three racing boots.
	if _, err := testbed.EnsureZFSImage(ctx, logf); err != nil {
		stop()
		return nil, nil, err
	}
	began := time.Now()
	errs := make([]error, rke2NodeCount)
	var wg sync.WaitGroup
	for i := range lab.Nodes {
		name, mem, cpus := rke2NodeName(i), rke2AgentMemoryMB, rke2AgentCPUs
		if i == 0 {
			mem, cpus = rke2ServerMemoryMB, rke2ServerCPUs
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var vm *testbed.ZFSVM
			var err error
			for attempt := 1; attempt <= rke2BootAttempts; attempt++ {
				bctx, cancel := context.WithTimeout(ctx, rke2VMBootTimeout)
				vm, err = testbed.StartZFSVM(bctx, filepath.Join(dir, name), testbed.ZFSVMOptions{
					NoDisks: true, Name: name, LAN: lan, LANAddr: lan.Addr(i),
					MemoryMB: mem, CPUs: cpus, Logf: logf,
				})
				cancel()
				if err == nil {
					break
				}
				logf("%s: boot attempt %d failed: %v", name, attempt, err)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", name, err)
				return
			}
			lab.Nodes[i] = RKE2Node{VM: vm, Name: name, IP: vm.LANAddr}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, nil, err
	}
	logf("%d nodes booted in parallel in %s on LAN %s (%s, host %s)",
		rke2NodeCount, time.Since(began).Round(100*time.Millisecond), lan.Name, lan.Subnet, lan.HostIP)
	if err := lab.writeClientFiles(); err != nil {
		stop()
		return nil, nil, err
	}
	if err := forEachNode(lab.Nodes, func(node RKE2Node) error {
		_, err := node.VM.Run(ctx, lab.hostsScript())
		return err
	}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("writing /etc/hosts: %w", err)
	}
	return lab, stop, nil
}

// writeClientFiles writes the root key and a known_hosts file trusting
// every node on its forwarded port and on its LAN address (port 22).
func (lab *RKE2Lab) writeClientFiles() error {
	vm0 := lab.Nodes[0].VM
	if err := os.WriteFile(lab.KeyPath, vm0.PrivateKeyPEM, 0o600); err != nil {
		return fmt.Errorf("writing the node key: %w", err)
	}
	var kh strings.Builder
	for _, node := range lab.Nodes {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(node.VM.HostKeyLine))
		if err != nil {
			return fmt.Errorf("parsing the host key of %s: %w", node.Name, err)
		}
		kh.WriteString(knownhosts.Line([]string{node.VM.SSHAddr(), node.IP}, key) + "\n")
	}
	if err := os.WriteFile(lab.KnownHostsPath, []byte(kh.String()), 0o644); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	return nil
}

// hostsScript rewrites a node's /etc/hosts to name every node by its LAN
// address.
func (lab *RKE2Lab) hostsScript() string {
	var b strings.Builder
	b.WriteString("cat >/etc/hosts <<'EOF'\n127.0.0.1 localhost\n")
	for _, node := range lab.Nodes {
		fmt.Fprintf(&b, "%s %s\n", node.IP, node.Name)
	}
	b.WriteString("::1 localhost ip6-localhost ip6-loopback\nEOF\n")
	return b.String()
}

// forEachNode runs fn for every node in parallel.
func forEachNode(nodes []RKE2Node, fn func(RKE2Node) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(node); err != nil {
				errs[i] = fmt.Errorf("%s: %w", node.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// resetNode puts the VM's links back up, rewrites its /etc/hosts and
// removes every trace of RKE2 (rke2ResetScript).
func (lab *RKE2Lab) resetNode(ctx context.Context, node RKE2Node) error {
	if err := node.VM.Reset(ctx); err != nil {
		return err
	}
	out, err := node.VM.Run(ctx, lab.hostsScript()+rke2ResetScript)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "rke2 reset ok" {
		return fmt.Errorf("unexpected reset output:\n%s", out)
	}
	return nil
}

// rke2ResetScript is the guest side of resetNode: RKE2's own
// uninstaller when there is one, then whatever is left (a simulator's or a
// failed install's processes, units, mounts and files), then a check. Every
// process costs tens of milliseconds under TCG, so processes are found by
// reading /proc with shell builtins and systemd is only asked to reload when
// unit files were removed.
const rke2ResetScript = `set -u
shopt -s nullglob
fail() { echo "rke2 reset: $*"; exit 1; }
for u in /usr/local/bin/rke2-uninstall.sh /opt/rke2/bin/rke2-uninstall.sh /usr/bin/rke2-uninstall.sh; do
  if [ -x "$u" ]; then
    timeout 180 "$u" >/run/rke2-uninstall.log 2>&1 ||
      echo "rke2 reset: $u failed, cleaning up anyway: $(tail -n 5 /run/rke2-uninstall.log)" >&2
  fi
done
# Units: loaded ones (not-found ghosts aside) are killed and stopped, unit
# files and enablement links removed.
loaded_units() {
  systemctl list-units --all --plain --no-legend 'rke2-*' | awk '$2 != "not-found" || $3 != "inactive" {print $1}'
}
unit_files() {
  echo /etc/systemd/system/rke2-* /etc/systemd/system/*.wants/rke2-* /run/systemd/system/rke2-* \
    /usr/local/lib/systemd/system/rke2-* /lib/systemd/system/rke2-* /usr/lib/systemd/system/rke2-*
}
units=$(loaded_units)
if [ -n "$units" ]; then
  systemctl kill -s KILL $units >/dev/null 2>&1
  systemctl stop $units >/dev/null 2>&1
fi
files=$(unit_files)
if [ -n "$files" ]; then
  rm -rf $files
  systemctl daemon-reload || fail "systemctl daemon-reload"
fi
[ -n "$units" ] && systemctl reset-failed $units >/dev/null 2>&1
# Processes by name as the kernel keeps it (at most 15 characters).
procs=" rke2 etcd kube-apiserver kubelet kube-proxy kube-scheduler kube-controller cloud-controlle containerd containerd-shim runc "
running() {
  local f line comm state
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    comm=${line#*(}; comm=${comm%)*}
    state=${line##*) }; state=${state%% *}
    [ "$state" = Z ] && continue
    case "$procs" in *" $comm "*) echo "${line%% *}";; esac
  done
}
pids=$(running)
if [ -n "$pids" ]; then
  kill -KILL $pids 2>/dev/null
  for _ in $(seq 50); do pids=$(running); [ -z "$pids" ] && break; sleep 0.1; done
  [ -z "$pids" ] || fail "processes remain: $(for p in $pids; do tr '\0' ' ' </proc/$p/cmdline; echo; done)"
fi
# Mounts below RKE2's and the kubelet's state (pod volumes), innermost first.
awk '$2 ~ "^/(var/lib/(rancher|kubelet)|run/k3s)(/|$)" {print $2}' /proc/mounts | sort -r |
  while read -r m; do umount -f "$m" 2>/dev/null || umount -l "$m"; done
for l in cni0 flannel.1 flannel-v6.1 flannel-wg vxlan.calico kube-ipvs0; do
  [ -e "/sys/class/net/$l" ] && ip link del "$l"
done
rm -rf /etc/rancher /var/lib/rancher /var/lib/kubelet /root/rke2-artifacts* /run/k3s /opt/rke2 \
  /usr/local/bin/rke2 /usr/local/bin/rke2-killall.sh /usr/local/bin/rke2-uninstall.sh /usr/local/share/rke2 \
  /var/log/pods /var/log/containers || fail "removing RKE2 files"
left=
for f in /etc/rancher /var/lib/rancher /var/lib/kubelet /root/rke2-artifacts* /usr/local/bin/rke2*; do
  [ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] || fail "files remain:$left"
left=$(loaded_units; unit_files)
[ -z "$left" ] || fail "units remain: $left"
echo "rke2 reset ok"
`
