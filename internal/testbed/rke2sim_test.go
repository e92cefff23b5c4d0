package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// rke2TestVersion is the RKE2 release the tests build the simulator as.
const rke2TestVersion = "v1.31.4+rke2r1"

// rke2TestTimeout covers a cold kube-apiserver build (about 3.5 minutes),
// the simulator build and the test itself.
const rke2TestTimeout = 15 * time.Minute

// rke2Artifacts builds (or finds cached) the simulator artifacts.
func rke2Artifacts(ctx context.Context, t *testing.T) string {
	t.Helper()
	start := time.Now()
	dir, err := RKE2SimArtifacts(ctx, rke2TestVersion, t.Logf)
	if err != nil {
		t.Fatalf("RKE2SimArtifacts: %v", err)
	}
	t.Logf("RKE2SimArtifacts took %s", time.Since(start).Round(time.Millisecond))
	return dir
}

// readTarGz returns the headers and the contents of the regular files of a
// tar.gz.
func readTarGz(t *testing.T, path string) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(gz)
	headers, contents := map[string]*tar.Header{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers, contents
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		headers[h.Name] = h
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, h.Name, err)
			}
			contents[h.Name] = data
		}
	}
}

func TestRKE2SimArtifacts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), rke2TestTimeout)
	defer cancel()
	dir := rke2Artifacts(ctx, t)

	start := time.Now()
	again, err := RKE2SimArtifacts(ctx, rke2TestVersion, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cache hit took %s", time.Since(start).Round(time.Millisecond))
	if again != dir {
		t.Errorf("second call returned %s, want the cached %s", again, dir)
	}
	if _, err := RKE2SimArtifacts(ctx, "1.31.4 rke2", nil); err == nil {
		t.Error("an invalid version was accepted")
	}

	t.Run("Checksums", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(dir, RKE2ChecksumsName))
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			sum, name, ok := strings.Cut(line, "  ")
			if !ok || len(sum) != 64 {
				t.Fatalf("malformed checksum line %q", line)
			}
			listed[name] = sum
		}
		for _, name := range []string{RKE2TarballName, RKE2ImagesName} {
			content, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(content)
			if got := hex.EncodeToString(sum[:]); listed[name] != got {
				t.Errorf("%s: listed sha256 %q, file has %s", name, listed[name], got)
			}
		}
		if len(listed) != 2 {
			t.Errorf("checksum file lists %d files, want 2:\n%s", len(listed), data)
		}
		// What the provider runs on the node.
		cmd := exec.Command("sha256sum", "-c", "--ignore-missing", RKE2ChecksumsName)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	})

	t.Run("Tarball", func(t *testing.T) {
		headers, contents := readTarGz(t, filepath.Join(dir, RKE2TarballName))
		want := map[string]int64{
			"bin/rke2":                               0o755,
			"bin/rke2-killall.sh":                    0o755,
			"bin/rke2-uninstall.sh":                  0o755,
			"lib/systemd/system/rke2-server.service": 0o644,
			"lib/systemd/system/rke2-agent.service":  0o644,
			"share/rke2/SIMULATOR.txt":               0o644,
		}
		for name, h := range headers {
			switch {
			case h.Typeflag == tar.TypeDir:
			case h.Typeflag == tar.TypeReg:
				mode, ok := want[name]
				if !ok {
					t.Errorf("unexpected member %s", name)
				} else if h.Mode != mode {
					t.Errorf("%s: mode %o, want %o", name, h.Mode, mode)
				}
				if h.Uid != 0 || h.Gid != 0 {
					t.Errorf("%s: owner %d:%d, want root", name, h.Uid, h.Gid)
				}
			default:
				t.Errorf("%s: unexpected type %c", name, h.Typeflag)
			}
		}
		for name := range want {
			if _, ok := headers[name]; !ok {
				t.Errorf("missing member %s", name)
			}
		}
		for _, role := range []string{"server", "agent"} {
			unit := string(contents["lib/systemd/system/rke2-"+role+".service"])
			for _, line := range []string{
				"Type=notify", "Restart=always", "RestartSec=5s", "KillMode=mixed",
				"TimeoutStartSec=15min", "EnvironmentFile=-/etc/default/%N",
				"ExecStart=/usr/local/bin/rke2 " + role, "WantedBy=multi-user.target",
			} {
				if !slices.Contains(strings.Split(unit, "\n"), line) {
					t.Errorf("rke2-%s.service lacks the line %q:\n%s", role, line, unit)
				}
			}
		}
		if !strings.Contains(string(contents["share/rke2/SIMULATOR.txt"]), "SIMULATOR") {
			t.Error("SIMULATOR.txt does not say it is a simulator")
		}
		for _, script := range []string{"bin/rke2-killall.sh", "bin/rke2-uninstall.sh"} {
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = bytes.NewReader(contents[script])
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: sh -n: %v\n%s", script, err, out)
			}
		}

		bin := filepath.Join(t.TempDir(), "rke2")
		if err := os.WriteFile(bin, contents["bin/rke2"], 0o755); err != nil {
			t.Fatal(err)
		}
		for _, arg := range []string{"--version", "-v", "version"} {
			out, err := exec.Command(bin, arg).Output()
			if err != nil {
				t.Fatalf("rke2 %s: %v", arg, err)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != 2 || lines[0] != "rke2 version "+rke2TestVersion+" (simulator)" || !strings.HasPrefix(lines[1], "go version go1.") {
				t.Errorf("rke2 %s printed %q", arg, out)
			}
			if f := strings.Fields(lines[0]); len(f) < 3 || f[2] != rke2TestVersion {
				t.Errorf("third field of %q is not the version", lines[0])
			}
		}
	})

	t.Run("Images", func(t *testing.T) {
		headers, _ := readTarGz(t, filepath.Join(dir, RKE2ImagesName))
		apiserver, err := EnsureKubeAPIServer(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, src := range map[string]string{"etcd": EtcdPath, "kube-apiserver": apiserver} {
			h, ok := headers[name]
			if !ok {
				t.Errorf("images tarball lacks %s", name)
				continue
			}
			fi, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			if h.Size != fi.Size() || h.Mode != 0o755 {
				t.Errorf("%s: size %d mode %o, want %d (as %s) and 0755", name, h.Size, h.Mode, fi.Size(), src)
			}
		}
	})
}

func TestRKE2SimCacheKey(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	a, err := rke2SimCacheKey(root, "v1.31.4+rke2r1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rke2SimCacheKey(root, "v1.31.4+rke2r1")
	c, _ := rke2SimCacheKey(root, "v1.32.0+rke2r1")
	if a != b || a == c {
		t.Errorf("cache keys: same version %s / %s, other version %s", a, b, c)
	}
}

// rke2LogBuffer is a bytes.Buffer safe for a process's output and readers.
type rke2LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *rke2LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *rke2LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rke2Proc is a running `rke2 server|agent` with its own RKE2_SIM_ROOT and
// notify socket.
type rke2Proc struct {
	name  string
	root  string
	cmd   *exec.Cmd
	log   *rke2LogBuffer
	done  chan struct{}
	ready chan struct{}
	start time.Time
}

// installRKE2 extracts the tarball into root/usr/local with tar, as the
// provider does on a node, and copies the images when asked.
func installRKE2(t *testing.T, artifacts, root string, images bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "usr/local"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "xzf", filepath.Join(artifacts, RKE2TarballName), "-C", filepath.Join(root, "usr/local")).CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", RKE2TarballName, err, out)
	}
	if !images {
		return
	}
	imagesDir := filepath.Join(root, "var/lib/rancher/rke2/agent/images")
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(artifacts, RKE2ImagesName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imagesDir, RKE2ImagesName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeRKE2Config writes root/etc/rancher/rke2/<name>.
func writeRKE2Config(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, "etc/rancher/rke2", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startRKE2 runs root/usr/local/bin/rke2 args... with RKE2_SIM_ROOT=root
// and a notify socket; it is stopped (SIGTERM, then SIGKILL) at cleanup.
func startRKE2(t *testing.T, name, root string, args ...string) *rke2Proc {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "rke2n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sockPath := filepath.Join(sockDir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	p := &rke2Proc{name: name, root: root, log: &rke2LogBuffer{}, done: make(chan struct{}), ready: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		signalled := false
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			if !signalled && slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
				signalled = true
				close(p.ready)
			}
		}
	}()
	p.cmd = exec.Command(filepath.Join(root, "usr/local/bin/rke2"), args...)
	p.cmd.Env = append(os.Environ(), "RKE2_SIM_ROOT="+root, "NOTIFY_SOCKET="+sockPath)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		sock.Close()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		sock.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, tail([]byte(p.log.String()), 6000))
		}
	})
	return p
}

// waitReady waits for READY=1 and returns how long it took since start.
func (p *rke2Proc) waitReady(ctx context.Context, t *testing.T) time.Duration {
	t.Helper()
	select {
	case <-p.ready:
		return time.Since(p.start)
	case <-p.done:
		t.Fatalf("%s exited (%v) before READY=1; log:\n%s", p.name, p.cmd.ProcessState, tail([]byte(p.log.String()), 6000))
	case <-ctx.Done():
		t.Fatalf("%s: no READY=1: %v; log:\n%s", p.name, ctx.Err(), tail([]byte(p.log.String()), 6000))
	}
	return 0
}

// stop sends SIGTERM and returns the exit code (SIGKILL after a grace
// period, then -1).
func (p *rke2Proc) stop(t *testing.T) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(45 * time.Second):
		t.Errorf("%s did not exit within 45s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1
	}
}

// eventually polls check until it returns "" (success) or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, check func() string) {
	t.Helper()
	var last string
	for {
		if last = check(); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v; last: %s", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var (
	nodesResource = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	cmResource    = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// nodeView is what the tests check of a Node.
type nodeView struct {
	labels                map[string]string
	taints                []string // key=value:Effect, sorted
	kubeletVersion        string
	ready, reason, msg    string
	internalIP, hostnameA string
}

func getNode(ctx context.Context, dyn dynamic.Interface, name string) (*nodeView, error) {
	u, err := dyn.Resource(nodesResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	v := &nodeView{labels: u.GetLabels()}
	taints, _, _ := unstructured.NestedSlice(u.Object, "spec", "taints")
	for _, tt := range taints {
		m := tt.(map[string]any)
		s := fmt.Sprint(m["key"])
		if val, ok := m["value"]; ok {
			s += "=" + fmt.Sprint(val)
		}
		v.taints = append(v.taints, s+":"+fmt.Sprint(m["effect"]))
	}
	sort.Strings(v.taints)
	v.kubeletVersion, _, _ = unstructured.NestedString(u.Object, "status", "nodeInfo", "kubeletVersion")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == "Ready" {
			v.ready, v.reason, v.msg = fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
		}
	}
	addrs, _, _ := unstructured.NestedSlice(u.Object, "status", "addresses")
	for _, a := range addrs {
		m := a.(map[string]any)
		switch m["type"] {
		case "InternalIP":
			v.internalIP = fmt.Sprint(m["address"])
		case "Hostname":
			v.hostnameA = fmt.Sprint(m["address"])
		}
	}
	return v, nil
}

// checkLabels reports labels of want missing or different in got.
func checkLabels(got map[string]string, want map[string]string) string {
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			return fmt.Sprintf("label %s=%q, want %q (labels %v)", k, gv, v, got)
		}
	}
	return ""
}

const rke2TestManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: sim-test
data:
  value: %s
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.sim.example.com
spec:
  group: sim.example.com
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
---
apiVersion: sim.example.com/v1
kind: Gadget
metadata:
  name: g1
  namespace: kube-system
spec:
  size: 3
`

// TestRKE2SimCluster installs the artifacts into RKE2_SIM_ROOTs and runs a
// server and agents on loopback addresses. It does not skip: a missing
// etcd or a failed build is a test failure.
func TestRKE2SimCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), rke2TestTimeout)
	defer cancel()
	artifacts := rke2Artifacts(ctx, t)
	serverIP, err := allocLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	agentIP, err := allocLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "sim-secret-4711"

	srvRoot := t.TempDir()
	installRKE2(t, artifacts, srvRoot, true)
	writeRKE2Config(t, srvRoot, "config.yaml", fmt.Sprintf(`bind-address: %[1]s
node-ip: %[1]s
node-name: sim-server-1
token: %[2]s
tls-san:
  - rke2.sim.example
node-label:
  - homelab.example/tier=control
node-taint:
  - CriticalAddonsOnly=true:NoExecute
write-kubeconfig-mode: "0644"
service-cidr: 10.55.0.0/16
no-such-flag: 1
`, serverIP, secret))
	writeRKE2Config(t, srvRoot, "config.yaml.d/50-extra.yaml", "node-label+:\n  - extra=yes\n")

	srv := startRKE2(t, "server", srvRoot, "server")
	t.Logf("server start to READY=1 (node Ready): %s", srv.waitReady(ctx, t).Round(time.Millisecond))

	// rke2.yaml as RKE2 writes it, then pointed at the loopback address.
	kubeconfigPath := filepath.Join(srvRoot, "etc/rancher/rke2/rke2.yaml")
	if fi, err := os.Stat(kubeconfigPath); err != nil {
		t.Fatalf("rke2.yaml after READY=1: %v", err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("rke2.yaml has mode %v, want 0644 (write-kubeconfig-mode)", fi.Mode().Perm())
	}
	kc, err := clientcmd.LoadFromFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cluster := kc.Clusters["default"]
	if kc.CurrentContext != "default" || cluster == nil || kc.AuthInfos["default"] == nil || cluster.Server != "https://127.0.0.1:6443" {
		t.Fatalf("rke2.yaml: current-context %q, clusters %v; want everything named default and server https://127.0.0.1:6443", kc.CurrentContext, kc.Clusters)
	}
	if block, _ := pemDecodeCert(kc.AuthInfos["default"].ClientCertificateData); block == nil ||
		block.Subject.CommonName != "system:admin" || !slices.Contains(block.Subject.Organization, "system:masters") {
		t.Errorf("rke2.yaml client certificate is not system:admin in system:masters")
	}
	cluster.Server = "https://" + serverIP + ":6443"
	restCfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Token", func(t *testing.T) {
		token, err := os.ReadFile(filepath.Join(srvRoot, "var/lib/rancher/rke2/server/token"))
		if err != nil {
			t.Fatal(err)
		}
		nodeToken, err := os.ReadFile(filepath.Join(srvRoot, "var/lib/rancher/rke2/server/node-token"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(cluster.CertificateAuthorityData)
		want := "K10" + hex.EncodeToString(sum[:]) + "::server:" + secret
		if strings.TrimSpace(string(token)) != want || string(nodeToken) != string(token) {
			t.Errorf("token %q, node-token %q; want %q", token, nodeToken, want)
		}
	})

	t.Run("Log", func(t *testing.T) {
		log := srv.log.String()
		if !strings.Contains(log, "Unknown flag --no-such-flag found in config.yaml, skipping") {
			t.Errorf("no warning about the unknown key in:\n%s", log)
		}
		if strings.Contains(log, secret) {
			t.Error("the log shows the token secret")
		}
	})

	t.Run("ServerNode", func(t *testing.T) {
		n, err := getNode(ctx, dyn, "sim-server-1")
		if err != nil {
			t.Fatal(err)
		}
		if msg := checkLabels(n.labels, map[string]string{
			"homelab.example/tier": "control", "extra": "yes",
			"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true",
			"node-role.kubernetes.io/master": "true",
		}); msg != "" {
			t.Error(msg)
		}
		if n.ready != "True" || n.kubeletVersion != rke2TestVersion || n.internalIP != serverIP || n.hostnameA != "sim-server-1" {
			t.Errorf("node: Ready %s, kubeletVersion %q, InternalIP %q, Hostname %q; want True, %s, %s, sim-server-1",
				n.ready, n.kubeletVersion, n.internalIP, n.hostnameA, rke2TestVersion, serverIP)
		}
		if want := []string{"CriticalAddonsOnly=true:NoExecute"}; !slices.Equal(n.taints, want) {
			t.Errorf("taints %v, want %v", n.taints, want)
		}
	})

	t.Run("ClusterBasics", func(t *testing.T) {
		ns, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, "kube-system", metav1.GetOptions{})
		if err != nil || ns.GetUID() == "" {
			t.Errorf("kube-system namespace: %v", err)
		}
		svc, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != "10.55.0.1" {
			t.Errorf("kubernetes service IP %q, want 10.55.0.1 (service-cidr 10.55.0.0/16)", ip)
		}
		conn, err := tls.Dial("tcp", serverIP+":6443", &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // inspecting the certificate
		if err != nil {
			t.Fatal(err)
		}
		cert := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		for _, name := range []string{"rke2.sim.example", "kubernetes.default.svc", "localhost", "sim-server-1"} {
			if cert.VerifyHostname(name) != nil {
				t.Errorf("serving certificate lacks SAN %s", name)
			}
		}
		for _, ip := range []string{serverIP, "127.0.0.1", "10.55.0.1"} {
			if cert.VerifyHostname(ip) != nil {
				t.Errorf("serving certificate lacks IP SAN %s", ip)
			}
		}
	})

	t.Run("Manifests", func(t *testing.T) {
		manifest := filepath.Join(srvRoot, "var/lib/rancher/rke2/server/manifests/sim-test.yaml")
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(rke2TestManifest, "one")), 0o644); err != nil {
			t.Fatal(err)
		}
		gadgets := schema.GroupVersionResource{Group: "sim.example.com", Version: "v1", Resource: "gadgets"}
		start := time.Now()
		eventually(ctx, t, "manifest applied", func() string {
			cm, err := dyn.Resource(cmResource).Namespace("default").Get(ctx, "sim-test", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if v, _, _ := unstructured.NestedString(cm.Object, "data", "value"); v != "one" {
				return "configmap value " + v
			}
			if _, err := dyn.Resource(gadgets).Namespace("kube-system").Get(ctx, "g1", metav1.GetOptions{}); err != nil {
				return err.Error()
			}
			managers := []string{}
			for _, mf := range cm.GetManagedFields() {
				managers = append(managers, mf.Manager)
			}
			if !slices.Contains(managers, "rke2-simulator") {
				return fmt.Sprintf("field managers %v", managers)
			}
			return ""
		})
		t.Logf("manifest with a CRD applied in %s", time.Since(start).Round(time.Millisecond))
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(rke2TestManifest, "two")), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "changed manifest re-applied", func() string {
			cm, err := dyn.Resource(cmResource).Namespace("default").Get(ctx, "sim-test", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if v, _, _ := unstructured.NestedString(cm.Object, "data", "value"); v != "two" {
				return "configmap value " + v
			}
			return ""
		})
	})

	nodeToken, err := os.ReadFile(filepath.Join(srvRoot, "var/lib/rancher/rke2/server/node-token"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Agent", func(t *testing.T) {
		root := t.TempDir()
		installRKE2(t, artifacts, root, false)
		writeRKE2Config(t, root, "config.yaml", fmt.Sprintf(`server: https://%s:9345
token: %s
node-name: sim-agent-1
node-ip: %s
node-label: [homelab.example/tier=worker]
node-taint: ["gpu=true:NoSchedule"]
`, serverIP, strings.TrimSpace(string(nodeToken)), agentIP))
		agent := startRKE2(t, "agent", root, "agent")
		t.Logf("agent start to READY=1: %s", agent.waitReady(ctx, t).Round(time.Millisecond))
		eventually(ctx, t, "agent node Ready with its labels and taints", func() string {
			n, err := getNode(ctx, dyn, "sim-agent-1")
			if err != nil {
				return err.Error()
			}
			if msg := checkLabels(n.labels, map[string]string{"homelab.example/tier": "worker"}); msg != "" {
				return msg
			}
			for k := range n.labels {
				if strings.HasPrefix(k, "node-role.kubernetes.io/") {
					return "agent has role label " + k
				}
			}
			if n.ready != "True" || n.kubeletVersion != rke2TestVersion || n.internalIP != agentIP {
				return fmt.Sprintf("Ready %s, kubeletVersion %q, InternalIP %q", n.ready, n.kubeletVersion, n.internalIP)
			}
			if want := []string{"gpu=true:NoSchedule"}; !slices.Equal(n.taints, want) {
				return fmt.Sprintf("taints %v, want %v", n.taints, want)
			}
			return ""
		})
		if code := agent.stop(t); code != 0 {
			t.Errorf("agent exited %d after SIGTERM, want 0", code)
		}
		n, err := getNode(ctx, dyn, "sim-agent-1")
		if err != nil {
			t.Fatal(err)
		}
		if n.ready != "False" || n.reason != "KubeletNotReady" || n.msg != "rke2 simulator stopped" {
			t.Errorf("after SIGTERM: Ready %s (%s: %s), want False (KubeletNotReady: rke2 simulator stopped)", n.ready, n.reason, n.msg)
		}
	})

	t.Run("WrongToken", func(t *testing.T) {
		hash := strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(nodeToken)), "::", 2)[0], "K10")
		otherHash := strings.Repeat("0", 64)
		for name, token := range map[string]string{
			"WrongSecret": "K10" + hash + "::server:not-the-secret",
			"PlainWrong":  "not-the-secret",
			"OtherCA":     "K10" + otherHash + "::server:" + secret,
		} {
			t.Run(name, func(t *testing.T) {
				root := t.TempDir()
				installRKE2(t, artifacts, root, false)
				writeRKE2Config(t, root, "config.yaml", fmt.Sprintf("server: https://%s:9345\ntoken: %s\nnode-name: sim-bad\n", serverIP, token))
				p := startRKE2(t, "bad agent", root, "agent")
				select {
				case <-p.done:
				case <-ctx.Done():
					t.Fatal("agent with a wrong token did not exit")
				}
				if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(p.log.String(), "token is not valid") {
					t.Errorf("exit code %d, log:\n%s\nwant non-zero and \"token is not valid\"", code, p.log.String())
				}
			})
		}
	})

	t.Run("JoiningServer", func(t *testing.T) {
		ip, err := allocLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		installRKE2(t, artifacts, root, true)
		writeRKE2Config(t, root, "config.yaml", fmt.Sprintf("server: https://%[1]s:9345\ntoken: %[2]s\nnode-name: sim-server-2\nbind-address: %[3]s\nnode-ip: %[3]s\n", serverIP, secret, ip))
		second := startRKE2(t, "joining server", root, "server")
		t.Logf("joining server start to READY=1: %s", second.waitReady(ctx, t).Round(time.Millisecond))

		token, err := os.ReadFile(filepath.Join(root, "var/lib/rancher/rke2/server/token"))
		if err != nil || string(token) != string(nodeToken) {
			t.Errorf("joining server token %q (%v), want the cluster's %q", token, err, nodeToken)
		}
		// Its own kube-apiserver serves the same cluster.
		kc2, err := clientcmd.LoadFromFile(filepath.Join(root, "etc/rancher/rke2/rke2.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		kc2.Clusters["default"].Server = "https://" + ip + ":6443"
		cfg2, err := clientcmd.NewDefaultClientConfig(*kc2, nil).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		dyn2, err := dynamic.NewForConfig(cfg2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []dynamic.Interface{dyn, dyn2} {
			n, err := getNode(ctx, d, "sim-server-2")
			if err != nil {
				t.Fatal(err)
			}
			if n.ready != "True" || n.labels["node-role.kubernetes.io/control-plane"] != "true" || n.kubeletVersion != rke2TestVersion {
				t.Errorf("joining server node: Ready %s, labels %v, kubeletVersion %q", n.ready, n.labels, n.kubeletVersion)
			}
		}
		if _, err := getNode(ctx, dyn2, "sim-server-1"); err != nil {
			t.Errorf("the joining server's API does not see the first server's node: %v", err)
		}
		if code := second.stop(t); code != 0 {
			t.Errorf("joining server exited %d after SIGTERM, want 0", code)
		}
		if n, err := getNode(ctx, dyn, "sim-server-2"); err != nil || n.ready != "False" {
			t.Errorf("joining server node after SIGTERM: %+v, %v; want Ready False", n, err)
		}
	})

	t.Run("RestartAndKillall", func(t *testing.T) {
		children := descendants(srv.cmd.Process.Pid)
		if len(children) < 2 {
			t.Errorf("server has %d child processes, want etcd and kube-apiserver", len(children))
		}
		stopStart := time.Now()
		if code := srv.stop(t); code != 0 {
			t.Errorf("server exited %d after SIGTERM, want 0", code)
		}
		t.Logf("server stopped %s after SIGTERM", time.Since(stopStart).Round(time.Millisecond))
		for _, pid := range children {
			if ProcessAlive(pid, "") {
				t.Errorf("child %d of the server survived it", pid)
			}
		}

		again := startRKE2(t, "server (restarted)", srvRoot, "server")
		t.Logf("server restart to READY=1: %s", again.waitReady(ctx, t).Round(time.Millisecond))
		token, err := os.ReadFile(filepath.Join(srvRoot, "var/lib/rancher/rke2/server/node-token"))
		if err != nil || string(token) != string(nodeToken) {
			t.Errorf("node-token changed across a restart: %q -> %q (%v)", nodeToken, token, err)
		}
		n, err := getNode(ctx, dyn, "sim-server-1")
		if err != nil || n.ready != "True" {
			t.Errorf("server node after restart: %+v, %v", n, err)
		}

		children = descendants(again.cmd.Process.Pid)
		killStart := time.Now()
		killall := exec.Command(filepath.Join(srvRoot, "usr/local/bin/rke2-killall.sh"))
		killall.Env = append(os.Environ(), "RKE2_SIM_ROOT="+srvRoot)
		if out, err := killall.CombinedOutput(); err != nil {
			t.Fatalf("rke2-killall.sh: %v\n%s", err, out)
		}
		select {
		case <-again.done:
		case <-time.After(30 * time.Second):
			t.Error("rke2 server still running after rke2-killall.sh")
		}
		t.Logf("rke2-killall.sh took %s", time.Since(killStart).Round(time.Millisecond))
		for _, pid := range children {
			if ProcessAlive(pid, "") {
				t.Errorf("process %d survived rke2-killall.sh", pid)
			}
		}

		for i := 1; i <= 2; i++ {
			un := exec.Command("sh", filepath.Join(srvRoot, "usr/local/bin/rke2-uninstall.sh"))
			if i == 2 {
				// The first run removed the script; run the same text again.
				un = exec.Command("sh", "-s")
				un.Stdin = strings.NewReader(rke2UninstallScript)
			}
			un.Env = append(os.Environ(), "RKE2_SIM_ROOT="+srvRoot)
			if out, err := un.CombinedOutput(); err != nil {
				t.Fatalf("rke2-uninstall.sh run %d: %v\n%s", i, err, out)
			}
		}
		for _, p := range []string{"usr/local/bin/rke2", "usr/local/bin/rke2-killall.sh", "usr/local/bin/rke2-uninstall.sh",
			"usr/local/lib/systemd/system/rke2-server.service", "usr/local/lib/systemd/system/rke2-agent.service",
			"etc/rancher/rke2", "var/lib/rancher/rke2"} {
			if _, err := os.Stat(filepath.Join(srvRoot, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists after uninstall (%v)", p, err)
			}
		}
	})
}

// pemDecodeCert parses the first certificate of a PEM.
func pemDecodeCert(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func TestRKE2SimPrune(t *testing.T) {
	cache := t.TempDir()
	old := time.Now().Add(-2 * rke2SimPruneAge)
	dirs := map[string]bool{ // name -> must survive
		"rke2sim-v1.31.4+rke2r1-aaaaaaaaaaaa":     true,  // kept: the current build
		"rke2sim-v1.31.4+rke2r1-bbbbbbbbbbbb":     false, // stale
		"rke2sim-v1.31.4+rke2r1-cccccccccccc":     true,  // too young
		"rke2sim-v1.31.4+rke2r1-rc1-dddddddddddd": true,  // another version
		"rke2sim-v1.31.5+rke2r1-eeeeeeeeeeee":     true,  // another version
	}
	for name := range dirs {
		d := filepath.Join(cache, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(name, "cccc") {
			if err := os.Chtimes(d, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	pruneRKE2SimArtifacts(context.Background(), cache, "v1.31.4+rke2r1", filepath.Join(cache, "rke2sim-v1.31.4+rke2r1-aaaaaaaaaaaa"), t.Logf)
	for name, survive := range dirs {
		_, err := os.Stat(filepath.Join(cache, name))
		if survive != (err == nil) {
			t.Errorf("%s: exists %v, want %v", name, err == nil, survive)
		}
	}
}
