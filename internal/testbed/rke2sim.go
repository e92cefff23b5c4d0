package testbed

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// The RKE2 simulator (internal/rke2sim) packaged like RKE2's airgap
// release artifacts, so that the provider installs it exactly as it
// installs real RKE2 (see internal/rke2sim/CONTRACT.md).

// Names of the artifacts, as RKE2 publishes them for linux-amd64.
const (
	RKE2TarballName   = "rke2.linux-amd64.tar.gz"
	RKE2ImagesName    = "rke2-images.linux-amd64.tar.gz"
	RKE2ChecksumsName = "sha256sum-amd64.txt"
)

const (
	// rke2SimLayout versions how the artifacts are put together; bumping
	// it rebuilds them.
	rke2SimLayout = "rke2sim-artifacts/1"
	// rke2SimSourceDir holds the simulator's sources, relative to the
	// repository root; their content is part of the cache key.
	rke2SimSourceDir = "internal/rke2sim"
	// rke2SimCmd is the package of the rke2 binary.
	rke2SimCmd = "./internal/rke2sim/cmd/rke2"
	// rke2SimVersionVar is set with -X to the version being built.
	rke2SimVersionVar = ModulePath + "/internal/rke2sim.Version"
	// rke2SimVersionTimeout bounds `rke2 --version` of a fresh build.
	rke2SimVersionTimeout = 30 * time.Second
)

// rke2TarMTime is the modification time of every tarball member, fixed so
// that the artifacts of identical inputs are identical.
var rke2TarMTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// rke2VersionPattern is what RKE2SimArtifacts accepts as a version (it
// becomes part of a file name and of the binary).
var rke2VersionPattern = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9.+_-]*$`)

// RKE2SimArtifacts returns a directory holding the airgap artifacts of the
// RKE2 simulator for version (e.g. "v1.31.4+rke2r1"), as an RKE2 release
// publishes them:
//
//   - rke2.linux-amd64.tar.gz: bin/rke2 (the simulator, reporting version),
//     bin/rke2-killall.sh, bin/rke2-uninstall.sh,
//     lib/systemd/system/rke2-server.service and rke2-agent.service, and
//     share/rke2/SIMULATOR.txt; extract it with tar -C /usr/local;
//   - rke2-images.linux-amd64.tar.gz: the etcd (Debian's, dynamically
//     linked: the nodes must run Debian bookworm) and kube-apiserver
//     (EnsureKubeAPIServer) executables the simulator server runs; copy it
//     into /var/lib/rancher/rke2/agent/images/;
//   - sha256sum-amd64.txt: "<sha256>  <name>" lines for both.
//
// The directory is under CacheDir, named after version and a hash of the
// simulator's sources (and of everything else that goes into the
// artifacts), so editing the simulator rebuilds them and a cache hit costs
// a source hash. The first build of a version takes a Go build and
// compressing about 120 MB (plus the kube-apiserver build when it is not
// cached). Concurrent callers, in this or other processes, serialize on a
// file lock. logf receives progress messages and may be nil.
func RKE2SimArtifacts(ctx context.Context, version string, logf func(string, ...any)) (dir string, err error) {
	logf = logfOrNop(logf)
	if !rke2VersionPattern.MatchString(version) {
		return "", fmt.Errorf("invalid RKE2 version %q: want e.g. v1.31.4+rke2r1", version)
	}
	if _, err := os.Stat(EtcdPath); err != nil {
		return "", fmt.Errorf("etcd not found (install Debian's etcd-server, see scripts/install-deps): %w", err)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	key, err := rke2SimCacheKey(root, version)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	name := "rke2sim-" + version + "-" + key[:12]
	dir = filepath.Join(cache, name)
	built := false
	err = withFileLock(ctx, dir+".lock", func() error {
		if rke2ArtifactsComplete(dir) {
			return nil
		}
		built = true
		return buildRKE2SimArtifacts(ctx, root, version, dir, logf)
	})
	if err != nil {
		return "", fmt.Errorf("RKE2 simulator artifacts %s: %w", version, err)
	}
	if built {
		pruneRKE2SimArtifacts(ctx, cache, version, dir, logf)
	}
	return dir, nil
}

// rke2SimPruneAge is how old the artifacts of older simulator sources
// must be before a new build of the same version removes them (younger
// ones may belong to a test that is still using them).
const rke2SimPruneAge = time.Hour

// pruneRKE2SimArtifacts removes the artifacts of version built from other
// sources than keep, when older than rke2SimPruneAge, so that editing the
// simulator does not fill the cache. Each is removed under its lock;
// failures are only logged.
func pruneRKE2SimArtifacts(ctx context.Context, cache, version, keep string, logf func(string, ...any)) {
	prefix := "rke2sim-" + version + "-"
	dirs, _ := filepath.Glob(filepath.Join(cache, prefix+"*"))
	for _, d := range dirs {
		// Only <prefix><12 hex digits>: not the dirs of a version that
		// merely starts with this one (v1.31.4+rke2r1-rc1), nor temporary
		// or lock files.
		hash := strings.TrimPrefix(filepath.Base(d), prefix)
		if _, err := hex.DecodeString(hash); err != nil || len(hash) != 12 || d == keep {
			continue
		}
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < rke2SimPruneAge {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = withFileLock(lctx, d+".lock", func() error { return os.RemoveAll(d) })
		cancel()
		if err != nil {
			logf("could not remove stale RKE2 simulator artifacts %s: %v", d, err)
			continue
		}
		logf("removed stale RKE2 simulator artifacts %s", d)
	}
}

// rke2ArtifactsComplete reports whether dir holds all three artifacts (a
// finished build is renamed into place, so presence means complete).
func rke2ArtifactsComplete(dir string) bool {
	for _, n := range []string{RKE2TarballName, RKE2ImagesName, RKE2ChecksumsName} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// rke2SimCacheKey hashes what the artifacts are made of: the layout, the
// version, the simulator's Go sources (tests excluded) with go.mod and
// go.sum, the scripts and unit files, the kube-apiserver version and the
// identity (size, modification time) of the etcd binary.
func rke2SimCacheKey(root, version string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\nkube-apiserver %s\n", rke2SimLayout, version, KubernetesVersion)
	if fi, err := os.Stat(EtcdPath); err == nil {
		fmt.Fprintf(h, "etcd %d %d\n", fi.Size(), fi.ModTime().UnixNano())
	}
	for _, f := range rke2StaticFiles() {
		fmt.Fprintf(h, "%s %o %d\n", f.name, f.mode, len(f.data))
		h.Write(f.data)
	}
	var files []string
	err := filepath.WalkDir(filepath.Join(root, rke2SimSourceDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing the simulator sources: %w", err)
	}
	files = append(files, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hashing the simulator sources: %w", err)
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildRKE2SimArtifacts builds everything into a temporary directory next
// to dir and renames it into place.
func buildRKE2SimArtifacts(ctx context.Context, root, version, dir string, logf func(string, ...any)) error {
	if err := allowBuild(ctx, "the RKE2 simulator artifacts "+version); err != nil {
		return err
	}
	start := time.Now()
	apiserver, err := EnsureKubeAPIServer(ctx, logf)
	if err != nil {
		return err
	}
	logf("building the RKE2 simulator %s into %s", version, dir)
	// Leftovers of builds that were killed (the lock is held, so none is
	// in progress) and an incomplete dir.
	stale, _ := filepath.Glob(dir + ".tmp-*")
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // no-op after the rename

	bin := filepath.Join(tmp, "rke2")
	if err := buildRKE2Sim(ctx, root, version, bin); err != nil {
		return err
	}
	rke2Bin, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := os.Remove(bin); err != nil {
		return err
	}

	members := []tarMember{
		{name: "bin/", dir: true},
		{name: "bin/rke2", mode: 0o755, data: rke2Bin},
	}
	members = withParentDirs(append(members, rke2StaticFiles()...))
	if err := writeTarGz(filepath.Join(tmp, RKE2TarballName), members, gzip.DefaultCompression); err != nil {
		return err
	}

	images := []tarMember{
		{name: "etcd", mode: 0o755, path: EtcdPath},
		{name: "kube-apiserver", mode: 0o755, path: apiserver},
		{name: "SIMULATOR.txt", mode: 0o644, data: []byte(rke2SimulatorText())},
	}
	if err := writeTarGz(filepath.Join(tmp, RKE2ImagesName), images, gzip.BestSpeed); err != nil {
		return err
	}

	var sums strings.Builder
	for _, n := range []string{RKE2TarballName, RKE2ImagesName} {
		sum, err := rke2.FileSHA256(filepath.Join(tmp, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, n)
	}
	if err := os.WriteFile(filepath.Join(tmp, RKE2ChecksumsName), []byte(sums.String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("installing artifacts: %w", err)
	}
	logf("built the RKE2 simulator %s artifacts in %s", version, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// buildRKE2Sim builds the rke2 binary for version into bin (static,
// -trimpath) and checks its --version.
func buildRKE2Sim(ctx context.Context, root, version, bin string) error {
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	ldflags := "-s -w -X " + rke2SimVersionVar + "=" + version
	if _, err := runGoIn(ctx, goBin, root, repoGoEnv(), "build", "-trimpath", "-ldflags", ldflags, "-o", bin, rke2SimCmd); err != nil {
		return fmt.Errorf("building the RKE2 simulator: %w", err)
	}
	vctx, cancel := context.WithTimeout(ctx, rke2SimVersionTimeout)
	defer cancel()
	out, err := exec.CommandContext(vctx, bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("running %s --version: %w", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if want := "rke2 version " + version + " (simulator)"; first != want {
		return fmt.Errorf("%s --version printed %q, want %q", bin, first, want)
	}
	return nil
}

// repoGoEnv is goEnv without its -mod=mod: the simulator is built inside
// the repository with the repository's own go.mod, which must not change.
func repoGoEnv() []string {
	env := goEnv()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var flags []string
			for _, f := range strings.Fields(v) {
				if !strings.HasPrefix(f, "-mod=") {
					flags = append(flags, f)
				}
			}
			env[i] = "GOFLAGS=" + strings.Join(flags, " ")
		}
	}
	return env
}

// tarMember is one tarball entry: a directory, data, or a file to copy.
type tarMember struct {
	name string
	mode int64
	dir  bool
	data []byte
	path string // copied from this file when data is nil
}

// withParentDirs adds the missing parent directory entries (mode 0755)
// before the members that need them.
func withParentDirs(members []tarMember) []tarMember {
	have := map[string]bool{}
	for _, m := range members {
		if m.dir {
			have[m.name] = true
		}
	}
	var out []tarMember
	for _, m := range members {
		var parents []string
		for d := filepath.Dir(strings.TrimSuffix(m.name, "/")); d != "." && d != "/"; d = filepath.Dir(d) {
			parents = append([]string{d + "/"}, parents...)
		}
		for _, p := range parents {
			if !have[p] {
				have[p] = true
				out = append(out, tarMember{name: p, dir: true})
			}
		}
		out = append(out, m)
	}
	return out
}

// writeTarGz writes members as a gzip-compressed tar owned by root with a
// fixed modification time.
func writeTarGz(path string, members []tarMember, level int) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz, err := gzip.NewWriterLevel(f, level)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, m := range members {
		h := &tar.Header{Name: m.name, ModTime: rke2TarMTime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if m.dir {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Mode = tar.TypeReg, m.mode
		if m.data != nil {
			h.Size = int64(len(m.data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(m.data); err != nil {
				return err
			}
			continue
		}
		if err := copyIntoTar(tw, h, m.path); err != nil {
			return fmt.Errorf("adding %s: %w", m.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func copyIntoTar(tw *tar.Writer, h *tar.Header, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	h.Size = fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(tw, src)
	if err == nil && n != h.Size {
		err = errors.New("file changed while being archived")
	}
	return err
}

// rke2StaticFiles are the members of rke2.linux-amd64.tar.gz other than
// bin/rke2.
func rke2StaticFiles() []tarMember {
	return []tarMember{
		{name: "bin/rke2-killall.sh", mode: 0o755, data: []byte(rke2KillallScript)},
		{name: "bin/rke2-uninstall.sh", mode: 0o755, data: []byte(rke2UninstallScript)},
		{name: "lib/systemd/system/rke2-server.service", mode: 0o644, data: []byte(rke2Unit("server", "agent"))},
		{name: "lib/systemd/system/rke2-agent.service", mode: 0o644, data: []byte(rke2Unit("agent", "server"))},
		{name: "share/rke2/SIMULATOR.txt", mode: 0o644, data: []byte(rke2SimulatorText())},
	}
}

// rke2Unit is the systemd unit of `rke2 <role>`. KillMode=mixed sends
// SIGTERM to the simulator alone, which marks its Node not ready and stops
// kube-apiserver and etcd in order; whatever is left when it exits is
// killed, so a restart never finds old children. The long start timeout
// leaves room for slow, emulated VMs.
func rke2Unit(role, other string) string {
	return fmt.Sprintf(`[Unit]
Description=Rancher Kubernetes Engine v2 (%[1]s) - SIMULATOR
Documentation=file:///usr/local/share/rke2/SIMULATOR.txt
Wants=network-online.target
After=network-online.target
Conflicts=rke2-%[2]s.service

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%%N
EnvironmentFile=-/etc/sysconfig/%%N
KillMode=mixed
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=15min
TimeoutStopSec=2min
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/rke2 %[1]s
`, role, other)
}

// rke2SimulatorText is share/rke2/SIMULATOR.txt.
func rke2SimulatorText() string {
	return `This is the RKE2 SIMULATOR of terraform-provider-homelab's tests, not RKE2.

/usr/local/bin/rke2 answers "rke2 --version", "rke2 server" and "rke2 agent"
as RKE2 does, for the parts of RKE2 the provider relies on:
- rke2 server runs a real etcd and a real kube-apiserver (taken from
  /var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.gz), writes
  /var/lib/rancher/rke2/server/token, node-token and /etc/rancher/rke2/rke2.yaml,
  serves the join API on port 9345, registers its Node and keeps it Ready, and
  applies /var/lib/rancher/rke2/server/manifests;
- rke2 agent joins a server with the token and keeps its Node Ready.

Nothing runs pods: there is no kubelet, container runtime, CNI, scheduler or
controller-manager. Joining servers use the first server's etcd; no etcd
cluster is formed. The join protocol (/v1-rke2-sim/...) is the simulator's own.
`
}

// rke2KillProcs is shell shared by the scripts: kill_rke2_procs SIG sends
// SIG to every process running rke2 or an executable under the data dir's
// data/*/bin (etcd, kube-apiserver), and prints how many it found.
const rke2KillProcs = `
# RKE2_SIM_ROOT (SIM, host-side tests) prefixes every path, as for rke2.
ROOT="${RKE2_SIM_ROOT:-}"

kill_rke2_procs() {
	found=0
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = "$$" ] && continue
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		exe=${exe% (deleted)}
		case "$exe" in
		"$ROOT/usr/local/bin/rke2" | "$ROOT"/var/lib/rancher/rke2/data/*/bin/*)
			kill "-$1" "$pid" 2>/dev/null && found=$((found + 1))
			;;
		esac
	done
	echo "$found"
}

kill_leftovers() {
	[ "$(kill_rke2_procs TERM)" -eq 0 ] && return 0
	i=0
	while [ "$i" -lt 50 ]; do
		sleep 0.2
		[ "$(kill_rke2_procs 0)" -eq 0 ] && return 0
		i=$((i + 1))
	done
	kill_rke2_procs KILL >/dev/null
}

have_systemd() {
	[ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1
}
`

// rke2KillallScript is bin/rke2-killall.sh.
const rke2KillallScript = `#!/bin/sh
# rke2-killall.sh of the RKE2 SIMULATOR: stops the rke2 services and kills
# what they left running (rke2, etcd, kube-apiserver).
set -u
if [ -z "${RKE2_SIM_ROOT:-}" ] && [ "$(id -u)" -ne 0 ]; then
	exec sudo "$0" "$@"
fi
` + rke2KillProcs + `
if have_systemd; then
	for unit in rke2-server.service rke2-agent.service; do
		systemctl stop "$unit" >/dev/null 2>&1 || true
	done
fi
kill_leftovers
exit 0
`

// rke2UninstallScript is bin/rke2-uninstall.sh. Every step tolerates what
// an earlier run already removed, so it succeeds when run twice.
const rke2UninstallScript = `#!/bin/sh
# rke2-uninstall.sh of the RKE2 SIMULATOR: stops and removes rke2 (units,
# binaries, configuration and data).
set -u
if [ -z "${RKE2_SIM_ROOT:-}" ] && [ "$(id -u)" -ne 0 ]; then
	exec sudo "$0" "$@"
fi
` + rke2KillProcs + `
if have_systemd; then
	for unit in rke2-server.service rke2-agent.service; do
		systemctl disable --now "$unit" >/dev/null 2>&1 || true
		systemctl reset-failed "$unit" >/dev/null 2>&1 || true
	done
fi
if [ -x "$ROOT/usr/local/bin/rke2-killall.sh" ]; then
	"$ROOT/usr/local/bin/rke2-killall.sh" || true
fi
kill_leftovers

rm -f "$ROOT"/usr/local/bin/rke2*
for dir in "$ROOT/usr/local/lib/systemd/system" "$ROOT/etc/systemd/system"; do
	rm -f "$dir/rke2-server.service" "$dir/rke2-agent.service" \
		"$dir/rke2-server.env" "$dir/rke2-agent.env"
done
rm -rf "$ROOT/usr/local/share/rke2" "$ROOT/etc/rancher/rke2" \
	"$ROOT/var/lib/rancher/rke2" "$ROOT/var/lib/kubelet"
rmdir "$ROOT/etc/rancher" "$ROOT/var/lib/rancher" 2>/dev/null || true
if have_systemd; then
	systemctl daemon-reload || true
fi
exit 0
`
