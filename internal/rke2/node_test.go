package rke2

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestInspect(t *testing.T) {
	version := func(res remote.Result, err error) func([]string) (remote.Result, error) {
		return func(args []string) (remote.Result, error) {
			if isScript(args, findBinScript) && args[4] == "rke2" {
				return res, err
			}
			t.Fatalf("unexpected command %q", args)
			return remote.Result{}, nil
		}
	}
	f := newFake(version(ok(testdata(t, "version-sim.txt"))))
	f.files[ConfigPath] = []byte("node-name: a\n")
	st, err := (&Node{Name: "a", Runner: f}).Inspect(ctxT(t))
	if err != nil || !st.Installed || st.Version != "v1.31.4+rke2r1" || !st.ConfigExists {
		t.Fatalf("installed: %+v %v", st, err)
	}

	f = newFake(version(exit(3, "homelab: not installed: rke2\n")))
	st, err = (&Node{Name: "a", Runner: f}).Inspect(ctxT(t))
	if err != nil || st.Installed || st.Version != "" || st.ConfigExists {
		t.Fatalf("not installed: %+v %v", st, err)
	}

	// A binary that exits 3 by itself is installed (and broken).
	f = newFake(version(exit(3, "segfault\n")))
	st, err = (&Node{Name: "a", Runner: f}).Inspect(ctxT(t))
	if err != nil || !st.Installed || st.Version != "" {
		t.Fatalf("broken: %+v %v", st, err)
	}

	f = newFake(nil)
	f.unreachable = true
	_, err = (&Node{Name: "a", Runner: f}).Inspect(ctxT(t))
	var ne *NodeError
	if !remote.IsUnreachable(err) || !errors.As(err, &ne) || ne.Node != "a" {
		t.Fatalf("unreachable must stay a ConnError: %v", err)
	}
}

// The constant scripts run through the real /bin/sh.
func TestFindBinNotInstalledLocally(t *testing.T) {
	for _, d := range []string{"/usr/local/bin", "/opt/rke2/bin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(d, "rke2")); err == nil {
			t.Skip("RKE2 is installed on this machine")
		}
	}
	n := &Node{Name: "local", Role: Agent, Runner: remote.NewLocal(false)}
	st, err := n.Inspect(ctxT(t))
	if err != nil || st.Installed {
		t.Fatalf("%+v %v", st, err)
	}
	ran, err := n.Uninstall(ctxT(t))
	if err != nil || ran {
		t.Fatalf("uninstall where nothing is installed: %v %v", ran, err)
	}
	res, err := remote.NewLocal(false).Run(ctxT(t), findBin("sh", "-c", "echo hi"))
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "hi" {
		t.Fatalf("findBin passes arguments: %q %v", res.Stdout, err)
	}
}

func TestWriteConfigKeepsTokenOffArgv(t *testing.T) {
	f := newFake(nil)
	n := &Node{Name: "a", Role: Server, Runner: f}
	const token = "tok-5ecr3t-value"
	if err := n.WriteConfig(ctxT(t), Build(NodeSpec{Role: Server, Name: "a", Token: token})); err != nil {
		t.Fatal(err)
	}
	if f.modes[ConfigPath] != 0o600 || !strings.Contains(string(f.files[ConfigPath]), token) {
		t.Fatalf("config.yaml: mode %o, %q", f.modes[ConfigPath], f.files[ConfigPath])
	}
	for _, l := range f.commandLines() {
		if strings.Contains(l, token) {
			t.Fatalf("token in argv: %s", l)
		}
	}
	c, err := n.ReadConfig(ctxT(t))
	if err != nil || c.Token() != token {
		t.Fatalf("%v %v", c, err)
	}
}

func TestUploadArtifactsSkipsWhatIsThere(t *testing.T) {
	dir := artifactDir(t, false)
	a, err := LoadArtifacts(dir, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var verified atomic.Bool
	f := newFake(func(args []string) (remote.Result, error) {
		switch {
		case isScript(args, remoteSumScript) && strings.HasSuffix(args[4], TarballName("amd64")):
			return ok(a.SHA256[TarballName("amd64")] + "  " + args[4] + "\n")
		case isScript(args, remoteSumScript):
			return ok("")
		case isScript(args, verifyScript):
			verified.Store(true)
			if args[4] != StagingDir || args[5] != "sha256sum-amd64.txt" || args[6] != TarballName("amd64") || args[7] != ImagesName("amd64") {
				t.Errorf("verify args %q", args[4:])
			}
			return ok("")
		case isScript(args, stagedVersionScript):
			return ok("rke2 version v1.31.5+rke2r1 (simulator)\n")
		}
		t.Fatalf("unexpected %q", args)
		return remote.Result{}, nil
	})
	n := &Node{Name: "a", Role: Agent, Runner: f}
	err = n.InstallAirgap(ctxT(t), a, "v1.31.4+rke2r1")
	var vm *VersionMismatchError
	if !errors.As(err, &vm) || vm.Got != "v1.31.5+rke2r1" || !strings.Contains(err.Error(), "Nothing was installed") {
		t.Fatalf("version mismatch: %v", err)
	}
	if !verified.Load() {
		t.Fatal("the artifacts were not verified on the node")
	}
	if _, sent := f.files[StagingDir+"/"+TarballName("amd64")]; sent {
		t.Error("the tarball was uploaded although the node has it")
	}
	if _, sent := f.files[StagingDir+"/"+ImagesName("amd64")]; !sent {
		t.Error("the images were not uploaded")
	}
	if _, sent := f.files[StagingDir+"/sha256sum-amd64.txt"]; !sent {
		t.Error("the checksum file was not uploaded")
	}
	for _, l := range f.commandLines() {
		if strings.Contains(l, "tar xzf \"$1/$2\" -C /usr/local") {
			t.Fatal("installed despite the version mismatch")
		}
	}
}

func writeTarball(t *testing.T, path, script string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name, body string
		mode       int64
	}{{"bin/", "", 0o755}, {"bin/rke2", script, 0o755}, {"lib/systemd/system/rke2-server.service", "[Unit]\n", 0o644}} {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(e.name, "/") {
			typ = tar.TypeDir
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: typ}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// The verify and staged-version scripts, run by the real sh, sha256sum and
// tar of this machine on a staging directory.
func TestArtifactScriptsLocally(t *testing.T) {
	for _, p := range []string{"sha256sum", "tar"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skip(p + " is not installed")
		}
	}
	dir := t.TempDir()
	tarball := filepath.Join(dir, TarballName("amd64"))
	writeTarball(t, tarball, "#!/bin/sh\necho 'rke2 version v1.31.4+rke2r1 (test)'\necho 'go version go1.26'\n")
	if err := os.WriteFile(filepath.Join(dir, ImagesName("amd64")), []byte("images"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(cmd remote.Cmd) (string, error) {
		res, err := remote.NewLocal(false).Run(ctxT(t), cmd)
		return string(res.Stdout), err
	}
	sums, err := run(remote.Command("sh", "-c", `cd "$1" && sha256sum -- "$2" "$3" > "$4"; echo 0000000000000000000000000000000000000000000000000000000000000000  missing-other-file >> "$4"`,
		"x", dir, TarballName("amd64"), ImagesName("amd64"), ChecksumsName("amd64")))
	if err != nil {
		t.Fatal(sums, err)
	}
	verify := remote.Script(verifyScript, dir, ChecksumsName("amd64"), TarballName("amd64"), ImagesName("amd64"))
	if out, err := run(verify); err != nil {
		t.Fatalf("verify (files listed but absent must be ignored): %s %v", out, err)
	}
	out, err := run(remote.Script(stagedVersionScript, tarball))
	if v, perr := ParseVersion(out); err != nil || perr != nil || v != "v1.31.4+rke2r1" {
		t.Fatalf("staged version: %q %v %v", out, err, perr)
	}
	if err := os.WriteFile(filepath.Join(dir, ImagesName("amd64")), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(verify); err == nil {
		t.Fatal("tampered images passed sha256sum -c")
	}
	if err := os.Remove(filepath.Join(dir, ImagesName("amd64"))); err != nil {
		t.Fatal(err)
	}
	if _, err := run(verify); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("a missing images file passed: %v", err)
	}
}

func TestWaitActive(t *testing.T) {
	PollFirst, PollMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { PollFirst, PollMax = time.Second, 10*time.Second })
	states := []string{
		testdata(t, "systemctl-show-active.txt"),                                               // still the old run
		testdata(t, "systemctl-show-activating.txt"),                                           // restarting
		strings.Replace(testdata(t, "systemctl-show-active.txt"), "123456789", "223456789", 1), // up again
	}
	var i atomic.Int32
	var logged atomic.Int32
	f := newFake(func(args []string) (remote.Result, error) {
		if args[0] == "systemctl" && args[1] == "show" && args[len(args)-1] == "rke2-agent" {
			k := int(i.Add(1)) - 1
			return ok(states[min(k, len(states)-1)])
		}
		t.Fatalf("unexpected %q", args)
		return remote.Result{}, nil
	})
	n := &Node{Name: "w1", Role: Agent, Runner: f, Log: func(string, map[string]any) { logged.Add(1) }}
	before := ParseUnitState(testdata(t, "systemctl-show-active.txt"))
	if before.ActiveState != "active" || before.ActiveEnter != 123456789 {
		t.Fatalf("%+v", before)
	}
	if err := n.WaitActive(ctxT(t), before); err != nil {
		t.Fatal(err)
	}
	if i.Load() != 3 || logged.Load() < 2 {
		t.Fatalf("polled %d times, logged %d", i.Load(), logged.Load())
	}
	if s := ParseUnitState(testdata(t, "systemctl-show-activating.txt")); s.NRestarts != 2 || s.ActiveState != "activating" {
		t.Fatalf("%+v", s)
	}
}

func TestWaitActiveTimesOutWithJournal(t *testing.T) {
	PollFirst, PollMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { PollFirst, PollMax = time.Second, 10*time.Second })
	f := newFake(func(args []string) (remote.Result, error) {
		switch args[0] {
		case "systemctl":
			return ok(testdata(t, "systemctl-show-activating.txt"))
		case "journalctl":
			return ok("level=fatal msg=\"token is not valid\" token=K10abc::server:s3cr3t\n")
		}
		return remote.Result{}, nil
	})
	n := &Node{Name: "w1", Role: Agent, Runner: f, Secrets: []string{"K10abc::server:s3cr3t"}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := n.WaitActive(ctx, UnitState{})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	msg := err.Error()
	mustContain(t, msg, "token is not valid")
	mustContain(t, msg, "activating/start, 2 restarts")
	if strings.Contains(msg, "s3cr3t") {
		t.Fatalf("secret in the error: %s", msg)
	}
}

func TestRestartAndUninstall(t *testing.T) {
	f := newFake(func(args []string) (remote.Result, error) {
		switch {
		case args[0] == "systemctl" && args[1] == "show":
			return ok(testdata(t, "systemctl-show-inactive.txt"))
		case isScript(args, findBinScript):
			return ok("")
		}
		return ok("")
	})
	n := &Node{Name: "cp1", Role: Server, Runner: f}
	before, err := n.Restart(ctxT(t))
	if err != nil || before.ActiveState != "inactive" {
		t.Fatalf("%+v %v", before, err)
	}
	ran, err := n.Uninstall(ctxT(t))
	if err != nil || !ran {
		t.Fatal(ran, err)
	}
	got := strings.Join(f.commandLines(), "\n")
	for _, want := range []string{"systemctl enable -- rke2-server", "systemctl restart --no-block -- rke2-server", "rke2-uninstall.sh"} {
		mustContain(t, got, want)
	}
	f = newFake(func([]string) (remote.Result, error) { return exit(1, "rm: cannot remove\n") })
	if _, err := (&Node{Name: "cp1", Runner: f}).Uninstall(ctxT(t)); err == nil {
		t.Fatal("a failed uninstall was not reported")
	}
}

func TestManifests(t *testing.T) {
	f := newFake(nil)
	n := &Node{Name: "cp1", Role: Server, Runner: f}
	if err := n.WriteManifest(ctxT(t), "metallb", "kind: Namespace\n"); err != nil {
		t.Fatal(err)
	}
	if string(f.files[ManifestsDir+"/metallb.yaml"]) != "kind: Namespace\n" {
		t.Fatal(f.files)
	}
	c, err := n.ReadManifest(ctxT(t), "metallb")
	if err != nil || c != "kind: Namespace\n" {
		t.Fatal(c, err)
	}
	if _, err := n.ReadManifest(ctxT(t), "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing manifest: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"../etc/x", "a/b", "", "A"} {
		if err := n.WriteManifest(ctxT(t), bad, "x"); err == nil {
			t.Errorf("manifest name %q accepted", bad)
		}
	}
	if err := n.RemoveManifest(ctxT(t), "metallb"); err != nil {
		t.Fatal(err)
	}
	mustContain(t, strings.Join(f.commandLines(), "\n"), "rm -f -- /var/lib/rancher/rke2/server/manifests/metallb.yaml")
}

// deniedRunner answers every ReadFile as cat does for a file it may not
// read: the file is there, so it is not ErrNotFound.
type deniedRunner struct{ *fakeRunner }

func (deniedRunner) ReadFile(_ context.Context, p string) ([]byte, error) {
	return nil, fmt.Errorf("reading %s on fake: %w", p, &remote.ExitError{Target: "fake", Cmd: "cat -- " + p, Code: 1, Stderr: "cat: " + p + ": Permission denied\n"})
}

// Only a file that is not on the node is ErrNotFound: an unreachable node
// or a file that cannot be read keeps its own error.
func TestReadBackNotFound(t *testing.T) {
	missing := &Node{Name: "a", Runner: newFake(nil)}
	down := newFake(nil)
	down.unreachable = true
	for name, c := range map[string]struct {
		n    *Node
		want bool
	}{
		"missing":     {missing, true},
		"unreachable": {&Node{Name: "a", Runner: down}, false},
		"denied":      {&Node{Name: "a", Runner: deniedRunner{newFake(nil)}}, false},
	} {
		_, cerr := c.n.ReadConfig(ctxT(t))
		_, merr := c.n.ReadManifest(ctxT(t), "metallb")
		for what, err := range map[string]error{"ReadConfig": cerr, "ReadManifest": merr} {
			if err == nil || errors.Is(err, ErrNotFound) != c.want {
				t.Errorf("%s: %s: %v, want ErrNotFound %v", name, what, err, c.want)
			}
		}
		if name == "unreachable" && !remote.IsUnreachable(cerr) {
			t.Errorf("%s: ReadConfig: %v is not unreachable", name, cerr)
		}
	}
	_, err := missing.ReadConfig(ctxT(t))
	if want := "node a: reading " + ConfigPath + ": does not exist"; err == nil || err.Error() != want {
		t.Errorf("missing config: %v, want %q", err, want)
	}
}
