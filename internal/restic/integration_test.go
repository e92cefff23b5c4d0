package restic

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// These tests run real restic releases (the current one and Debian 12's
// 0.14) against real repositories: local paths, a rest-server and sftp over
// a testbed sshd. A missing restic or rest-server fails them.

// exercise runs the life cycle every backend shares: a missing repository,
// init, backups, filtered listings, check, a wrong password.
func exercise(t *testing.T, c *Client, src string) (Config, []Snapshot) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if _, err := c.Config(ctx); !errors.Is(err, ErrNotFound) || IsUnreachable(err) {
		t.Fatalf("Config before init: %v, want ErrNotFound", err)
	}
	if _, err := c.Snapshots(ctx, Filter{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Snapshots before init: %v, want ErrNotFound", err)
	}
	cfg, err := c.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !fullIDRE.MatchString(cfg.ID) || cfg.Version != 2 {
		t.Errorf("config %+v", cfg)
	}
	if again, err := c.Config(ctx); err != nil || again != cfg {
		t.Errorf("Config = %+v, %v; want %+v", again, err, cfg)
	}
	if _, err := c.Init(ctx); !IsAlreadyExists(err) {
		t.Errorf("second Init: %v, want IsAlreadyExists", err)
	}

	id1, err := c.Backup(ctx, []string{src}, []string{"*.log"}, []string{"daily", "etc"}, "host-a")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := c.Backup(ctx, []string{filepath.Join(src, "sub")}, nil, []string{"daily"}, "host-b")
	if err != nil {
		t.Fatal(err)
	}
	if !fullIDRE.MatchString(id1) || !fullIDRE.MatchString(id2) || id1 == id2 {
		t.Fatalf("snapshot IDs %q %q", id1, id2)
	}

	all, err := c.Snapshots(ctx, Filter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("Snapshots: %+v, %v", all, err)
	}
	if all[0].ID != id1 || all[0].Hostname != "host-a" || strings.Join(all[0].Tags, ",") != "daily,etc" ||
		len(all[0].Paths) != 1 || all[0].Paths[0] != src || all[0].ShortID != id1[:8] {
		t.Errorf("first snapshot %+v", all[0])
	}
	if d := time.Since(all[1].Time); d < 0 || d > 10*time.Minute {
		t.Errorf("snapshot time %v", all[1].Time)
	}
	filters := map[string]struct {
		f    Filter
		want []string
	}{
		"host":      {Filter{Host: "host-b"}, []string{id2}},
		"one tag":   {Filter{Tags: []string{"daily"}}, []string{id1, id2}},
		"all tags":  {Filter{Tags: []string{"daily", "etc"}}, []string{id1}},
		"path":      {Filter{Paths: []string{filepath.Join(src, "sub")}}, []string{id2}},
		"no match":  {Filter{Host: "host-a", Tags: []string{"weekly"}}, nil},
		"host+path": {Filter{Host: "host-a", Paths: []string{src}}, []string{id1}},
	}
	for name, tc := range filters {
		got, err := c.Snapshots(ctx, tc.f)
		if err != nil {
			t.Errorf("filter %s: %v", name, err)
			continue
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
			t.Errorf("filter %s: %q, want %q", name, ids, tc.want)
		}
	}

	for _, subset := range []string{"", "100%", "1/2"} {
		res, err := c.Check(ctx, subset)
		if err != nil || !res.OK || res.Summary != "no errors were found" {
			t.Errorf("Check(%q) = %+v, %v", subset, res, err)
		}
	}
	if err := c.Unlock(ctx); err != nil {
		t.Errorf("Unlock: %v", err)
	}

	wrong := withPassword(c, "not the password")
	if _, err := wrong.Snapshots(ctx, Filter{}); !IsWrongPassword(err) || errors.Is(err, ErrNotFound) {
		t.Errorf("wrong password: %v, want IsWrongPassword", err)
	}
	return cfg, all
}

func TestIntegrationLocal(t *testing.T) {
	forEachRestic(t, "lifecycle", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := t.TempDir()
		repo := filepath.Join(dir, "repo")
		c := newClient(t, bin, repo)
		if v, err := c.Version(ctx); err != nil || v != bin.Version {
			t.Fatalf("Version = %q, %v; want %s", v, err, bin.Version)
		}
		if ok, err := c.IsRepository(ctx, ""); err != nil || ok {
			t.Errorf("IsRepository before init: %v, %v", ok, err)
		}
		exercise(t, c, writeTree(t, filepath.Join(dir, "src")))
		if ok, err := c.IsRepository(ctx, ""); err != nil || !ok {
			t.Errorf("IsRepository after init: %v, %v", ok, err)
		}

		// A backup that cannot read a file still makes a snapshot.
		id, err := c.Backup(ctx, []string{filepath.Join(dir, "src"), unreadableFile}, nil, nil, "host-c")
		if !IsIncomplete(err) || !fullIDRE.MatchString(id) {
			t.Errorf("incomplete backup: %q, %v", id, err)
		}

		// A real lock: reads, backups and checks fail as locked while it is
		// held; unlock leaves a live process's lock alone.
		h := holdLock(t, c)
		if _, err := c.Snapshots(ctx, Filter{}); !IsLocked(err) {
			t.Errorf("Snapshots while locked: %v", err)
		}
		if _, err := c.Backup(ctx, []string{filepath.Join(dir, "src")}, nil, nil, ""); !IsLocked(err) {
			t.Errorf("Backup while locked: %v", err)
		}
		if res, err := c.Check(ctx, ""); !IsLocked(err) || res.OK {
			t.Errorf("Check while locked: %+v, %v", res, err)
		}
		if err := c.Unlock(ctx); err != nil {
			t.Errorf("Unlock while held: %v", err)
		}
		if locks := listLocks(ctx, t, c); len(locks) != 1 {
			t.Errorf("unlock removed a live lock: %q", locks)
		}
		// The holder dies without cleaning up: its lock is stale, and
		// Unlock removes it.
		h.crash()
		if err := c.Unlock(ctx); err != nil {
			t.Errorf("Unlock after crash: %v", err)
		}
		if locks := listLocks(ctx, t, c); len(locks) != 0 {
			t.Errorf("stale lock left: %q", locks)
		}
		if _, err := c.Snapshots(ctx, Filter{}); err != nil {
			t.Errorf("Snapshots after unlock: %v", err)
		}

		// Damage found by check is a result, not an error.
		damaged := filepath.Join(dir, "damaged")
		copyDir(t, repo, damaged)
		corruptPacks(t, damaged)
		res, err := withRepo(c, damaged).Check(ctx, "100%")
		if err != nil || res.OK || res.Summary == "" {
			t.Errorf("Check of a damaged repository: %+v, %v", res, err)
		}

		if err := c.RemoveRepository(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(repo); !os.IsNotExist(err) {
			t.Errorf("repository still there: %v", err)
		}
		if _, err := c.Config(ctx); !errors.Is(err, ErrNotFound) {
			t.Errorf("Config after removal: %v", err)
		}
	})
}

func TestIntegrationRestServer(t *testing.T) {
	rs := startRestServer(t)
	forEachRestic(t, "lifecycle", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := t.TempDir()
		c := newClient(t, bin, rs.RepoURL("repo-"+bin.Version))
		exercise(t, c, writeTree(t, filepath.Join(dir, "src")))
		if _, err := os.Stat(filepath.Join(rs.DataDir(), "repo-"+bin.Version, "config")); err != nil {
			t.Errorf("repository not on the rest-server: %v", err)
		}

		// Wrong HTTP credentials: neither a missing repository nor an
		// unreachable server.
		bad := strings.Replace(c.Repo.Repository, ":"+rs.Password+"@", ":wrong@", 1)
		_, err := withRepo(c, bad).Snapshots(ctx, Filter{})
		if err == nil || errors.Is(err, ErrNotFound) || IsUnreachable(err) || !strings.Contains(err.Error(), "401") {
			t.Errorf("wrong HTTP password: %v", err)
		}
		if err := c.RemoveRepository(ctx); err == nil {
			t.Error("RemoveRepository of a rest repository accepted")
		}
	})

	// A stopped rest-server: 0.14 fails at once; 0.18 keeps retrying with
	// backoff for minutes, so the call is bounded by its context and still
	// reported as unreachable.
	repo := rs.RepoURL("repo-" + debianResticVersion)
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	forEachRestic(t, "stopped", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		start := time.Now()
		_, err := newClient(t, bin, repo).Config(ctx)
		if !IsUnreachable(err) || errors.Is(err, ErrNotFound) {
			t.Errorf("stopped rest-server: %v, want IsUnreachable", err)
		}
		t.Logf("stopped rest-server reported after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})
}

func TestIntegrationSFTP(t *testing.T) {
	sshd, sftpCmd := startSFTPHost(t)
	ssh := sshRunner(t, sshd)
	forEachRestic(t, "lifecycle", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir := t.TempDir()
		path := filepath.Join(dir, "sftp-repo")
		c := newClient(t, bin, "sftp:root@"+sshd.Addr+":"+path)
		c.Repo.Options = map[string]string{"sftp.command": sftpCmd}
		exercise(t, c, writeTree(t, filepath.Join(dir, "src")))

		// The layout is checked, and the repository removed, on the sftp
		// host itself.
		if _, err := c.IsRepository(ctx, ""); err == nil {
			t.Error("IsRepository of an sftp location without a path accepted")
		}
		onHost := &Client{Runner: ssh, Repo: Repo{Repository: path}}
		if ok, err := onHost.IsRepository(ctx, ""); err != nil || !ok {
			t.Errorf("IsRepository over SSH: %v, %v", ok, err)
		}

		// restic itself run over the SSH runner, secrets on the session's stdin.
		remoteClient := newClient(t, bin, path)
		remoteClient.Runner = ssh
		snaps, err := remoteClient.Snapshots(ctx, Filter{Host: "host-a"})
		if err != nil || len(snaps) != 1 {
			t.Errorf("Snapshots over SSH: %+v, %v", snaps, err)
		}
		if _, err := withPassword(remoteClient, "wrong").Config(ctx); !IsWrongPassword(err) {
			t.Errorf("wrong password over SSH: %v", err)
		}

		// Removed through the sftp subsystem with restic's sftp.command,
		// after the layout check; a directory that is not a repository is
		// refused and kept.
		notRepo := filepath.Join(dir, "src")
		if err := withRepo(c, "sftp:root@"+sshd.Addr+":"+notRepo).RemoveRepository(ctx); err == nil || !strings.Contains(err.Error(), "not a restic repository") {
			t.Errorf("RemoveRepository of an sftp directory that is no repository: %v", err)
		}
		if _, err := os.Stat(notRepo); err != nil {
			t.Errorf("the refused directory is gone: %v", err)
		}
		if err := c.RemoveRepository(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("sftp repository still there after removal: %v", err)
		}
		if ok, err := onHost.IsRepository(ctx, ""); err != nil || ok {
			t.Errorf("IsRepository after removal: %v, %v", ok, err)
		}
		if _, err := c.Config(ctx); !errors.Is(err, ErrNotFound) {
			t.Errorf("Config after removal: %v", err)
		}
	})

	if err := sshd.Stop(); err != nil {
		t.Fatal(err)
	}
	forEachRestic(t, "stopped", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := newClient(t, bin, "sftp:root@"+sshd.Addr+":/srv/none")
		c.Repo.Options = map[string]string{"sftp.command": sftpCmd}
		if _, err := c.Config(ctx); !IsUnreachable(err) || errors.Is(err, ErrNotFound) {
			t.Errorf("stopped sftp host: %v, want IsUnreachable", err)
		}
		// The SSH runner's host is gone too.
		if _, err := (&Client{Runner: ssh, Repo: Repo{Repository: "/srv/none"}}).IsRepository(ctx, ""); !IsUnreachable(err) {
			t.Errorf("IsRepository on a stopped host: %v, want IsUnreachable", err)
		}
	})
}

// The password, the backend secrets and the rest-server credentials never
// appear on any command line (which `ps` shows to every user of the host):
// a stand-in for restic snapshots the command lines of every process, then
// execs the real restic, and a sampler reads them all the while the real
// restic runs. The commands succeed, so restic got the secrets.
func TestIntegrationSecretsNeverInArgv(t *testing.T) {
	rs := startRestServer(t)
	forEachRestic(t, "secrets", func(t *testing.T, bin resticBin) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		dir := t.TempDir()
		dump := filepath.Join(dir, "cmdlines")
		spy := filepath.Join(dir, "restic-spy")
		script := fmt.Sprintf(`#!/bin/sh
for f in /proc/[0-9]*/cmdline; do
	tr '\0' ' ' < "$f" 2>/dev/null
	echo
done >> %s
exec %s "$@"
`, remote.Quote(dump), remote.Quote(bin.Path))
		if err := os.WriteFile(spy, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		const envSecret = "b2-account-key-do-not-leak"
		c := newClient(t, bin, rs.RepoURL("argv-"+bin.Version))
		c.Repo.ResticPath = spy
		c.Repo.Env["B2_ACCOUNT_KEY"] = envSecret
		var logged strings.Builder
		c.Logger = func(msg string, fields map[string]any) { fmt.Fprintf(&logged, "%s %v\n", msg, fields) }
		sampled := sampleCmdlines(t)

		if _, err := c.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Backup(ctx, []string{writeTree(t, filepath.Join(dir, "src"))}, nil, nil, "h"); err != nil {
			t.Fatal(err)
		}
		if snaps, err := c.Snapshots(ctx, Filter{}); err != nil || len(snaps) != 1 {
			t.Fatalf("Snapshots: %v, %v", snaps, err)
		}
		data, err := os.ReadFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		lines := string(data)
		if !strings.Contains(lines, spy+" snapshots --json") || !strings.Contains(lines, "homelab") {
			t.Fatalf("the spy did not see the restic command lines:\n%s", lines)
		}
		seen := sampled()
		if !strings.Contains(seen, bin.Path+" backup --json") {
			t.Errorf("the sampler never saw the real restic running:\n%s", seen)
		}
		lines += seen
		for _, secret := range []string{testPassword, envSecret, rs.Password} {
			if strings.Contains(lines, secret) {
				t.Errorf("secret %q on a command line:\n%s", secret, lines)
			}
			if strings.Contains(logged.String(), secret) {
				t.Errorf("secret %q logged:\n%s", secret, logged.String())
			}
		}
	})
}

// sampleCmdlines reads the command line of every process every few
// milliseconds until the returned function is called, which returns each
// distinct command line seen, one per line.
func sampleCmdlines(t *testing.T) func() string {
	stop := make(chan struct{})
	done := make(chan map[string]bool)
	go func() {
		seen := map[string]bool{}
		for {
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if e.Name()[0] < '0' || e.Name()[0] > '9' {
					continue
				}
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err == nil && len(b) > 0 {
					seen[strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))] = true
				}
			}
			select {
			case <-stop:
				done <- seen
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	var out string
	collect := func() string {
		once.Do(func() {
			close(stop)
			seen := <-done
			lines := make([]string, 0, len(seen))
			for l := range seen {
				lines = append(lines, l)
			}
			sort.Strings(lines)
			out = strings.Join(lines, "\n")
		})
		return out
	}
	t.Cleanup(func() { collect() })
	return collect
}
