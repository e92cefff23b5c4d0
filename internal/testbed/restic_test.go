package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// resticTestTimeout leaves room for cold builds of restic and rest-server.
const resticTestTimeout = 15 * time.Minute

func TestResticBinaries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resticTestTimeout)
	defer cancel()

	restic, err := EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := versionLine(ctx, restic, "version"); err != nil || !strings.HasPrefix(line, "restic "+ResticVersion+" ") {
		t.Errorf("%s version: %q, %v; want restic %s", restic, line, err, ResticVersion)
	}
	if err := checkStatic(restic); err != nil {
		t.Error(err)
	}
	// A second call is served from the cache.
	start := time.Now()
	again, err := EnsureRestic(ctx, t.Logf)
	if err != nil || again != restic {
		t.Errorf("second EnsureRestic: %q, %v; want %q", again, err, restic)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cached EnsureRestic took %v", d)
	}

	debian, err := DebianRestic()
	if err != nil {
		t.Fatal(err)
	}
	if line, err := versionLine(ctx, debian, "version"); err != nil || !strings.HasPrefix(line, "restic 0.14.") {
		t.Errorf("%s version: %q, %v; want Debian 12's restic 0.14", debian, line, err)
	}

	server, err := EnsureRestServer(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := versionLine(ctx, server, "--version"); err != nil || !strings.Contains(line, "rest-server "+RestServerVersion+" ") {
		t.Errorf("%s --version: %q, %v; want rest-server %s", server, line, err, RestServerVersion)
	}
	if err := checkStatic(server); err != nil {
		t.Error(err)
	}
	if err := checkStatic("/bin/sh"); err == nil {
		t.Error("checkStatic accepted the dynamically linked /bin/sh")
	}
}

// runRestic runs restic with RESTIC_PASSWORD in its environment (a test
// shortcut; the restic client package passes it on stdin).
func runRestic(t *testing.T, ctx context.Context, bin, repo, password string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--repo", repo, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func TestResticRestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resticTestTimeout)
	defer cancel()
	restic, err := EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartRestServer(ctx, t.TempDir(), RestServerOptions{User: "backup", Password: "p@ss:w/rd?#", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if s.Host != "127.0.0.1" || s.Port == 0 || s.URL == "" {
		t.Fatalf("server %+v", s)
	}
	repo := s.RepoURL("host1")
	if !strings.HasPrefix(repo, "rest:http://backup:") || !strings.HasSuffix(repo, "/host1/") {
		t.Errorf("RepoURL = %q", repo)
	}

	const password = "repo-secret"
	if out, err := runRestic(t, ctx, restic, repo, password, "init"); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir(), "host1", "config")); err != nil {
		t.Errorf("repository not created under the data dir: %v", err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "file.txt"), []byte("hello restic\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runRestic(t, ctx, restic, repo, password, "backup", "--host", "h1", src); err != nil {
		t.Fatalf("restic backup: %v\n%s", err, out)
	}
	out, err := runRestic(t, ctx, restic, repo, password, "snapshots", "--json")
	if err != nil {
		t.Fatalf("restic snapshots: %v\n%s", err, out)
	}
	var snaps []struct {
		Hostname string   `json:"hostname"`
		Paths    []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	if len(snaps) != 1 || snaps[0].Hostname != "h1" || len(snaps[0].Paths) != 1 || snaps[0].Paths[0] != src {
		t.Errorf("snapshots %+v, want one of %s from h1", snaps, src)
	}

	// Wrong HTTP credentials are refused by the server.
	bad := strings.Replace(repo, "backup:"+url.UserPassword("", s.Password).String()[1:], "backup:wrong", 1)
	if bad == repo {
		t.Fatalf("could not replace the password in %q", repo)
	}
	if out, err := runRestic(t, ctx, restic, bad, password, "snapshots"); err == nil {
		t.Errorf("restic with a wrong rest-server password succeeded:\n%s", out)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if ProcessAlive(s.PID, "") {
		t.Errorf("rest-server %d still running after Stop", s.PID)
	}
}

func TestResticRestServerNoAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), resticTestTimeout)
	defer cancel()
	if _, err := StartRestServer(ctx, t.TempDir(), RestServerOptions{Addr: "192.0.2.1:0"}); err == nil {
		t.Error("StartRestServer accepted a non-loopback address")
	}
	s, err := StartRestServer(ctx, t.TempDir(), RestServerOptions{NoAuth: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	want := "rest:" + s.URL + "/r/"
	if got := s.RepoURL("r"); got != want {
		t.Errorf("RepoURL = %q, want %q", got, want)
	}
	debian, err := DebianRestic()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runRestic(t, ctx, debian, s.RepoURL("r"), "pw", "init"); err != nil {
		t.Fatalf("restic 0.14 init against rest-server: %v\n%s", err, out)
	}
}
