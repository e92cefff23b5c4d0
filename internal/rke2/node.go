package rke2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Node is one host of the cluster, reached through a Runner.
type Node struct {
	Name   string
	Role   Role
	Runner remote.Runner
	// Log receives progress; may be nil.
	Log Logger
	// Secrets are replaced by "<redacted>" in any host output this package
	// puts into an error (journal excerpts, command errors).
	Secrets []string
}

// exitNotInstalled is the status findBin uses for "RKE2 is not installed
// here"; it also prints notInstalledMsg on stderr, so that a program of
// RKE2 exiting 3 by itself is not mistaken for it.
const (
	exitNotInstalled = 3
	notInstalledMsg  = "homelab: not installed:"
)

// Where RKE2's files land: /usr/local for the tarball (airgap, and the
// installer's tar method), /opt/rke2 when /usr/local is read-only, /usr
// for the RPM method.
const findBinScript = `p=$1
shift
for d in /usr/local/bin /opt/rke2/bin /usr/bin; do
  if [ -x "$d/$p" ]; then exec "$d/$p" "$@"; fi
done
echo "homelab: not installed: $p" >&2
exit 3`

// findBin runs one of RKE2's programs wherever it was installed.
func findBin(prog string, args ...string) remote.Cmd {
	return remote.Script(findBinScript, append([]string{prog}, args...)...)
}

// notInstalled reports that findBin found no such program.
func notInstalled(res remote.Result, err error) bool {
	code, ran := remote.ExitCode(err)
	return ran && code == exitNotInstalled && bytes.Contains(res.Stderr, []byte(notInstalledMsg))
}

const defaultShortTimeout = 30 * time.Second

func (n *Node) fields(extra ...any) map[string]any {
	f := map[string]any{"node": n.Name, "role": string(n.Role)}
	for i := 0; i+1 < len(extra); i += 2 {
		f[fmt.Sprint(extra[i])] = extra[i+1]
	}
	return f
}

func (n *Node) redact(s string) string {
	for _, sec := range n.Secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// wrap adds the node to an error and removes secrets from its text,
// keeping its type for errors.As (unreachable hosts stay *remote.ConnError).
func (n *Node) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return &NodeError{Node: n.Name, What: what, Err: err, msg: n.redact(err.Error())}
}

// ErrNotFound reports that a file the package reads back (config.yaml, a
// manifest) does not exist on the node: the node answered and the file is
// not there. An unreachable node, sudo's refusal or a file that cannot be
// read is never ErrNotFound.
var ErrNotFound = errors.New("does not exist")

// NodeError is an operation on a node that failed.
type NodeError struct {
	Node string
	What string
	Err  error
	msg  string
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %s: %s: %s", e.Node, e.What, e.msg) }
func (e *NodeError) Unwrap() error { return e.Err }

// Status is what a node reports about its RKE2 installation.
type Status struct {
	// Installed: an rke2 binary is present.
	Installed bool
	// Version from rke2 --version; "" when not installed or the binary
	// does not run.
	Version string
	// Config is config.yaml's content; ConfigExists is false when missing.
	Config       []byte
	ConfigExists bool
}

// Inspect reads the installed version and config.yaml.
func (n *Node) Inspect(ctx context.Context) (Status, error) {
	var st Status
	res, err := n.Runner.Run(ctx, findBin("rke2", "--version"))
	_, ran := remote.ExitCode(err)
	switch {
	case err == nil:
		st.Installed = true
		if st.Version, err = ParseVersion(string(res.Stdout)); err != nil {
			n.Log.log("rke2 --version printed something unexpected; treating the installation as broken",
				n.fields("output", strings.TrimSpace(string(res.Stdout))))
		}
	case notInstalled(res, err):
	case ran:
		// The binary exists but does not run: broken, to be reinstalled.
		st.Installed = true
		n.Log.log("rke2 --version failed; treating the installation as broken", n.fields("error", n.redact(err.Error())))
	default:
		return st, n.wrap("reading the RKE2 version", err)
	}
	data, err := n.Runner.ReadFile(ctx, ConfigPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, n.wrap("reading "+ConfigPath, err)
	default:
		st.Config, st.ConfigExists = data, true
	}
	return st, nil
}

// Arch returns the node's architecture as RKE2 names it (amd64, arm64, s390x).
func (n *Node) Arch(ctx context.Context) (string, error) {
	res, err := n.Runner.Run(ctx, remote.Command("uname", "-m"))
	if err != nil {
		return "", n.wrap("reading the architecture", err)
	}
	return ArchFromUname(string(res.Stdout))
}

// ArchFromUname maps `uname -m` to RKE2's architecture names.
func ArchFromUname(s string) (string, error) {
	switch m := strings.TrimSpace(s); m {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	case "s390x":
		return "s390x", nil
	default:
		return "", fmt.Errorf("architecture %q has no RKE2 release", m)
	}
}

// WriteConfig writes config.yaml (mode 0600: it holds the token).
func (n *Node) WriteConfig(ctx context.Context, c Config) error {
	data, err := Render(c)
	if err != nil {
		return err
	}
	return n.wrap("writing "+ConfigPath, remote.WriteFile(ctx, n.Runner, ConfigPath, data, 0o600))
}

// ReadConfig reads config.yaml. A missing one is an error matching
// ErrNotFound.
func (n *Node) ReadConfig(ctx context.Context) (Config, error) {
	data, err := n.Runner.ReadFile(ctx, ConfigPath)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, n.wrap("reading "+ConfigPath, ErrNotFound)
	}
	if err != nil {
		return nil, n.wrap("reading "+ConfigPath, err)
	}
	c, err := Parse(data)
	return c, n.wrap("reading "+ConfigPath, err)
}

const remoteSumScript = `[ -f "$1" ] || exit 0
sha256sum -- "$1"`

// remoteSHA256 is the sha256 of a file on the node, "" when missing.
func (n *Node) remoteSHA256(ctx context.Context, p string) (string, error) {
	res, err := n.Runner.Run(ctx, remote.Script(remoteSumScript, p))
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return "", nil
	}
	return f[0], nil
}

const verifyScript = `set -e
cd "$1"
[ -f "$3" ] || { echo "$3 is missing" >&2; exit 1; }
[ -f "$4" ] || { echo "$4 is missing" >&2; exit 1; }
sha256sum -c --ignore-missing -- "$2"`

const stagedVersionScript = `set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$1" -C "$tmp"
"$tmp/bin/rke2" --version`

const airgapInstallScript = `set -e
mkdir -p /usr/local
tar xzf "$1/$2" -C /usr/local
mkdir -p "$4"
cp -f -- "$1/$3" "$4/$3"
systemctl daemon-reload`

// UploadArtifacts copies the airgap artifacts into StagingDir (files that
// are already there with the right checksum are not sent again) and
// verifies them on the node with sha256sum -c.
func (n *Node) UploadArtifacts(ctx context.Context, a *Artifacts) error {
	for _, name := range a.Files() {
		dst := path.Join(StagingDir, name)
		if want, ok := a.SHA256[name]; ok {
			got, err := n.remoteSHA256(ctx, dst)
			if err != nil {
				return n.wrap("checking "+dst, err)
			}
			if got == want {
				n.Log.log("artifact already on the node", n.fields("file", name))
				continue
			}
		}
		f, err := os.Open(filepath.Join(a.Dir, name))
		if err != nil {
			return err
		}
		n.Log.log("uploading artifact", n.fields("file", name))
		err = n.Runner.Upload(ctx, dst, f, 0o600)
		f.Close()
		if err != nil {
			return n.wrap("uploading "+name, err)
		}
	}
	_, err := n.Runner.Run(ctx, remote.Script(verifyScript, StagingDir, ChecksumsName(a.Arch), TarballName(a.Arch), ImagesName(a.Arch)))
	return n.wrap("verifying the artifacts with sha256sum -c", err)
}

// StagedVersion is the version of the rke2 binary in the uploaded
// tarball, read before anything is installed.
func (n *Node) StagedVersion(ctx context.Context, a *Artifacts) (string, error) {
	res, err := n.Runner.Run(ctx, remote.Script(stagedVersionScript, path.Join(StagingDir, TarballName(a.Arch))))
	if err != nil {
		return "", n.wrap("reading the version of the uploaded tarball", err)
	}
	v, err := ParseVersion(string(res.Stdout))
	return v, n.wrap("reading the version of the uploaded tarball", err)
}

// InstallAirgap uploads and verifies the artifacts, checks that they hold
// version (when not ""), and installs them: the tarball under /usr/local,
// the images into RKE2's images directory, then systemctl daemon-reload.
func (n *Node) InstallAirgap(ctx context.Context, a *Artifacts, version string) error {
	if err := n.UploadArtifacts(ctx, a); err != nil {
		return err
	}
	if version != "" {
		got, err := n.StagedVersion(ctx, a)
		if err != nil {
			return err
		}
		if got != version {
			return &VersionMismatchError{Node: n.Name, Dir: a.Dir, Want: version, Got: got}
		}
	}
	n.Log.log("installing RKE2 from the airgap artifacts", n.fields("version", version))
	_, err := n.Runner.Run(ctx, remote.Script(airgapInstallScript, StagingDir, TarballName(a.Arch), ImagesName(a.Arch), ImagesDir))
	return n.wrap("installing the airgap artifacts", err)
}

// VersionMismatchError reports artifacts of another release than asked for.
type VersionMismatchError struct {
	Node, Dir, Want, Got string
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("node %s: the artifacts in %s are RKE2 %s, not %s; put the artifacts of %s there (or set version to %s). Nothing was installed on this node",
		e.Node, e.Dir, e.Got, e.Want, e.Want, e.Got)
}

// Online says how to install with RKE2's installer script.
type Online struct {
	ScriptURL string
	Version   string
	Channel   string
}

const onlineInstallScript = `set -e
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl -sfL -o "$tmp" -- "$1"
export INSTALL_RKE2_TYPE="$2"
if [ -n "$3" ]; then export INSTALL_RKE2_VERSION="$3"; fi
if [ -n "$4" ]; then export INSTALL_RKE2_CHANNEL="$4"; fi
sh "$tmp"
systemctl daemon-reload`

// InstallOnline runs RKE2's installer, which downloads the release on the
// node: curl -sfL <url> | INSTALL_RKE2_VERSION=... INSTALL_RKE2_TYPE=... sh -
// (the script is saved to a temporary file first, so a failed download is
// an error rather than an empty script).
func (n *Node) InstallOnline(ctx context.Context, o Online) error {
	n.Log.log("installing RKE2 with the installer script", n.fields("url", o.ScriptURL, "version", o.Version, "channel", o.Channel))
	_, err := n.Runner.Run(ctx, remote.Script(onlineInstallScript, o.ScriptURL, string(n.Role), o.Version, o.Channel))
	return n.wrap("running the RKE2 installer from "+o.ScriptURL, err)
}

// UnitState is a systemd unit's state.
type UnitState struct {
	ActiveState string
	SubState    string
	// ActiveEnter is ActiveEnterTimestampMonotonic: it grows each time the
	// unit becomes active (for Type=notify: each time RKE2 reports ready).
	ActiveEnter uint64
	NRestarts   int
}

// ParseUnitState reads `systemctl show -p ...` output (key=value lines).
func ParseUnitState(out string) UnitState {
	var s UnitState
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "ActiveState":
			s.ActiveState = v
		case "SubState":
			s.SubState = v
		case "ActiveEnterTimestampMonotonic":
			s.ActiveEnter, _ = strconv.ParseUint(v, 10, 64)
		case "NRestarts":
			s.NRestarts, _ = strconv.Atoi(v)
		}
	}
	return s
}

// UnitState reads the state of the node's RKE2 unit.
func (n *Node) UnitState(ctx context.Context) (UnitState, error) {
	res, err := n.Runner.Run(ctx, remote.Command("systemctl", "show", "-p", "ActiveState", "-p", "SubState",
		"-p", "ActiveEnterTimestampMonotonic", "-p", "NRestarts", "--", n.Role.Unit()))
	if err != nil {
		return UnitState{}, n.wrap("reading the state of "+n.Role.Unit(), err)
	}
	return ParseUnitState(string(res.Stdout)), nil
}

// Restart enables the unit and (re)starts it without waiting: RKE2's
// units are Type=notify and may take minutes to report ready, which
// WaitActive waits for with progress. It returns the unit's state before
// the restart, for WaitActive.
func (n *Node) Restart(ctx context.Context) (UnitState, error) {
	before, err := n.UnitState(ctx)
	if err != nil {
		return before, err
	}
	if _, err := n.Runner.Run(ctx, remote.Command("systemctl", "enable", "--", n.Role.Unit())); err != nil {
		return before, n.wrap("enabling "+n.Role.Unit(), err)
	}
	n.Log.log("starting RKE2", n.fields("unit", n.Role.Unit(), "was", before.ActiveState))
	if _, err := n.Runner.Run(ctx, remote.Command("systemctl", "restart", "--no-block", "--", n.Role.Unit())); err != nil {
		return before, n.wrap("starting "+n.Role.Unit(), err)
	}
	return before, nil
}

// WaitActive waits until the unit became active after before (it
// reported ready since the restart).
func (n *Node) WaitActive(ctx context.Context, before UnitState) error {
	err := Poll(ctx, n.Log, n.Role.Unit()+" to report ready", n.fields(), func(ctx context.Context) (bool, string, error) {
		st, err := n.UnitState(ctx)
		if err != nil {
			if remote.IsUnreachable(err) && ctx.Err() == nil {
				return false, "unreachable: " + err.Error(), nil
			}
			return false, "", err
		}
		status := st.ActiveState + "/" + st.SubState
		if st.NRestarts > 0 {
			status += fmt.Sprintf(", %d restarts", st.NRestarts)
		}
		return st.ActiveState == "active" && st.ActiveEnter > before.ActiveEnter, status, nil
	})
	if err != nil {
		return n.wrap("waiting for "+n.Role.Unit(), fmt.Errorf("%w\n\nLast lines of its journal:\n%s", err, n.Journal(context.WithoutCancel(ctx), 20)))
	}
	return nil
}

// Journal returns the last lines of the unit's journal, for error
// messages (best effort, secrets removed).
func (n *Node) Journal(ctx context.Context, lines int) string {
	ctx, cancel := context.WithTimeout(ctx, defaultShortTimeout)
	defer cancel()
	res, err := n.Runner.Run(ctx, remote.Command("journalctl", "-u", n.Role.Unit(), "-n", strconv.Itoa(lines), "--no-pager", "-o", "cat"))
	if err != nil {
		return "(journal not available: " + n.redact(err.Error()) + ")"
	}
	return n.redact(strings.TrimSpace(string(res.Stdout)))
}

// WaitFile waits until path exists and is not empty.
func (n *Node) WaitFile(ctx context.Context, p string) error {
	return n.wrap("waiting for "+p, Poll(ctx, n.Log, p+" to exist", n.fields("path", p), func(ctx context.Context) (bool, string, error) {
		_, err := n.Runner.Run(ctx, remote.Command("test", "-s", p))
		if _, ran := remote.ExitCode(err); ran {
			return false, "missing", nil
		}
		if remote.IsUnreachable(err) && ctx.Err() == nil {
			return false, "unreachable: " + err.Error(), nil
		}
		return err == nil, "present", err
	}))
}

// ReadToken reads the cluster's join token from a server
// (K10<CA hash>::server:<secret>).
func (n *Node) ReadToken(ctx context.Context) (string, error) {
	data, err := n.Runner.ReadFile(ctx, TokenPath)
	if err != nil {
		return "", n.wrap("reading the cluster token", err)
	}
	t := strings.TrimSpace(string(data))
	if t == "" {
		return "", n.wrap("reading the cluster token", errors.New(TokenPath+" is empty"))
	}
	return t, nil
}

// ReadKubeconfig reads the server's admin kubeconfig.
func (n *Node) ReadKubeconfig(ctx context.Context) ([]byte, error) {
	data, err := n.Runner.ReadFile(ctx, KubeconfigPath)
	return data, n.wrap("reading "+KubeconfigPath, err)
}

// ManifestNameRe is what a manifest name may be: it becomes
// <name>.yaml in the server's manifests directory.
var ManifestNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// ManifestPath is where a manifest of the given name is written.
func ManifestPath(name string) string { return path.Join(ManifestsDir, name+".yaml") }

// WriteManifest writes an auto-deploy manifest on a server.
func (n *Node) WriteManifest(ctx context.Context, name, content string) error {
	if !ManifestNameRe.MatchString(name) {
		return fmt.Errorf("invalid manifest name %q", name)
	}
	return n.wrap("writing manifest "+name, remote.WriteFile(ctx, n.Runner, ManifestPath(name), []byte(content), 0o600))
}

// ReadManifest reads a manifest back. A missing one is an error matching
// ErrNotFound.
func (n *Node) ReadManifest(ctx context.Context, name string) (string, error) {
	data, err := n.Runner.ReadFile(ctx, ManifestPath(name))
	if errors.Is(err, remote.ErrNotFound) {
		return "", n.wrap("reading manifest "+name, ErrNotFound)
	}
	if err != nil {
		return "", n.wrap("reading manifest "+name, err)
	}
	return string(data), nil
}

// RemoveManifest deletes a manifest file. RKE2 does not delete what it
// applied from it; the objects stay in the cluster.
func (n *Node) RemoveManifest(ctx context.Context, name string) error {
	if !ManifestNameRe.MatchString(name) {
		return fmt.Errorf("invalid manifest name %q", name)
	}
	_, err := n.Runner.Run(ctx, remote.Command("rm", "-f", "--", ManifestPath(name)))
	return n.wrap("removing manifest "+name, err)
}

// Uninstall runs rke2-uninstall.sh. ran is false when RKE2 was not
// installed (no uninstall script).
func (n *Node) Uninstall(ctx context.Context) (ran bool, err error) {
	n.Log.log("uninstalling RKE2", n.fields())
	res, err := n.Runner.Run(ctx, findBin("rke2-uninstall.sh"))
	if notInstalled(res, err) {
		return false, nil
	}
	return err == nil, n.wrap("running rke2-uninstall.sh", err)
}

// Installed reports whether config.yaml or the binary is present, after
// an uninstall for example.
func (n *Node) Installed(ctx context.Context) (bool, error) {
	st, err := n.Inspect(ctx)
	return st.Installed || st.ConfigExists, err
}
