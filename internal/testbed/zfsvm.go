package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// This file runs real OpenZFS for tests: Linux hosts here have no loadable
// kernel modules, so ZFS runs in a qemu VM (software emulation, TCG) booted
// from a cached Debian image, with sparse raw files as hot-pluggable data
// disks. Tests reach the guest over SSH as root and inject faults through
// QMP (unplugging disks, cutting the network link).

// zfsImageRecipe builds the VM image; its hash names the cache directory.
//
//go:embed zfsvm/build-image.sh
var zfsImageRecipe []byte

// zfsImageLayout versions what the Go side expects of an image directory
// beyond the recipe itself; bumping it forces a rebuild.
const zfsImageLayout = "zfs-vm-image/1"

// DebianMirrorEnv overrides the Debian archive URI that the image build
// would otherwise read from the machine's apt sources.
const DebianMirrorEnv = "HOMELAB_DEBIAN_MIRROR"

// Files of an image directory, as written by the recipe.
const (
	zfsImageRootfs     = "rootfs.raw"
	zfsImageKernel     = "vmlinuz"
	zfsImageInitrd     = "initrd.img"
	zfsImageKey        = "id_ed25519"
	zfsImageHostKeyPub = "ssh_host_ed25519_key.pub"
)

// Files of a VM directory.
const (
	zfsVMOverlay    = "overlay.qcow2"
	zfsVMQMPSocket  = "qmp.sock"
	zfsVMConsoleLog = "console.log"
	zfsVMQEMULog    = "qemu.log"
	zfsVMKnownHosts = "known_hosts"
	zfsVMKey        = "id_ed25519"
)

const (
	// qemuBinary and qemuImgBinary come with Debian's qemu-system-x86 and
	// qemu-utils.
	qemuBinary    = "qemu-system-x86_64"
	qemuImgBinary = "qemu-img"
	// zfsVMHost is where the guest's SSH port is forwarded.
	zfsVMHost = "127.0.0.1"
	// zfsVMDefaultName is the image's hostname and qemu's default -name.
	zfsVMDefaultName = "zfs-lab"
	// lanTapFD is the descriptor of the LAN tap in qemu (ExtraFiles[0]) and
	// lanNICID the qemu id of the LAN NIC.
	lanTapFD = 3
	lanNICID = "nic1"
	// zfsVMBootTimeout caps waiting for a booted guest (about 25 s under TCG
	// on an idle machine) when ctx allows longer.
	zfsVMBootTimeout = 5 * time.Minute
	// zfsVMOpTimeout caps one QMP or guest operation when ctx allows longer.
	zfsVMOpTimeout = 2 * time.Minute
	// zfsVMStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	zfsVMStopGrace = 10 * time.Second
	// zfsVMPortAttempts bounds retries when the forwarded port was taken
	// between picking it and qemu binding it.
	zfsVMPortAttempts = 3
	// sshDialTimeout bounds the TCP connect and sshHandshakeTimeout the SSH
	// handshake of one connection to the guest.
	sshDialTimeout      = 5 * time.Second
	sshHandshakeTimeout = 20 * time.Second
	bootPollInterval    = time.Second
	// maxDataDisks keeps the data disks within the free PCI slots.
	maxDataDisks = 16
	// maxUnixSocketPath is the longest path a unix socket address holds.
	maxUnixSocketPath = 107
	// consoleTailInError bounds the console log quoted in boot errors.
	consoleTailInError = 3000
)

// ZFSImage is a cached, bootable VM image with OpenZFS. Its files are
// shared by every VM and must not be modified.
type ZFSImage struct {
	// Dir is <CacheDir>/zfs-vm-<recipe hash>.
	Dir string
	// Rootfs is the ext4 root filesystem (label "rootfs"), used read-only
	// as the backing file of each VM's copy-on-write overlay.
	Rootfs string
	// Kernel and Initrd are booted directly by qemu.
	Kernel string
	Initrd string
	// KeyPath is the OpenSSH private key authorized for root in the image.
	KeyPath string
	// HostKeyLine is the image's SSH host key in authorized_keys format
	// ("ssh-ed25519 AAAA..."), without comment.
	HostKeyLine string
}

// EnsureZFSImage returns the cached ZFS VM image, building it first if it
// is missing or incomplete. The image directory is named after the hash of
// the recipe (zfsvm/build-image.sh), so editing the recipe builds a new
// image; directories of other hashes are left alone. A cold build takes
// about five minutes and needs root, debootstrap and e2fsprogs and the
// Debian archive of the machine's apt sources (see DebianMirror).
// Concurrent callers, in this or other processes, serialize on a file lock
// so that only one builds. logf receives progress messages and may be nil.
func EnsureZFSImage(ctx context.Context, logf func(string, ...any)) (*ZFSImage, error) {
	logf = logfOrNop(logf)
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	name := "zfs-vm-" + zfsImageHash()
	dir := filepath.Join(cache, name)
	var img *ZFSImage
	err = withFileLock(ctx, filepath.Join(cache, name+".lock"), func() error {
		var loadErr error
		if img, loadErr = loadZFSImage(dir); loadErr == nil {
			return nil
		}
		if !errors.Is(loadErr, fs.ErrNotExist) || dirExists(dir) {
			logf("cached ZFS VM image %s is unusable (%v); rebuilding", dir, loadErr)
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("removing broken image: %w", err)
			}
		}
		if err := buildZFSImage(ctx, cache, dir, logf); err != nil {
			return err
		}
		var err error
		img, err = loadZFSImage(dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring ZFS VM image: %w", err)
	}
	return img, nil
}

// zfsImageHash is the first 12 hex digits of the SHA-256 of everything that
// determines the image: the recipe and the Go side's layout version.
func zfsImageHash() string {
	h := sha256.New()
	h.Write([]byte(zfsImageLayout))
	h.Write([]byte{0})
	h.Write(zfsImageRecipe)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// dirExists reports whether path is an existing directory.
func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// loadZFSImage describes the complete image in dir; an error wrapping
// fs.ErrNotExist means it is not there (or lacks a file).
func loadZFSImage(dir string) (*ZFSImage, error) {
	img := &ZFSImage{
		Dir:     dir,
		Rootfs:  filepath.Join(dir, zfsImageRootfs),
		Kernel:  filepath.Join(dir, zfsImageKernel),
		Initrd:  filepath.Join(dir, zfsImageInitrd),
		KeyPath: filepath.Join(dir, zfsImageKey),
	}
	for _, p := range []string{img.Rootfs, img.Kernel, img.Initrd, img.KeyPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	key, err := readAuthorizedKey(filepath.Join(dir, zfsImageHostKeyPub))
	if err != nil {
		return nil, err
	}
	img.HostKeyLine = authorizedKeyLine(key)
	return img, nil
}

// readAuthorizedKey parses a public key file in authorized_keys format.
func readAuthorizedKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return key, nil
}

// authorizedKeyLine formats key as "type base64" without comment.
func authorizedKeyLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// buildZFSImage runs the recipe into a temporary directory next to dir and
// renames the result into place, so dir only ever holds a complete image.
// The caller holds the image lock.
func buildZFSImage(ctx context.Context, cache, dir string, logf func(string, ...any)) error {
	if err := allowBuild(ctx, "the ZFS VM image"); err != nil {
		return err
	}
	if err := checkZFSImagePrerequisites(); err != nil {
		return err
	}
	mirror, err := DebianMirror()
	if err != nil {
		return err
	}
	removeStaleImageBuilds(cache, filepath.Base(dir), logf)
	work, err := os.MkdirTemp(cache, "."+filepath.Base(dir)+".build-")
	if err != nil {
		return fmt.Errorf("creating image build dir: %w", err)
	}
	defer os.RemoveAll(work)

	script := filepath.Join(work, "build-image.sh")
	if err := os.WriteFile(script, zfsImageRecipe, 0o755); err != nil {
		return fmt.Errorf("writing image recipe: %w", err)
	}
	out := filepath.Join(work, "image")
	start := time.Now()
	logf("building the ZFS VM image into %s from %s (about five minutes)", dir, mirror)
	if err := runImageRecipe(ctx, script, out, mirror, logf); err != nil {
		return err
	}
	if _, err := loadZFSImage(out); err != nil {
		return fmt.Errorf("image recipe finished without its outputs: %w", err)
	}
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("installing the image: %w", err)
	}
	logf("built the ZFS VM image in %s", time.Since(start).Round(time.Second))
	return nil
}

// checkZFSImagePrerequisites fails clearly when the image cannot be built.
func checkZFSImagePrerequisites() error {
	if err := requireRoot("building the ZFS VM image"); err != nil {
		return err
	}
	for _, tool := range []string{"debootstrap", "mke2fs", "chroot", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed to build the ZFS VM image (run scripts/install-deps): %w", tool, err)
		}
	}
	return nil
}

// removeStaleImageBuilds deletes build directories left by killed builds of
// the image named name; the caller holds its lock, so none is in progress.
// Builds run in their own mount namespace, so no bind mount of /dev or /proc
// is visible below them from here.
func removeStaleImageBuilds(cache, name string, logf func(string, ...any)) {
	stale, _ := filepath.Glob(filepath.Join(cache, "."+name+".build-*"))
	for _, d := range stale {
		logf("removing stale image build %s", d)
		_ = os.RemoveAll(d)
	}
}

// runImageRecipe runs the recipe script as root in a private mount
// namespace: the bind mounts of its chroot vanish with its processes even if
// they are killed before the script's own cleanup runs. Progress lines
// ("build-image: ...") go to logf; on failure the error quotes the output.
func runImageRecipe(ctx context.Context, script, out, mirror string, logf func(string, ...any)) error {
	var output bytes.Buffer
	progress := &lineWriter{fn: func(line string) {
		if strings.HasPrefix(line, "build-image:") {
			logf("%s", line)
		}
	}}
	w := io.MultiWriter(&output, progress)
	cmd := exec.Command("bash", script, out, mirror)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Do not wait forever for output pipes that a stray daemon of the
	// chroot may hold open.
	cmd.WaitDelay = zfsVMStopGrace
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes "/" a private mount
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the image recipe: %w", err)
	}
	waitErr := waitProcessGroup(ctx, cmd)
	progress.Flush()
	if waitErr != nil {
		return fmt.Errorf("image recipe failed: %w\n%s", waitErr, tail(output.Bytes(), maxOutputInError))
	}
	return nil
}

// waitProcessGroup waits for cmd, which leads its own process group. When
// ctx ends first the whole group gets SIGTERM (the recipe cleans up), then
// SIGKILL after a grace period.
func waitProcessGroup(ctx context.Context, cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(zfsVMStopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers that ignored SIGTERM
	return ctx.Err()
}

// lineWriter calls fn for every complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush passes on a final unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// DebianMirror returns the URI of the Debian archive this machine installs
// its packages from: $HOMELAB_DEBIAN_MIRROR when set, else the first
// non-security "deb" source of /etc/apt/sources.list.d/*.sources (deb822
// format), else of /etc/apt/sources.list and sources.list.d/*.list.
func DebianMirror() (string, error) {
	if m := os.Getenv(DebianMirrorEnv); m != "" {
		return m, nil
	}
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	sort.Strings(deb822)
	for _, f := range deb822 {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if uri := mirrorFromDeb822(string(data)); uri != "" {
			return uri, nil
		}
	}
	oneLine, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	sort.Strings(oneLine)
	for _, f := range append([]string{"/etc/apt/sources.list"}, oneLine...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if uri := mirrorFromSourcesList(string(data)); uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no Debian archive found in the apt sources of this machine (set %s)", DebianMirrorEnv)
}

// mirrorFromDeb822 returns the first usable URI of a "Types: deb" stanza
// in deb822 sources, or "".
func mirrorFromDeb822(text string) string {
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !containsField(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			if usableMirror(uri, strings.Fields(fields["suites"])) {
				return uri
			}
		}
	}
	return ""
}

// mirrorFromSourcesList returns the first usable URI of a "deb" line in
// one-line-style sources, or "".
func mirrorFromSourcesList(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options: [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && usableMirror(f[0], f[1:2]) {
			return f[0]
		}
	}
	return ""
}

// usableMirror accepts plain http(s) or file archives that serve a suite
// other than the security updates (which have no backports).
func usableMirror(uri string, suites []string) bool {
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") && !strings.HasPrefix(uri, "file:") {
		return false
	}
	if strings.Contains(uri, "security") {
		return false
	}
	for _, s := range suites {
		if !strings.HasSuffix(s, "-security") {
			return true
		}
	}
	return false
}

// containsField reports whether a whitespace-separated field list has v.
func containsField(list, v string) bool {
	for _, f := range strings.Fields(list) {
		if f == v {
			return true
		}
	}
	return false
}

// ZFSVMOptions configures StartZFSVM. Zero values select the defaults.
type ZFSVMOptions struct {
	// Disks is the number of data disks, 6 by default (at most 16).
	Disks int
	// NoDisks gives the VM no data disks at all (Disks must be 0), e.g. for
	// the nodes of a cluster. Reset then only restores the links.
	NoDisks bool
	// DiskSize is the size of each sparse raw data disk, "1G" by default
	// (a number with an optional K, M, G or T suffix, powers of 1024).
	DiskSize string
	// MemoryMB is the guest memory, 2048 by default.
	MemoryMB int
	// CPUs is the number of guest CPUs, 2 by default.
	CPUs int
	// Name is qemu's -name and, when set, the guest's hostname (written to
	// /etc/hostname and /etc/hosts once SSH works). By default the guest
	// keeps the image's hostname, "zfs-lab".
	Name string
	// LAN, when set, adds a second NIC (eth1 in the guest, on a tap of the
	// LAN's bridge, with a stable locally administered MAC derived from
	// LANAddr) and configures LANAddr on it once SSH works, persistently
	// (/etc/network/interfaces). LANAddr is then required: an address of
	// the LAN such as LAN.Addr(i). The LAN must outlive the VM.
	LAN     *LAN
	LANAddr string
	// Detach makes qemu outlive this process (used by the demo lab).
	// Otherwise it is a child of this process, killed by Stop or when this
	// process dies.
	Detach bool
	// Logf receives progress messages (the image build); may be nil.
	Logf func(string, ...any)
}

// withDefaults fills in zero fields.
func (o ZFSVMOptions) withDefaults() ZFSVMOptions {
	if o.Disks == 0 && !o.NoDisks {
		o.Disks = 6
	}
	if o.DiskSize == "" {
		o.DiskSize = "1G"
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 2048
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	o.Logf = logfOrNop(o.Logf)
	return o
}

// ZFSVM is a running qemu VM with OpenZFS 2.3, reachable over SSH as root
// on a forwarded loopback port, with data disks that tests may unplug and
// plug back and a network link they may cut.
type ZFSVM struct {
	// SSHHost and SSHPort are where the guest's sshd is forwarded.
	SSHHost string
	SSHPort int
	// KeyPath is the root login key (OpenSSH format, mode 0600) in Dir;
	// PrivateKeyPEM is its content.
	KeyPath       string
	PrivateKeyPEM []byte
	// HostKeyLine is the guest's host key in authorized_keys format and
	// KnownHostsPath a known_hosts file trusting it for "[SSHHost]:SSHPort".
	HostKeyLine    string
	KnownHostsPath string
	// Disks are the data disks as the guest names them:
	// /dev/disk/by-id/virtio-disk1, ... (1-based, as UnplugDisk counts).
	Disks []string
	// QMPPath is qemu's QMP control socket.
	QMPPath string
	// Dir holds the VM's overlay, data disks, logs, key and sockets.
	Dir string
	// ConsoleLogPath is the guest's serial console output.
	ConsoleLogPath string
	// PID is the qemu process and QEMUPath its executable (as
	// /proc/PID/exe names it, for ProcessAlive and TerminateProcess).
	PID      int
	QEMUPath string
	// Name is the guest's hostname ("zfs-lab" unless ZFSVMOptions.Name).
	Name string
	// LANAddr is the guest's address on ZFSVMOptions.LAN (on LANIf, "eth1")
	// with prefix length LANPrefix; all empty or zero without a LAN.
	LANAddr   string
	LANIf     string
	LANPrefix int

	hostKey ssh.PublicKey
	signer  ssh.Signer
	detach  bool
	proc    peerProc // qemu
	lan     *LAN     // the LAN of the second NIC, or nil

	sshMu  sync.Mutex
	client *ssh.Client // shared by Run calls; nil until dialled
	qmpMu  sync.Mutex  // qemu serves one QMP client at a time
	linkMu sync.Mutex
	// linkDown is set by SetLink(false); guest-side waits are skipped
	// while the guest is unreachable.
	linkDown bool

	stopped stopOnce
}

// StartZFSVM boots a ZFS VM with its files in dir (created if needed; any
// previous disks there are replaced by empty ones) and waits until root can
// log in over SSH, `zpool version` works and every data disk is visible;
// then it sets the guest's hostname and LAN address if opts asks for them.
// It builds the image first if needed (EnsureZFSImage). Booting takes about
// 25 s under TCG. The wait is bounded by ctx and an internal timeout; on
// failure the error quotes the guest's console. The caller must Stop the VM.
func StartZFSVM(ctx context.Context, dir string, opts ZFSVMOptions) (*ZFSVM, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	diskSize, err := parseSize(opts.DiskSize)
	if err != nil {
		return nil, fmt.Errorf("ZFS VM disk size: %w", err)
	}
	qemu, err := checkZFSVMPrerequisites()
	if err != nil {
		return nil, err
	}
	var img *ZFSImage
	var v *ZFSVM
	err = peerStart{
		ensure: func(ctx context.Context) (err error) {
			img, err = EnsureZFSImage(ctx, opts.Logf)
			return err
		},
		prepare: func(ctx context.Context) (err error) {
			if v, err = prepareZFSVM(ctx, dir, img, qemu, opts, diskSize); err != nil {
				return err
			}
			noteSecretFile("SSH private key (ZFS VM root)", v.KeyPath)
			return nil
		},
		timeout:  zfsVMBootTimeout,
		attempts: zfsVMPortAttempts,
		launch: func(ctx context.Context) error {
			if err := v.boot(ctx, img, opts); err != nil {
				return fmt.Errorf("starting ZFS VM in %s: %w", v.Dir, err)
			}
			return nil
		},
		retry: func(err error) bool { return errors.Is(err, errPortInUse) },
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// validate checks options that withDefaults filled in.
func (o ZFSVMOptions) validate() error {
	switch {
	case o.NoDisks && o.Disks != 0:
		return fmt.Errorf("ZFS VM: NoDisks with %d data disks requested", o.Disks)
	case !o.NoDisks && (o.Disks < 1 || o.Disks > maxDataDisks):
		return fmt.Errorf("ZFS VM: %d data disks requested, want 1..%d", o.Disks, maxDataDisks)
	case o.Name != "" && !hostnameRE.MatchString(o.Name):
		return fmt.Errorf("ZFS VM: name %q is not a hostname (lower-case letters, digits and inner dashes, at most 63)", o.Name)
	case o.LAN == nil && o.LANAddr != "":
		return fmt.Errorf("ZFS VM: LANAddr %q without a LAN", o.LANAddr)
	case o.LAN != nil:
		if err := o.LAN.checkNodeAddr(o.LANAddr); err != nil {
			return fmt.Errorf("ZFS VM: LANAddr: %w", err)
		}
	}
	return nil
}

// hostnameRE matches a guest hostname: one DNS label.
var hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkZFSVMPrerequisites locates qemu and fails clearly when the VM
// cannot run here. It returns qemu's resolved path.
func checkZFSVMPrerequisites() (string, error) {
	qemu, err := exec.LookPath(qemuBinary)
	if err != nil {
		return "", fmt.Errorf("%s is needed for the ZFS VM (Debian's qemu-system-x86; run scripts/install-deps): %w", qemuBinary, err)
	}
	if _, err := exec.LookPath(qemuImgBinary); err != nil {
		return "", fmt.Errorf("%s is needed for the ZFS VM (Debian's qemu-utils; run scripts/install-deps): %w", qemuImgBinary, err)
	}
	resolved, err := filepath.EvalSymlinks(qemu)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", qemu, err)
	}
	return resolved, nil
}

// prepareZFSVM creates the VM directory: overlay, data disks and key.
func prepareZFSVM(ctx context.Context, dir string, img *ZFSImage, qemu string, opts ZFSVMOptions, diskSize int64) (*ZFSVM, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving ZFS VM dir: %w", err)
	}
	v := &ZFSVM{
		SSHHost:        zfsVMHost,
		HostKeyLine:    img.HostKeyLine,
		KnownHostsPath: filepath.Join(dir, zfsVMKnownHosts),
		KeyPath:        filepath.Join(dir, zfsVMKey),
		QMPPath:        filepath.Join(dir, zfsVMQMPSocket),
		Dir:            dir,
		ConsoleLogPath: filepath.Join(dir, zfsVMConsoleLog),
		QEMUPath:       qemu,
		Name:           zfsVMDefaultName,
		detach:         opts.Detach,
	}
	v.proc = peerProc{name: "qemu", exe: qemu, log: filepath.Join(dir, zfsVMQEMULog), grace: zfsVMStopGrace, pid: &v.PID}
	if opts.Name != "" {
		v.Name = opts.Name
	}
	if opts.LAN != nil {
		v.LANAddr, v.LANPrefix, v.lan = opts.LANAddr, opts.LAN.Prefix, opts.LAN
	}
	if len(v.QMPPath) > maxUnixSocketPath {
		return nil, fmt.Errorf("ZFS VM dir %q is too long for a unix socket path", dir)
	}
	for i := 1; i <= opts.Disks; i++ {
		v.Disks = append(v.Disks, guestDiskPath(i))
	}
	if v.hostKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(img.HostKeyLine)); err != nil {
		return nil, fmt.Errorf("parsing image host key: %w", err)
	}
	if v.PrivateKeyPEM, err = os.ReadFile(img.KeyPath); err != nil {
		return nil, fmt.Errorf("reading image root key: %w", err)
	}
	if v.signer, err = ssh.ParsePrivateKey(v.PrivateKeyPEM); err != nil {
		return nil, fmt.Errorf("parsing image root key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating ZFS VM dir: %w", err)
	}
	if err := writeFileMode(v.KeyPath, v.PrivateKeyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing root key: %w", err)
	}
	if err := createOverlay(ctx, img.Rootfs, filepath.Join(dir, zfsVMOverlay)); err != nil {
		return nil, err
	}
	for i := 1; i <= opts.Disks; i++ {
		if err := createSparseFile(v.diskFile(i), diskSize); err != nil {
			return nil, fmt.Errorf("creating data disk %d: %w", i, err)
		}
	}
	return v, nil
}

// guestDiskPath is the stable name of data disk i in the guest: qemu's
// virtio serial "disk<i>" becomes /dev/disk/by-id/virtio-disk<i>.
func guestDiskPath(i int) string {
	return "/dev/disk/by-id/virtio-" + diskSerial(i)
}

func diskSerial(i int) string   { return "disk" + strconv.Itoa(i) }
func diskDeviceID(i int) string { return "vd" + strconv.Itoa(i) }
func diskNodeName(i int) string { return "d" + strconv.Itoa(i) }

// diskFile is the host file backing data disk i.
func (v *ZFSVM) diskFile(i int) string {
	return filepath.Join(v.Dir, diskSerial(i)+".raw")
}

// createOverlay makes a fresh qcow2 overlay over the read-only image.
func createOverlay(ctx context.Context, base, overlay string) error {
	_ = os.Remove(overlay)
	cmd := exec.CommandContext(ctx, qemuImgBinary, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("creating root overlay: %w: %s", err, tail(out, maxOutputInError))
	}
	return nil
}

// createSparseFile replaces path by an empty sparse file of size bytes.
func createSparseFile(path string, size int64) error {
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseSize parses "512M", "1G", "1GiB", "1073741824" (powers of 1024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// boot starts qemu on a free forwarded port and waits for the guest.
func (v *ZFSVM) boot(ctx context.Context, img *ZFSImage, opts ZFSVMOptions) error {
	port, err := freePort(v.SSHHost)
	if err != nil {
		return err
	}
	v.SSHPort = port
	line := knownhosts.Line([]string{net.JoinHostPort(v.SSHHost, strconv.Itoa(port))}, v.hostKey) + "\n"
	if err := os.WriteFile(v.KnownHostsPath, []byte(line), 0o644); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	if err := v.launch(img, opts); err != nil {
		return err
	}
	err = v.waitReady(ctx)
	if err == nil {
		err = v.configureGuest(ctx, opts)
	}
	if err != nil {
		v.proc.abort()
		return err
	}
	return nil
}

// qemuArgs is the qemu command line of the VM.
func (v *ZFSVM) qemuArgs(img *ZFSImage, opts ZFSVMOptions) []string {
	args := []string{
		"-name", v.Name,
		"-accel", "tcg,thread=multi",
		"-m", strconv.Itoa(opts.MemoryMB),
		"-smp", strconv.Itoa(opts.CPUs),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-monitor", "none",
		"-serial", "file:" + v.ConsoleLogPath,
		"-kernel", img.Kernel,
		"-initrd", img.Initrd,
		// Under emulation on a loaded host the kernel's IO-APIC timer check
		// can fail and panic the boot (no_timer_check), and its crypto
		// self-tests were seen stuck in a soft lockup (cryptomgr.notests).
		"-append", "root=LABEL=rootfs rw console=ttyS0 net.ifnames=0 quiet no_timer_check cryptomgr.notests",
		"-blockdev", "driver=qcow2,node-name=root,file.driver=file,file.filename=" + qemuOptEscape(filepath.Join(v.Dir, zfsVMOverlay)),
		"-device", "virtio-blk-pci,drive=root,serial=rootfs,id=vdroot",
	}
	for i := 1; i <= len(v.Disks); i++ {
		// -blockdev nodes outlive device_del, so a disk is plugged back
		// with device_add alone.
		args = append(args,
			"-blockdev", fmt.Sprintf("driver=raw,node-name=%s,discard=unmap,file.driver=file,file.filename=%s",
				diskNodeName(i), qemuOptEscape(v.diskFile(i))),
			"-device", "virtio-blk-pci,"+diskDeviceOpts(i))
	}
	args = append(args,
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:%s:%d-:22", v.SSHHost, v.SSHPort),
		// No option ROM: the kernel is booted directly, never over PXE.
		"-device", "virtio-net-pci,netdev=n0,id=nic0,romfile=")
	if v.lan != nil {
		// Added after nic0, so the guest names it eth1.
		args = append(args,
			"-netdev", fmt.Sprintf("tap,id=n1,fd=%d", lanTapFD),
			"-device", "virtio-net-pci,netdev=n1,id="+lanNICID+",mac="+lanMAC(v.LANAddr)+",romfile=")
	}
	return append(args,
		"-device", "virtio-rng-pci",
		"-qmp", "unix:"+qemuOptEscape(v.QMPPath)+",server=on,wait=off",
	)
}

// diskDeviceOpts are the virtio-blk-pci properties of data disk i.
func diskDeviceOpts(i int) string {
	return fmt.Sprintf("drive=%s,serial=%s,id=%s", diskNodeName(i), diskSerial(i), diskDeviceID(i))
}

// qemuOptEscape escapes a value for qemu's comma-separated option syntax.
func qemuOptEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// launch starts qemu, as a child killed with this process or detached in
// its own session.
func (v *ZFSVM) launch(img *ZFSImage, opts ZFSVMOptions) error {
	_ = os.Remove(v.QMPPath)
	_ = os.Remove(v.ConsoleLogPath)
	cmd := exec.Command(v.QEMUPath, v.qemuArgs(img, opts)...)
	cmd.Dir = v.Dir
	if v.lan != nil {
		// qemu gets the tap as fd 3 (lanTapFD); this copy is closed once
		// qemu has its own.
		tap, _, err := v.lan.OpenTap()
		if err != nil {
			return err
		}
		defer tap.Close()
		cmd.ExtraFiles = []*os.File{tap}
	}
	return v.proc.start(cmd, v.detach)
}

// waitReady polls until the guest is usable: SSH login works, `zpool
// version` works and every data disk is visible. It fails early when qemu
// exits.
func (v *ZFSVM) waitReady(ctx context.Context) error {
	probe := "zpool version >/dev/null"
	if len(v.Disks) > 0 {
		probe += " && " + diskTestScript(v.Disks, "-b")
	}
	var lastErr error
	return waitUntil(ctx, bootPollInterval, func() (bool, error) {
		if !ProcessAlive(v.PID, "") {
			return false, v.bootFailure(errors.New("qemu exited during boot"))
		}
		lastErr = v.probe(ctx, probe)
		return lastErr == nil, nil
	}, func(err error) error {
		return v.bootFailure(fmt.Errorf("guest not ready on %s:%d: %w (last probe: %v)", v.SSHHost, v.SSHPort, err, lastErr))
	})
}

// configureGuest sets the hostname (opts.Name) and configures the LAN NIC
// (found by its MAC) with LANAddr, now and for later boots.
func (v *ZFSVM) configureGuest(ctx context.Context, opts ZFSVMOptions) error {
	if opts.Name == "" && v.lan == nil {
		return nil
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	out, err := v.Run(ctx, guestConfigScript(opts.Name, v.LANAddr, v.LANPrefix))
	if err != nil {
		return fmt.Errorf("configuring the guest: %w", err)
	}
	if v.lan != nil {
		ifname, ok := strings.CutPrefix(strings.TrimSpace(out), "lan-if=")
		if !ok || ifname == "" {
			return fmt.Errorf("configuring the guest: unexpected output %q", out)
		}
		v.LANIf = ifname
	}
	return nil
}

// guestConfigScript is the guest side of configureGuest; it prints
// "lan-if=<interface>" when it configured a LAN address.
func guestConfigScript(name, lanAddr string, prefix int) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	if name != "" {
		hostLine := "127.0.1.1 " + name
		if lanAddr != "" {
			hostLine = lanAddr + " " + name
		}
		fmt.Fprintf(&b, `echo %[1]s >/etc/hostname
hostname %[1]s
cat >/etc/hosts <<'EOF'
127.0.0.1 localhost
%[2]s
::1 localhost ip6-localhost ip6-loopback
EOF
`, name, hostLine)
	}
	if lanAddr != "" {
		fmt.Fprintf(&b, `mac=%[1]s
dev=
for d in /sys/class/net/*; do
  [ "$(cat "$d/address")" = "$mac" ] && dev=${d##*/}
done
[ -n "$dev" ] || { echo "no NIC with MAC $mac" >&2; exit 1; }
ip addr flush dev "$dev"
ip addr add %[2]s/%[3]d dev "$dev"
ip link set "$dev" up
grep -q "^iface $dev " /etc/network/interfaces ||
  printf '\nauto %%s\niface %%s inet static\n    address %%s\n' "$dev" "$dev" %[2]s/%[3]d >>/etc/network/interfaces
echo "lan-if=$dev"
`, lanMAC(lanAddr), lanAddr, prefix)
	}
	return b.String()
}

// probe runs script once; connection failures drop the cached client.
func (v *ZFSVM) probe(ctx context.Context, script string) error {
	pctx, cancel := context.WithTimeout(ctx, sshHandshakeTimeout)
	defer cancel()
	_, err := v.Run(pctx, script)
	return err
}

// diskTestScript is a shell condition true when `test FLAG` holds for every
// disk.
func diskTestScript(disks []string, flag string) string {
	parts := make([]string, len(disks))
	for i, d := range disks {
		parts[i] = "test " + flag + " " + d
	}
	return strings.Join(parts, " && ")
}

// bootFailure decorates a boot error with the qemu log and console tail,
// marking a forwarded port that was taken so that StartZFSVM retries.
func (v *ZFSVM) bootFailure(err error) error {
	qlog, _ := os.ReadFile(filepath.Join(v.Dir, zfsVMQEMULog))
	if bytes.Contains(qlog, []byte("host forwarding rule")) {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	console, _ := os.ReadFile(v.ConsoleLogPath)
	return fmt.Errorf("%w\nqemu log:\n%s\nconsole %s (tail):\n%s", err,
		tail(qlog, maxOutputInError), v.ConsoleLogPath, tail(console, consoleTailInError))
}

// Stop powers the VM off (SIGTERM to qemu, SIGKILL after a grace period)
// and closes the SSH connection. The VM's directory is left in place. It is
// idempotent and also stops a detached VM started by this process.
func (v *ZFSVM) Stop() error {
	return v.stopped.do(func() error {
		v.dropClient(nil)
		if err := v.proc.terminate(); err != nil {
			return fmt.Errorf("stopping ZFS VM %s: %w", v.Dir, err)
		}
		return nil
	})
}

// SSHAddr returns "host:port" of the guest's forwarded sshd.
func (v *ZFSVM) SSHAddr() string {
	return net.JoinHostPort(v.SSHHost, strconv.Itoa(v.SSHPort))
}

// ClientConfig returns an ssh.ClientConfig logging in as root with the
// image's key and accepting only the guest's host key.
func (v *ZFSVM) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(v.signer)},
		HostKeyCallback: ssh.FixedHostKey(v.hostKey),
		Timeout:         sshDialTimeout,
	}
}

// Run runs script as root in the guest (through root's shell, bash) and
// returns its combined stdout and stderr. A non-zero exit status is an
// error wrapping *ssh.ExitError. Connections are reused between calls;
// when ctx ends first the connection is closed, which also ends other
// commands running on it.
func (v *ZFSVM) Run(ctx context.Context, script string) (string, error) {
	var out syncBuffer
	err := v.run(ctx, script, &out, &out)
	if err != nil {
		return out.String(), fmt.Errorf("running in ZFS VM: %w\n%s", err, tail([]byte(out.String()), maxOutputInError))
	}
	return out.String(), nil
}

// Output is Run with stdout and stderr kept apart, e.g. to parse the JSON
// a command prints while it warns on stderr.
func (v *ZFSVM) Output(ctx context.Context, script string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	if err := v.run(ctx, script, &o, &e); err != nil {
		return o.String(), e.String(), fmt.Errorf("running in ZFS VM: %w\n%s", err, tail(e.Bytes(), maxOutputInError))
	}
	return o.String(), e.String(), nil
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// session's stdout and stderr copiers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs script in a new session on the shared connection, redialling
// once if the cached connection turns out to be dead before the script
// starts.
func (v *ZFSVM) run(ctx context.Context, script string, stdout, stderr io.Writer) error {
	for attempt := 1; ; attempt++ {
		c, err := v.sshClient(ctx)
		if err != nil {
			return err
		}
		started, err := runSessionCtx(ctx, c, script, stdout, stderr)
		if err == nil {
			return nil
		}
		var exitErr *ssh.ExitError
		if errors.As(err, &exitErr) {
			return err
		}
		v.dropClient(c)
		if started || attempt >= 2 || ctx.Err() != nil {
			return err
		}
	}
}

// runSessionCtx runs script in a new session of c. When ctx ends first it
// closes c so that the blocked session returns. started reports whether the
// session was opened (and the script may have run).
func runSessionCtx(ctx context.Context, c *ssh.Client, script string, stdout, stderr io.Writer) (started bool, err error) {
	type result struct {
		started bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		sess, err := c.NewSession()
		if err != nil {
			done <- result{false, fmt.Errorf("opening SSH session: %w", err)}
			return
		}
		defer sess.Close()
		sess.Stdout, sess.Stderr = stdout, stderr
		done <- result{true, sess.Run(script)}
	}()
	select {
	case r := <-done:
		return r.started, r.err
	case <-ctx.Done():
		c.Close()
		r := <-done
		return r.started, fmt.Errorf("%w (%v)", ctx.Err(), r.err)
	}
}

// sshClient returns the shared connection, dialling it if needed.
func (v *ZFSVM) sshClient(ctx context.Context) (*ssh.Client, error) {
	v.sshMu.Lock()
	defer v.sshMu.Unlock()
	if v.client != nil {
		return v.client, nil
	}
	c, err := v.DialSSH(ctx)
	if err != nil {
		return nil, err
	}
	v.client = c
	return c, nil
}

// dropClient closes the shared connection if it is c (or any, for nil).
func (v *ZFSVM) dropClient(c *ssh.Client) {
	v.sshMu.Lock()
	defer v.sshMu.Unlock()
	if v.client != nil && (c == nil || v.client == c) {
		v.client.Close()
		v.client = nil
	}
}

// DialSSH opens a new SSH connection to the guest as root. Connecting and
// the handshake are bounded by ctx and by internal timeouts (with the link
// down, the forwarded port still accepts TCP but the handshake never
// completes). The caller closes the client.
func (v *ZFSVM) DialSSH(ctx context.Context) (*ssh.Client, error) {
	d := net.Dialer{Timeout: sshDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", v.SSHAddr())
	if err != nil {
		return nil, fmt.Errorf("connecting to ZFS VM sshd: %w", err)
	}
	deadline := time.Now().Add(sshHandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	sconn, chans, reqs, err := ssh.NewClientConn(conn, v.SSHAddr(), v.ClientConfig())
	if !stop() && err == nil {
		err = ctx.Err()
		sconn.Close()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SSH handshake with ZFS VM: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sconn, chans, reqs), nil
}

// opContext bounds one operation by zfsVMOpTimeout.
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, zfsVMOpTimeout)
}

// QMPExecute runs a QMP command (see qemu's QMP reference) on the VM and
// returns its "return" value; an error response is a *QMPError. args is nil
// or any value that marshals to a JSON object.
func (v *ZFSVM) QMPExecute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	var ret json.RawMessage
	err := v.withQMP(ctx, func(ctx context.Context, q *qmpClient) error {
		var err error
		ret, err = q.Execute(ctx, command, args)
		return err
	})
	return ret, err
}

// withQMP runs fn on a fresh QMP connection, bounded by opContext.
func (v *ZFSVM) withQMP(ctx context.Context, fn func(context.Context, *qmpClient) error) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	v.qmpMu.Lock()
	defer v.qmpMu.Unlock()
	q, err := dialQMP(ctx, v.QMPPath)
	if err != nil {
		return err
	}
	defer q.Close()
	return fn(ctx, q)
}

// checkDiskIndex validates a 1-based data disk number.
func (v *ZFSVM) checkDiskIndex(i int) error {
	if i < 1 || i > len(v.Disks) {
		return fmt.Errorf("ZFS VM has data disks 1..%d, not %d", len(v.Disks), i)
	}
	return nil
}

// UnplugDisk hot-unplugs data disk i (1-based) like pulling a drive: QMP
// device_del, then waiting for qemu's DEVICE_DELETED event, which comes
// once the guest released the device. While the link is up it also waits
// until the guest's /dev/disk/by-id name is gone. The disk's content is
// kept for ReplugDisk.
func (v *ZFSVM) UnplugDisk(ctx context.Context, i int) error {
	if err := v.checkDiskIndex(i); err != nil {
		return err
	}
	id := diskDeviceID(i)
	err := v.withQMP(ctx, func(ctx context.Context, q *qmpClient) error {
		if _, err := q.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
			return err
		}
		_, err := q.WaitEvent(ctx, "DEVICE_DELETED", func(data json.RawMessage) bool {
			var ev struct {
				Device string `json:"device"`
			}
			return json.Unmarshal(data, &ev) == nil && ev.Device == id
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("unplugging data disk %d: %w", i, err)
	}
	return v.waitGuestDisk(ctx, i, false)
}

// ReplugDisk plugs data disk i (1-based) back in with the same serial, so
// the guest sees the same /dev/disk/by-id name and content. While the link
// is up it waits until the guest shows the disk.
func (v *ZFSVM) ReplugDisk(ctx context.Context, i int) error {
	if err := v.checkDiskIndex(i); err != nil {
		return err
	}
	if err := v.plugDevice(ctx, i); err != nil {
		return fmt.Errorf("plugging data disk %d back: %w", i, err)
	}
	return v.waitGuestDisk(ctx, i, true)
}

// plugDevice adds the virtio-blk device of data disk i on its block node.
func (v *ZFSVM) plugDevice(ctx context.Context, i int) error {
	_, err := v.QMPExecute(ctx, "device_add", map[string]any{
		"driver": "virtio-blk-pci",
		"id":     diskDeviceID(i),
		"drive":  diskNodeName(i),
		"serial": diskSerial(i),
	})
	return err
}

// waitGuestDisk waits until data disk i is present (or absent) in the
// guest, unless the link is down.
func (v *ZFSVM) waitGuestDisk(ctx context.Context, i int, present bool) error {
	if v.isLinkDown() {
		return nil
	}
	cond := "-b " + v.Disks[i-1]
	if !present {
		cond = "! -e " + v.Disks[i-1]
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	script := fmt.Sprintf("for _ in $(seq 300); do udevadm settle -t 5; [ %s ] && exit 0; sleep 0.1; done; exit 1", cond)
	if _, err := v.Run(ctx, script); err != nil {
		return fmt.Errorf("waiting for the guest to see data disk %d %s: %w", i, map[bool]string{true: "plugged", false: "unplugged"}[present], err)
	}
	return nil
}

// pluggedDisks returns which data disk devices qemu currently has.
func (v *ZFSVM) pluggedDisks(ctx context.Context) (map[int]bool, error) {
	ret, err := v.QMPExecute(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"})
	if err != nil {
		return nil, fmt.Errorf("listing qemu devices: %w", err)
	}
	var props []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(ret, &props); err != nil {
		return nil, fmt.Errorf("decoding qom-list: %w", err)
	}
	plugged := map[int]bool{}
	for _, p := range props {
		for i := 1; i <= len(v.Disks); i++ {
			if p.Name == diskDeviceID(i) {
				plugged[i] = true
			}
		}
	}
	return plugged, nil
}

// SetLANLink sets the link state of the VM's LAN NIC (see SetLink), e.g. to
// cut a cluster node off its peers while SSH keeps working.
func (v *ZFSVM) SetLANLink(ctx context.Context, up bool) error {
	if v.lan == nil {
		return errors.New("ZFS VM has no LAN NIC")
	}
	if _, err := v.QMPExecute(ctx, "set_link", map[string]any{"name": lanNICID, "up": up}); err != nil {
		return fmt.Errorf("setting ZFS VM LAN link up=%t: %w", up, err)
	}
	return nil
}

// SetLink sets the link state of the VM's NIC, like pulling its cable: with
// the link down the forwarded SSH port still accepts TCP connections, but
// nothing reaches the guest. Taking the link down also drops the shared SSH
// connection, whose next use would stall.
func (v *ZFSVM) SetLink(ctx context.Context, up bool) error {
	if _, err := v.QMPExecute(ctx, "set_link", map[string]any{"name": "nic0", "up": up}); err != nil {
		return fmt.Errorf("setting ZFS VM link up=%t: %w", up, err)
	}
	v.linkMu.Lock()
	v.linkDown = !up
	v.linkMu.Unlock()
	if !up {
		v.dropClient(nil)
	}
	return nil
}

func (v *ZFSVM) isLinkDown() bool {
	v.linkMu.Lock()
	defer v.linkMu.Unlock()
	return v.linkDown
}

// Reset returns the VM to a clean state between tests in a few seconds: the
// links up, every data disk plugged in, no pool imported (each destroyed
// with `zpool destroy -f`, suspended ones cleared first), no ZFS label of an
// exported pool, no partition table or filesystem signature on any data
// disk (every data disk is discarded, so it reads as zeros), ZED running,
// the scan and raidz-expansion tunables at their defaults and an empty ZFS
// event log. It then verifies that all Disks exist and hold nothing. Other
// guest state (files, services, QMP settings such as I/O throttles) is
// left as it is. A VM without data disks (NoDisks) only gets its links
// (the LAN's too) up and a check that SSH works.
func (v *ZFSVM) Reset(ctx context.Context) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	if err := v.SetLink(ctx, true); err != nil {
		return fmt.Errorf("resetting ZFS VM: %w", err)
	}
	if v.lan != nil {
		if err := v.SetLANLink(ctx, true); err != nil {
			return fmt.Errorf("resetting ZFS VM: %w", err)
		}
	}
	if len(v.Disks) == 0 {
		if _, err := v.Run(ctx, "true"); err != nil {
			return fmt.Errorf("resetting ZFS VM: %w", err)
		}
		return nil
	}
	plugged, err := v.pluggedDisks(ctx)
	if err != nil {
		return fmt.Errorf("resetting ZFS VM: %w", err)
	}
	for i := 1; i <= len(v.Disks); i++ {
		if !plugged[i] {
			if err := v.plugDevice(ctx, i); err != nil {
				return fmt.Errorf("resetting ZFS VM: plugging data disk %d back: %w", i, err)
			}
		}
	}
	if out, err := v.Run(ctx, resetScript(v.Disks)); err != nil {
		return fmt.Errorf("resetting ZFS VM: %w", err)
	} else if strings.TrimSpace(out) != "reset ok" {
		return fmt.Errorf("resetting ZFS VM: unexpected output:\n%s", out)
	}
	return nil
}

// resetScript is the guest side of Reset. Every process costs tens of
// milliseconds under TCG, so it runs few of them: disks are emptied with one
// discard each (qemu punches holes into the sparse files, which then read as
// zeros), and only disks that still show a signature afterwards get the
// slower labelclear and wipefs treatment.
func resetScript(disks []string) string {
	return `set -u
disks="` + strings.Join(disks, " ") + `"
fail() { echo "reset: $*"; exit 1; }
# Replugged disks appear asynchronously.
for _ in $(seq 50); do
  missing=""
  for d in $disks; do [ -b "$d" ] || missing="$missing $d"; done
  [ -z "$missing" ] && break
  udevadm settle -t 5; sleep 0.2
done
[ -z "$missing" ] || fail "data disks missing:$missing"
devs=$(readlink -f $disks) || fail "resolving $disks"
# Imported pools: resume suspended ones (their disks are back), destroy all.
zpool list -H -o name,health >/run/reset-pools || fail "zpool list"
while read -r pool health; do
  [ "$health" = SUSPENDED ] && zpool clear "$pool"
  zpool destroy -f "$pool" || fail "cannot destroy pool $pool"
done </run/reset-pools
# Other filesystems mounted from the data disks.
while read -r src target _; do
  for dev in $devs; do
    case "$src" in "$dev"|"$dev"[0-9]*) umount -f "$target" || fail "umount $target";; esac
  done
done </proc/mounts
for dev in $devs; do
  blkdiscard -f "$dev" >/dev/null 2>&1 || echo "reset: discard of $dev failed" >&2
done
blockdev --rereadpt $devs || fail "re-reading partition tables"
udevadm settle -t 10
# Fallback for disks the discard did not empty.
for dev in $(blkid -p -o device $devs); do
  for part in $(lsblk -nrpo NAME "$dev" | tac); do
    zpool labelclear -f "$part" >/dev/null 2>&1
    out=$(wipefs -a "$part" 2>&1) || fail "wipefs $part: $out"
  done
done
udevadm settle -t 10
[ -z "$(zpool list -H)" ] || fail "pools remain: $(zpool list -H -o name | tr '\n' ' ')"
left=$(blkid -p $devs)
[ -z "$left" ] || fail "signatures remain: $left"
[ "$(lsblk -nrpo NAME $devs | wc -l)" -eq "$(echo $devs | wc -w)" ] || fail "partitions remain: $(lsblk -nrpo NAME $devs)"
imp=$(zpool import 2>&1)
case "$imp" in "no pools available to import") ;; *) fail "importable pools remain: $imp";; esac
# Tunables the testbed's own tools change, and ZED, which tests may stop.
params=/sys/module/zfs/parameters
echo 0 >$params/zfs_scan_suspend_progress
echo 0 >$params/raidz_expand_max_reflow_bytes
systemctl is-active -q zfs-zed || systemctl start zfs-zed || fail "starting zfs-zed"
zpool events -c >/dev/null
echo reset ok
`
}
