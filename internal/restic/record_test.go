package restic

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// record makes TestRecordTestdata rewrite testdata/<version>/ from real
// restic runs:
//
//	go test -count=1 -run TestRecordTestdata -record ./internal/restic
//
// It takes a few minutes (restic 0.14 retries a missing pack for about 90
// seconds). Without the flag the test does nothing: the recordings are
// inputs of the unit tests, not something every run should change.
var record = flag.Bool("record", false, "rewrite testdata/ from real restic runs")

// recording is what one restic command printed and how it exited.
type recording struct {
	Stdout, Stderr []byte
	Exit           int // -1: stopped by the context before it exited
}

// Every case the recorder writes, per restic release.
var recordedCases = []string{
	"version", "init", "init-exists", "cat-config", "cat-config-missing", "cat-config-wrong-password",
	"backup", "backup-incomplete", "snapshots", "snapshots-filtered", "snapshots-none",
	"check", "check-read-data-subset", "check-damaged", "check-missing-pack",
	"snapshots-locked", "backup-locked", "check-locked", "unlock-held", "unlock-stale",
	"cat-config-missing-rest", "cat-config-rest-unauthorized", "cat-config-rest-refused",
	"cat-config-missing-sftp", "cat-config-sftp-refused",
}

func TestRecordTestdata(t *testing.T) {
	if !*record {
		t.Log("not recording (pass -record to rewrite testdata/)")
		return
	}
	for _, bin := range resticBins(t) {
		t.Run(bin.Version, func(t *testing.T) { recordVersion(t, bin) })
	}
}

func recordVersion(t *testing.T, bin resticBin) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join("testdata", bin.Version)
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := func(name string, c *Client, timeout time.Duration, args ...string) {
		t.Helper()
		cctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		res, err := c.run(cctx, args...)
		code := 0
		if err != nil {
			code = -1
			if c, ok := remote.ExitCode(err); ok {
				code = c
			}
		}
		writeRecording(t, out, name, recording{Stdout: res.Stdout, Stderr: res.Stderr, Exit: code})
	}

	repo := filepath.Join(dir, "repo")
	src := writeTree(t, filepath.Join(dir, "src"))
	c := newClient(t, bin, repo)
	rec("version", c, 0, "version")
	rec("init", c, 0, "init")
	rec("init-exists", c, 0, "init")
	rec("cat-config", c, 0, "cat", "config", "--json")
	rec("cat-config-missing", withRepo(c, filepath.Join(dir, "missing")), 0, "cat", "config", "--json")
	rec("cat-config-wrong-password", withPassword(c, "wrong"), 0, "cat", "config", "--json")
	rec("backup", c, 0, "backup", "--json", "--host", "h1", "--tag", "t1", "--tag", "t2", "--exclude", "*.log", "--", src)
	rec("backup-incomplete", c, 0, "backup", "--json", "--host", "h2", "--", src, unreadableFile)
	rec("snapshots", c, 0, "snapshots", "--json")
	rec("snapshots-filtered", c, 0, "snapshots", "--json", "--host", "h1", "--tag", "t1,t2", "--path", src)
	rec("snapshots-none", c, 0, "snapshots", "--json", "--host", "nosuch")
	rec("check", c, 0, "check")
	rec("check-read-data-subset", c, 0, "check", "--read-data-subset=100%")

	damaged := filepath.Join(dir, "damaged")
	copyDir(t, repo, damaged)
	corruptPacks(t, damaged)
	rec("check-damaged", withRepo(c, damaged), 0, "check", "--read-data-subset=100%")
	missingPack := filepath.Join(dir, "missing-pack")
	copyDir(t, repo, missingPack)
	packs, _ := filepath.Glob(filepath.Join(missingPack, "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack files")
	}
	if err := os.Remove(packs[0]); err != nil {
		t.Fatal(err)
	}
	rec("check-missing-pack", withRepo(c, missingPack), 0, "check")

	h := holdLock(t, c)
	rec("snapshots-locked", c, 0, "snapshots", "--json")
	rec("backup-locked", c, 0, "backup", "--json", "--", src)
	rec("check-locked", c, 0, "check")
	rec("unlock-held", c, 0, "unlock")
	h.crash()
	rec("unlock-stale", c, 0, "unlock")

	rs := startRestServer(t)
	rec("cat-config-missing-rest", withRepo(c, rs.RepoURL("missing")), 0, "cat", "config", "--json")
	bad := rs.RepoURL("missing")
	rs.Password = "wrong-http-password"
	rec("cat-config-rest-unauthorized", withRepo(c, rs.RepoURL("missing")), 0, "cat", "config", "--json")
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	// restic 0.17+ retries an unreachable backend for minutes: cut it off.
	rec("cat-config-rest-refused", withRepo(c, bad), 6*time.Second, "cat", "config", "--json")

	sshd, sftpCmd := startSFTPHost(t)
	sftp := withRepo(c, "sftp:root@"+sshd.Addr+":"+filepath.Join(dir, "sftp-missing"))
	sftp.Repo.Options = map[string]string{"sftp.command": sftpCmd}
	rec("cat-config-missing-sftp", sftp, 0, "cat", "config", "--json")
	if err := sshd.Stop(); err != nil {
		t.Fatal(err)
	}
	rec("cat-config-sftp-refused", sftp, 30*time.Second, "cat", "config", "--json")
}

// writeRecording writes name.stdout and name.stderr (when not empty) and
// name.exit in dir.
func writeRecording(t testing.TB, dir, name string, r recording) {
	t.Helper()
	files := map[string][]byte{".exit": []byte(strconv.Itoa(r.Exit) + "\n")}
	if len(r.Stdout) > 0 {
		files[".stdout"] = r.Stdout
	}
	if len(r.Stderr) > 0 {
		files[".stderr"] = r.Stderr
	}
	for ext, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name+ext), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadRecording reads a recording written by writeRecording.
func loadRecording(t testing.TB, version, name string) recording {
	t.Helper()
	dir := filepath.Join("testdata", version)
	exit, err := os.ReadFile(filepath.Join(dir, name+".exit"))
	if err != nil {
		t.Fatalf("recording %s/%s: %v", version, name, err)
	}
	code, err := strconv.Atoi(string(trimNL(exit)))
	if err != nil {
		t.Fatalf("recording %s/%s: bad exit status: %v", version, name, err)
	}
	read := func(ext string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name+ext))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return b
	}
	return recording{Stdout: read(".stdout"), Stderr: read(".stderr"), Exit: code}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
