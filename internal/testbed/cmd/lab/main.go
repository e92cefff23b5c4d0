// Command lab runs the demo homelab used by `make demo`: real peers (an
// OpenSSH host, a ZFS VM that is also a one-node RKE2 (simulator) cluster, a
// rest-server, a Kubernetes API server and an IPMI BMC) on loopback addresses
// and a LAN of their own, plus the OpenTofu binary, provider build and CLI
// configuration to drive them.
//
// Usage:
//
//	go run ./internal/testbed/cmd/lab up|down|status
//	go run ./internal/testbed/cmd/lab demo [DIR]    # up, then apply DIR (default examples/lab)
//	go run ./internal/testbed/cmd/lab schema FILE   # provider schema JSON for tfplugindocs
//
// State lives in .lab/ at the repository root: lab.json records every peer
// (address, pids, files) and terraform.tfvars.json holds the variables the
// demo configuration needs to reach them. Peers are detached daemons that
// outlive this command until `lab down`.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

const (
	labDirName     = ".lab"
	stateFileName  = "lab.json"
	tfvarsFileName = "terraform.tfvars.json"
	cliConfigName  = "tofurc"
	pluginsDirName = "plugins"
	stateVersion   = 1
	// stopGrace is how long `down` waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// peerStartTimeout bounds starting one peer. It covers starting only:
	// what a peer needs built is built before (see builder), with no
	// deadline, and a start that would build fails instead (see
	// testbed.StartPhase). Booting the ZFS VM under software emulation
	// takes 35 s on an idle machine but over 2 minutes on a loaded one (the
	// first cold `make demo` measured here failed at a 2-minute bound), so
	// the bound only catches a start that hangs.
	peerStartTimeout = 10 * time.Minute
)

// peer is one machine or service of the lab. Adding a peer (a ZFS VM, a
// kube-apiserver, a BMC simulator, ...) means implementing peer and listing
// it in labPeers; lab.json, down and status handle it generically.
type peer interface {
	// Name is unique within the lab and names the peer's directory.
	Name() string
	// Start starts the peer, detached from this process, with its files
	// under dir, and describes it.
	Start(ctx context.Context, dir string) (peerRecord, error)
}

// builder is a peer that needs something built before it can start (a VM
// image, a binary from the module proxy). Build runs before any peer
// starts, with no deadline: on a fresh machine the builds take many
// minutes, far longer than a start may. Start then finds everything in the
// cache; under its deadline it is not allowed to build.
type builder interface {
	Build(ctx context.Context) error
}

// labPeers are the peers `up` starts, in order.
var labPeers = []peer{
	sshHost{name: "storage"},
	zfsHost{name: "zfs", disks: 6},
	backupServer{name: "backup"},
	kubeAPI{name: "kube"},
	bmcHost{name: "bmc"},
}

// labState is the content of lab.json.
type labState struct {
	Version int `json:"version"`
	// Dir is the lab's state directory.
	Dir string `json:"dir"`
	// Tofu is the OpenTofu binary.
	Tofu string `json:"tofu"`
	// CLIConfig is the OpenTofu CLI config (TF_CLI_CONFIG_FILE).
	CLIConfig string `json:"cli_config"`
	// ProviderDir holds the provider binary the CLI config points at.
	ProviderDir string `json:"provider_dir"`
	// TFVars is the generated terraform.tfvars.json.
	TFVars string `json:"tfvars"`
	// Peers are the running peers.
	Peers []peerRecord `json:"peers"`
}

// peerRecord describes a started peer in lab.json.
type peerRecord struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Endpoint is the address clients connect to ("host:port").
	Endpoint string `json:"endpoint"`
	Dir      string `json:"dir"`
	// Processes are the processes to stop on `down`.
	Processes []processRecord `json:"processes"`
	// Files are notable files of the peer (keys, logs, ...), by role.
	Files map[string]string `json:"files,omitempty"`
	// Vars are the OpenTofu variables this peer contributes to
	// terraform.tfvars.json.
	Vars map[string]any `json:"vars,omitempty"`
	// Connect is a command line for reaching the peer by hand.
	Connect string `json:"connect,omitempty"`
	// LAN names a testbed LAN (bridge and network namespace) the peer
	// created; `down` removes it after stopping the processes.
	LAN string `json:"lan,omitempty"`
}

// processRecord identifies a process; Exe guards against pid reuse.
type processRecord struct {
	PID int    `json:"pid"`
	Exe string `json:"exe"`
}

// alive reports whether all processes of the peer are running.
func (r peerRecord) alive() bool {
	for _, p := range r.Processes {
		if !testbed.ProcessAlive(p.PID, p.Exe) {
			return false
		}
	}
	return len(r.Processes) > 0
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		usage()
	}
	arg := ""
	if len(os.Args) == 3 {
		arg = os.Args[2]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := newLab()
	if err == nil {
		switch os.Args[1] {
		case "up":
			err = l.up(ctx)
		case "demo":
			err = l.demo(ctx, arg)
		case "schema":
			err = schema(ctx, arg)
		case "down":
			err = l.destroyDemo(ctx)
			err = errors.Join(err, l.down())
		case "status":
			err = l.status()
		default:
			usage()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// usage reports wrong arguments and exits.
func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./internal/testbed/cmd/lab up | demo [DIR] | down | status | schema FILE")
	os.Exit(2)
}

// lab knows where the lab's files live.
type lab struct {
	dir string
	// startTimeout bounds each peer's Start (peerStartTimeout).
	startTimeout time.Duration
}

// newLab locates the lab directory in the repository root.
func newLab() (*lab, error) {
	root, err := testbed.RepoRoot()
	if err != nil {
		return nil, err
	}
	return &lab{dir: filepath.Join(root, labDirName), startTimeout: peerStartTimeout}, nil
}

// path returns the path of a file in the lab directory.
func (l *lab) path(name string) string { return filepath.Join(l.dir, name) }

// up starts every peer that is not running and (re)builds the tooling. The
// provider is rebuilt on every call so the demo never runs a stale binary.
func (l *lab) up(ctx context.Context) error {
	st, err := l.load()
	if err != nil {
		return err
	}
	if st != nil && allAlive(st.Peers) && len(st.Peers) == len(labPeers) {
		fmt.Println("lab is already up")
		if err := l.ensureTooling(ctx, st); err != nil {
			return err
		}
		if err := l.save(st); err != nil {
			return err
		}
		printStatus(st)
		return nil
	}
	if st != nil {
		fmt.Println("lab is partly down; restarting it")
		if err := l.stopPeers(st); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", l.dir, err)
	}
	st = &labState{Version: stateVersion, Dir: l.dir}
	if err := l.ensureTooling(ctx, st); err != nil {
		return err
	}
	if err := buildPeers(ctx, labPeers); err != nil {
		return err
	}
	if err := l.startPeers(ctx, st, labPeers); err != nil {
		return err
	}
	printStatus(st)
	return nil
}

// ensureTooling makes sure OpenTofu is cached, builds the provider and
// writes the CLI config that points OpenTofu at it.
func (l *lab) ensureTooling(ctx context.Context, st *labState) error {
	tofu, err := testbed.EnsureOpenTofu(ctx, logf)
	if err != nil {
		return err
	}
	st.Tofu = tofu
	st.ProviderDir = l.path(pluginsDirName)
	if _, err := testbed.BuildProvider(ctx, st.ProviderDir); err != nil {
		return err
	}
	st.CLIConfig = l.path(cliConfigName)
	return testbed.WriteCLIConfig(st.CLIConfig, st.ProviderDir)
}

// buildPeers builds what each peer needs, before any peer starts and with
// no deadline but ctx's (Ctrl-C), so that no start deadline covers a build.
func buildPeers(ctx context.Context, peers []peer) error {
	for _, p := range peers {
		b, ok := p.(builder)
		if !ok {
			continue
		}
		if err := b.Build(ctx); err != nil {
			return fmt.Errorf("building what %s needs: %w", p.Name(), err)
		}
	}
	return nil
}

// startPeers starts each peer in a fresh directory, recording it in
// lab.json right away so that `down` can clean up even after a failure.
// Each start is bounded by l.startTimeout and marked as a start phase, in
// which the testbed refuses to build: buildPeers must have run first.
func (l *lab) startPeers(ctx context.Context, st *labState, peers []peer) error {
	st.TFVars = l.path(tfvarsFileName)
	for _, p := range peers {
		dir := l.path(p.Name())
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clearing %s: %w", dir, err)
		}
		pctx, cancel := context.WithTimeout(testbed.StartPhase(ctx), l.startTimeout)
		rec, err := p.Start(pctx, dir)
		cancel()
		if err != nil {
			return fmt.Errorf("starting %s: %w (run `lab down` to clean up)", p.Name(), err)
		}
		st.Peers = append(st.Peers, rec)
		if err := l.save(st); err != nil {
			return err
		}
	}
	return l.writeTFVars(st)
}

// logf prints the lab's progress messages.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...)
}

// down stops every recorded peer and removes the runtime files. Build
// outputs (plugins/, tofurc) are kept.
func (l *lab) down() error {
	st, err := l.load()
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Println("lab is down")
	} else if err := l.stopPeers(st); err != nil {
		return err
	}
	var paths []string
	for _, p := range labPeers {
		paths = append(paths, l.path(p.Name()))
	}
	paths = append(paths, l.path(tfvarsFileName), l.path(stateFileName))
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	if st != nil {
		fmt.Println("lab is down")
	}
	return nil
}

// stopPeers terminates the processes of every recorded peer.
func (l *lab) stopPeers(st *labState) error {
	var errs []error
	for _, rec := range st.Peers {
		wasRunning := false
		for _, p := range rec.Processes {
			wasRunning = wasRunning || testbed.ProcessAlive(p.PID, p.Exe)
			if err := testbed.TerminateProcess(p.PID, p.Exe, stopGrace); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", rec.Name, err))
			}
		}
		if rec.LAN != "" {
			if err := testbed.StopLANByName(rec.LAN); err != nil {
				errs = append(errs, fmt.Errorf("removing %s's LAN %s: %w", rec.Name, rec.LAN, err))
			}
		}
		if err := os.RemoveAll(rec.Dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", rec.Dir, err))
		}
		if wasRunning {
			fmt.Printf("stopped %s\n", rec.Name)
		}
	}
	if err := os.Remove(l.path(stateFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// status prints what is up.
func (l *lab) status() error {
	st, err := l.load()
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Println("lab is down (start it with: go run ./internal/testbed/cmd/lab up)")
		return nil
	}
	printStatus(st)
	return nil
}

// printStatus prints the peers and tooling of the lab, concisely.
func printStatus(st *labState) {
	fmt.Printf("lab %s\n", rel(st.Dir))
	for _, p := range st.Peers {
		state := "up"
		if !p.alive() {
			state = "DOWN"
		}
		fmt.Printf("  %-10s %-6s %-22s %-4s pids %v\n", p.Name, p.Kind, p.Endpoint, state, pids(p))
		if p.Connect != "" {
			fmt.Printf("             %s\n", p.Connect)
		}
	}
	fmt.Printf("tofu        %s\n", rel(st.Tofu))
	fmt.Printf("cli config  export TF_CLI_CONFIG_FILE=%s\n", rel(st.CLIConfig))
	fmt.Printf("tfvars      %s\n", rel(st.TFVars))
}

// pids lists the process ids of a peer.
func pids(r peerRecord) []int {
	var out []int
	for _, p := range r.Processes {
		out = append(out, p.PID)
	}
	return out
}

// allAlive reports whether every peer is running.
func allAlive(peers []peerRecord) bool {
	for _, p := range peers {
		if !p.alive() {
			return false
		}
	}
	return true
}

// load reads lab.json; it returns nil when the lab was never started.
func (l *lab) load() (*labState, error) {
	data, err := os.ReadFile(l.path(stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lab state: %w", err)
	}
	var st labState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", l.path(stateFileName), err)
	}
	return &st, nil
}

// save writes lab.json.
func (l *lab) save(st *labState) error {
	return writeJSON(l.path(stateFileName), st)
}

// writeTFVars merges the variables of all peers into terraform.tfvars.json.
func (l *lab) writeTFVars(st *labState) error {
	vars := map[string]any{}
	for _, p := range st.Peers {
		for k, v := range p.Vars {
			if _, dup := vars[k]; dup {
				return fmt.Errorf("variable %q is set by two peers", k)
			}
			vars[k] = v
		}
	}
	return writeJSON(st.TFVars, vars)
}

// writeJSON writes v as indented JSON, atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// rel shortens path relative to the working directory when it is below it.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && filepath.IsLocal(r) {
		return r
	}
	return path
}

// sshHost is a lab machine reached over SSH: a detached OpenSSH server with
// its own loopback address, host key and authorized client key.
type sshHost struct {
	name string
}

// Name implements peer.
func (h sshHost) Name() string { return h.name }

// Start implements peer: it starts a detached sshd and exposes it to the
// demo as the ssh_* variables.
func (h sshHost) Start(ctx context.Context, dir string) (peerRecord, error) {
	s, err := testbed.StartSSHD(ctx, dir, testbed.SSHDOptions{Detach: true})
	if err != nil {
		return peerRecord{}, err
	}
	return peerRecord{
		Name:      h.name,
		Kind:      "sshd",
		Endpoint:  s.HostPort(),
		Dir:       s.Dir,
		Processes: []processRecord{{PID: s.PID, Exe: testbed.SSHDPath}},
		Files: map[string]string{
			"config":      s.ConfigPath,
			"log":         s.LogPath,
			"client_key":  s.ClientKeyPath,
			"known_hosts": s.KnownHostsPath,
		},
		Vars: map[string]any{
			"ssh_host":             s.Addr,
			"ssh_port":             s.Port,
			"ssh_user":             "root",
			"ssh_private_key_file": s.ClientKeyPath,
			"known_hosts_file":     s.KnownHostsPath,
		},
		Connect: fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -p %d root@%s",
			rel(s.ClientKeyPath), rel(s.KnownHostsPath), s.Port, s.Addr),
	}, nil
}

// zfsHost is a lab machine running real OpenZFS: a detached qemu VM (see
// testbed.StartZFSVM) with sparse data disks, reached over SSH as root on a
// forwarded loopback port.
type zfsHost struct {
	name  string
	disks int
}

// Name implements peer.
func (h zfsHost) Name() string { return h.name }

// Build implements builder: the VM image, restic, the RKE2 simulator's
// artifacts (the storage box also runs the lab's one-node RKE2 cluster,
// installed by the provider from these airgap artifacts) and MetalLB's
// module for its CRDs. Several minutes each on a fresh machine.
func (h zfsHost) Build(ctx context.Context) error {
	_, err := h.ensure(ctx)
	return err
}

// zfsHostArtifacts are what a zfsHost needs built.
type zfsHostArtifacts struct {
	restic, rke2Artifacts string
}

// ensure returns what the peer needs, building it unless ctx is a start
// phase (then it is only looked up in the cache).
func (h zfsHost) ensure(ctx context.Context) (zfsHostArtifacts, error) {
	var a zfsHostArtifacts
	_, err := testbed.EnsureZFSImage(ctx, logf)
	if err == nil {
		a.restic, err = testbed.EnsureRestic(ctx, logf)
	}
	if err == nil {
		a.rke2Artifacts, err = testbed.RKE2SimArtifacts(ctx, labRKE2Version, logf)
	}
	if err == nil {
		_, err = testbed.MetalLBCRDs(ctx)
	}
	return a, err
}

// Start implements peer: it boots a detached ZFS VM and exposes it to the
// demo as the zfs_* variables.
func (h zfsHost) Start(ctx context.Context, dir string) (peerRecord, error) {
	built, err := h.ensure(ctx)
	if err != nil {
		return peerRecord{}, err
	}
	restic, artifacts := built.restic, built.rke2Artifacts
	// The VM's second NIC is on a LAN the host reaches directly, so that
	// the RKE2 cluster on it is reachable at a stable address.
	lan, err := testbed.StartLAN(ctx)
	if err != nil {
		return peerRecord{}, err
	}
	if err := lan.Detach(); err != nil {
		return peerRecord{}, errors.Join(err, lan.Stop())
	}
	vm, err := testbed.StartZFSVM(ctx, dir, testbed.ZFSVMOptions{Disks: h.disks, Detach: true, Logf: logf,
		LAN: lan, LANAddr: lan.Addr(0)})
	if err != nil {
		return peerRecord{}, errors.Join(err, lan.Stop())
	}
	fail := func(err error) (peerRecord, error) {
		return peerRecord{}, errors.Join(err, vm.Stop(), lan.Stop())
	}
	// The storage box backs itself up with restic, installed the way a
	// user would put a release binary in place.
	if err := installRestic(ctx, vm, restic); err != nil {
		return fail(err)
	}
	crds, err := metalLBManifest(ctx, dir)
	if err != nil {
		return fail(err)
	}
	return peerRecord{
		Name:      h.name,
		Kind:      "zfs-vm",
		Endpoint:  vm.SSHAddr(),
		Dir:       vm.Dir,
		Processes: []processRecord{{PID: vm.PID, Exe: vm.QEMUPath}},
		LAN:       lan.Name,
		Files: map[string]string{
			"private_key": vm.KeyPath,
			"known_hosts": vm.KnownHostsPath,
			"qmp":         vm.QMPPath,
			"console":     vm.ConsoleLogPath,
		},
		Vars: map[string]any{
			"zfs_ssh_host":         vm.SSHHost,
			"zfs_ssh_port":         vm.SSHPort,
			"zfs_private_key_file": vm.KeyPath,
			"zfs_known_hosts_file": vm.KnownHostsPath,
			"zfs_disks":            vm.Disks,
			"zfs_lan_ip":           vm.LANAddr,
			"rke2_version":         labRKE2Version,
			"rke2_artifacts_dir":   artifacts,
			"metallb_crds_file":    crds,
		},
		Connect: fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -p %d root@%s",
			rel(vm.KeyPath), rel(vm.KnownHostsPath), vm.SSHPort, vm.SSHHost),
	}, nil
}

// labRKE2Version is the version of the lab's RKE2 (simulator) cluster.
const labRKE2Version = "v1.31.4+rke2r1"

// metalLBManifest writes MetalLB's CRDs and its namespace as one manifest
// for the cluster's server/manifests directory, and returns its path.
func metalLBManifest(ctx context.Context, dir string) (string, error) {
	crds, err := testbed.MetalLBCRDs(ctx)
	if err != nil {
		return "", err
	}
	docs := [][]byte{[]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: metallb-system\n")}
	docs = append(docs, crds...)
	p := filepath.Join(dir, "metallb-crds.yaml")
	return p, os.WriteFile(p, bytes.Join(docs, []byte("\n---\n")), 0o644)
}

// kubeAPI is the lab's Kubernetes API: a detached kube-apiserver with its
// own etcd (see testbed.StartKube), with MetalLB's CRDs and the
// metallb-system namespace installed. There are no nodes or controllers.
type kubeAPI struct {
	name string
}

// Name implements peer.
func (k kubeAPI) Name() string { return k.name }

// Build implements builder: kube-apiserver (about 4 minutes cold).
func (k kubeAPI) Build(ctx context.Context) error {
	_, err := testbed.EnsureKubeAPIServer(ctx, logf)
	return err
}

// Start implements peer: it starts a detached Kubernetes API, installs
// MetalLB's CRDs and namespace, and exposes it to the demo as the
// kubeconfig_path variable.
func (k kubeAPI) Start(ctx context.Context, dir string) (peerRecord, error) {
	kube, err := testbed.StartKube(ctx, dir, testbed.KubeOptions{Detach: true, Logf: logf})
	if err != nil {
		return peerRecord{}, err
	}
	if err := kube.InstallMetalLBCRDs(ctx); err != nil {
		return peerRecord{}, errors.Join(err, kube.Stop())
	}
	if err := kube.EnsureNamespace(ctx, "metallb-system"); err != nil {
		return peerRecord{}, errors.Join(err, kube.Stop())
	}
	return peerRecord{
		Name:     k.name,
		Kind:     "kube",
		Endpoint: strings.TrimPrefix(kube.URL, "https://"),
		Dir:      kube.Dir,
		Processes: []processRecord{
			{PID: kube.APIServerPID, Exe: kube.APIServerPath},
			{PID: kube.EtcdPID, Exe: testbed.EtcdPath},
		},
		Files: map[string]string{
			"kubeconfig":         kube.KubeconfigPath,
			"kube_apiserver_log": kube.APIServerLogPath,
			"etcd_log":           kube.EtcdLogPath,
		},
		Vars: map[string]any{
			"kubeconfig_path": kube.KubeconfigPath,
		},
		Connect: "kubectl --kubeconfig " + rel(kube.KubeconfigPath) + " get ipaddresspools -A",
	}, nil
}

// bmcHost is the lab's BMC: Debian's ipmi_sim (a real IPMI implementation
// simulating a chassis), detached, with a netboot directory for the node's
// PXE files next to it.
type bmcHost struct {
	name string
}

// Name implements peer.
func (b bmcHost) Name() string { return b.name }

// Build implements builder: ipmi_sim's boot options module.
func (b bmcHost) Build(ctx context.Context) error {
	_, err := testbed.EnsureIPMIBootOptsModule(ctx, logf)
	return err
}

// Start implements peer.
func (b bmcHost) Start(ctx context.Context, dir string) (peerRecord, error) {
	sim, err := testbed.StartIPMISim(ctx, filepath.Join(dir, "ipmi"), testbed.IPMISimOptions{Detach: true, Logf: logf})
	if err != nil {
		return peerRecord{}, err
	}
	exe, err := exec.LookPath("ipmi_sim")
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return peerRecord{}, errors.Join(err, sim.Stop())
	}
	netboot := filepath.Join(dir, "netboot")
	if err := os.MkdirAll(netboot, 0o755); err != nil {
		return peerRecord{}, errors.Join(err, sim.Stop())
	}
	return peerRecord{
		Name:      b.name,
		Kind:      "ipmi",
		Endpoint:  sim.HostPort(),
		Dir:       dir,
		Processes: []processRecord{{PID: sim.PID, Exe: exe}},
		Files:     map[string]string{"ipmi_sim_log": sim.LogPath, "netboot_dir": netboot},
		Vars: map[string]any{
			"bmc_host":     sim.Host,
			"bmc_port":     sim.Port,
			"bmc_user":     sim.User,
			"bmc_password": sim.Password,
			"netboot_dir":  netboot,
		},
		Connect: fmt.Sprintf("ipmitool -I lanplus -H %s -p %d -U %s -P %s chassis status", sim.Host, sim.Port, sim.User, sim.Password),
	}, nil
}

// installRestic puts the testbed's restic build bin on the VM as
// /usr/local/bin/restic.
func installRestic(ctx context.Context, vm *testbed.ZFSVM, bin string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	pool := remote.NewPool(nil)
	defer pool.Close()
	r, err := pool.Runner(remote.Config{Host: vm.SSHHost, Port: vm.SSHPort, User: "root",
		PrivateKey: string(vm.PrivateKeyPEM), KnownHostsFile: vm.KnownHostsPath})
	if err != nil {
		return err
	}
	if err := r.Upload(ctx, "/usr/local/bin/restic", f, 0o755); err != nil {
		return fmt.Errorf("installing restic on the ZFS VM: %w", err)
	}
	return nil
}

// backupServer is the lab's backup target: a detached rest-server with
// authentication on loopback, which the ZFS VM reaches through qemu's user
// network at 10.0.2.2 (the host's loopback as the guest sees it).
type backupServer struct {
	name string
}

// Name implements peer.
func (b backupServer) Name() string { return b.name }

// qemuHostAddr is the host's loopback as a qemu user-network guest reaches it.
const qemuHostAddr = "10.0.2.2"

// Build implements builder: rest-server from the module proxy.
func (b backupServer) Build(ctx context.Context) error {
	_, err := testbed.EnsureRestServer(ctx, logf)
	return err
}

// Start implements peer.
func (b backupServer) Start(ctx context.Context, dir string) (peerRecord, error) {
	s, err := testbed.StartRestServer(ctx, dir, testbed.RestServerOptions{User: "lab", Detach: true, Logf: logf})
	if err != nil {
		return peerRecord{}, err
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	return peerRecord{
		Name:      b.name,
		Kind:      "rest-server",
		Endpoint:  net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Dir:       s.Dir,
		Processes: []processRecord{{PID: s.PID, Exe: s.Exe()}},
		Files:     map[string]string{"rest_server_log": s.LogPath, "repositories": s.DataDir()},
		Vars: map[string]any{
			"restic_repository":    fmt.Sprintf("rest:http://%s/lab/", net.JoinHostPort(qemuHostAddr, strconv.Itoa(s.Port))),
			"restic_rest_user":     s.User,
			"restic_rest_password": s.Password,
			"restic_password":      hex.EncodeToString(pw),
		},
		Connect: fmt.Sprintf("curl -u %s:%s %s/lab/config", s.User, s.Password, s.URL),
	}, nil
}
