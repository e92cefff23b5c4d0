package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// recordedVersions are the releases under testdata/.
var recordedVersions = []string{"0.18.1", "0.14.0"}

var fullIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// replayRunner answers each command with the next recording, as a runner
// would: a non-zero exit is an *remote.ExitError, -1 a *remote.ConnError.
type replayRunner struct {
	t    testing.TB
	recs []recording
	cmds []remote.Cmd
}

func replay(t testing.TB, version string, names ...string) *replayRunner {
	r := &replayRunner{t: t}
	for _, n := range names {
		r.recs = append(r.recs, loadRecording(t, version, n))
	}
	return r
}

func (r *replayRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	r.cmds = append(r.cmds, cmd)
	if len(r.recs) == 0 {
		r.t.Fatalf("unexpected command %s", cmd)
	}
	rec := r.recs[0]
	r.recs = r.recs[1:]
	res := remote.Result{Stdout: rec.Stdout, Stderr: rec.Stderr, ExitCode: rec.Exit}
	switch {
	case rec.Exit < 0:
		return res, &remote.ConnError{Target: r.String(), Op: "run command on", Err: context.DeadlineExceeded}
	case rec.Exit > 0:
		return res, &remote.ExitError{Target: r.String(), Cmd: cmd.String(), Code: rec.Exit, Stderr: string(rec.Stderr)}
	}
	return res, nil
}

func (r *replayRunner) Upload(context.Context, string, io.Reader, fs.FileMode) error {
	return fmt.Errorf("replay runner: no uploads")
}

func (r *replayRunner) ReadFile(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("replay runner: no files")
}

func (r *replayRunner) String() string { return "replay" }

// replayClient is a client whose runner replays recordings.
func replayClient(t testing.TB, version string, names ...string) (*Client, *replayRunner) {
	r := replay(t, version, names...)
	return &Client{Runner: r, Repo: Repo{Repository: "/srv/restic/repo", Password: testPassword}}, r
}

// classification of every recorded failure, the same for both releases.
var recordedKinds = map[string]kind{
	"init-exists":                  kindAlreadyExists,
	"cat-config-missing":           kindNotExist,
	"cat-config-missing-rest":      kindNotExist,
	"cat-config-missing-sftp":      kindNotExist,
	"cat-config-wrong-password":    kindWrongPassword,
	"snapshots-locked":             kindLocked,
	"backup-locked":                kindLocked,
	"check-locked":                 kindLocked,
	"cat-config-rest-refused":      kindUnreachable,
	"cat-config-sftp-refused":      kindUnreachable,
	"cat-config-rest-unauthorized": kindOther,
	"backup-incomplete":            kindIncomplete,
	"check-damaged":                kindOther,
	"check-missing-pack":           kindOther,
}

func TestClassifyRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		for _, name := range recordedCases {
			rec := loadRecording(t, v, name)
			want, failed := recordedKinds[name]
			if !failed {
				if rec.Exit != 0 {
					t.Errorf("%s/%s: exit %d, recorded as a success case", v, name, rec.Exit)
				}
				continue
			}
			c, _ := replayClient(t, v, name)
			ctx, cancel := context.WithCancel(context.Background())
			if rec.Exit < 0 {
				cancel() // it was stopped by its context
			}
			_, err := c.run(ctx, "cat")
			cancel()
			if err == nil {
				t.Errorf("%s/%s: no error", v, name)
				continue
			}
			if got := kindOf(err); got != want {
				t.Errorf("%s/%s: classified %q, want %q (error: %v)", v, name, got, want, err)
			}
			checks := map[kind]func(error) bool{
				kindNotExist: func(err error) bool { return errors.Is(err, ErrNotFound) }, kindLocked: IsLocked, kindWrongPassword: IsWrongPassword,
				kindUnreachable: IsUnreachable, kindAlreadyExists: IsAlreadyExists, kindIncomplete: IsIncomplete,
			}
			for k, is := range checks {
				if is(err) != (k == want) {
					t.Errorf("%s/%s: the predicate for %q says %v", v, name, k, is(err))
				}
			}
			if msg := err.Error(); strings.Contains(msg, "sh -c") || strings.Contains(msg, "IFS=") {
				t.Errorf("%s/%s: the error quotes the wrapper: %s", v, name, msg)
			}
		}
	}
}

// The exit statuses that tell the failures apart on 0.17+ and do not on 0.14.
func TestRecordedExitCodes(t *testing.T) {
	want := map[string][2]int{ // name: {0.18.1, 0.14.0}
		"cat-config-missing":        {10, 1},
		"cat-config-missing-rest":   {10, 1},
		"cat-config-missing-sftp":   {10, 1},
		"cat-config-wrong-password": {12, 1},
		"snapshots-locked":          {11, 1},
		"check-locked":              {11, 1},
		"backup-incomplete":         {3, 3},
		"check-damaged":             {1, 1},
		"cat-config-rest-refused":   {-1, 1},
	}
	for name, codes := range want {
		for i, v := range recordedVersions {
			if got := loadRecording(t, v, name).Exit; got != codes[i] {
				t.Errorf("%s/%s exited %d, want %d", v, name, got, codes[i])
			}
		}
	}
}

func TestVersionRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		c, _ := replayClient(t, v, "version")
		got, err := c.Version(context.Background())
		if err != nil || got != v {
			t.Errorf("Version on %s output: %q, %v", v, got, err)
		}
	}
	if _, err := parseVersion([]byte("bash: restic: command not found")); err == nil {
		t.Error("parseVersion accepted garbage")
	}
	if v, _ := parseVersion([]byte("restic 0.18.1-dev (compiled manually) compiled with go1.24 on linux/amd64\n")); v != "0.18.1-dev" {
		t.Errorf("dev version parsed as %q", v)
	}
}

func TestConfigRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		c, _ := replayClient(t, v, "cat-config")
		cfg, err := c.Config(context.Background())
		if err != nil || !fullIDRE.MatchString(cfg.ID) || cfg.Version != 2 {
			t.Errorf("%s: Config = %+v, %v", v, cfg, err)
		}
		// Init reads the config after init.
		c, _ = replayClient(t, v, "init", "cat-config")
		if cfg2, err := c.Init(context.Background()); err != nil || cfg2 != cfg {
			t.Errorf("%s: Init = %+v, %v; want %+v", v, cfg2, err, cfg)
		}
		c, _ = replayClient(t, v, "init-exists")
		if _, err := c.Init(context.Background()); !IsAlreadyExists(err) {
			t.Errorf("%s: Init on an existing repository: %v", v, err)
		}
	}
}

func TestSnapshotsRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		c, _ := replayClient(t, v, "snapshots")
		snaps, err := c.Snapshots(context.Background(), Filter{})
		if err != nil || len(snaps) != 2 {
			t.Fatalf("%s: %d snapshots, %v", v, len(snaps), err)
		}
		h1, h2 := snaps[0], snaps[1]
		if h1.Hostname != "h1" || h2.Hostname != "h2" {
			t.Errorf("%s: hosts %q %q", v, h1.Hostname, h2.Hostname)
		}
		if strings.Join(h1.Tags, ",") != "t1,t2" || h2.Tags != nil {
			t.Errorf("%s: tags %q %q", v, h1.Tags, h2.Tags)
		}
		if len(h1.Paths) != 1 || !strings.HasSuffix(h1.Paths[0], "/src") || len(h2.Paths) != 2 || h2.Paths[0] != unreadableFile {
			t.Errorf("%s: paths %q %q", v, h1.Paths, h2.Paths)
		}
		for _, s := range snaps {
			if !fullIDRE.MatchString(s.ID) || s.ShortID != s.ID[:8] || s.Time.IsZero() || s.Time.Year() < 2024 {
				t.Errorf("%s: snapshot %+v", v, s)
			}
		}
		if !h1.Time.Before(h2.Time) {
			t.Errorf("%s: not oldest first: %v %v", v, h1.Time, h2.Time)
		}

		c, _ = replayClient(t, v, "snapshots-filtered")
		f, err := c.Snapshots(context.Background(), Filter{Host: "h1", Tags: []string{"t1", "t2"}, Paths: []string{h1.Paths[0]}})
		if err != nil || len(f) != 1 || f[0].ID != h1.ID {
			t.Errorf("%s: filtered %+v, %v", v, f, err)
		}
		c, _ = replayClient(t, v, "snapshots-none")
		none, err := c.Snapshots(context.Background(), Filter{Host: "nosuch"})
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("%s: no snapshots gave %#v, %v", v, none, err)
		}
		c, _ = replayClient(t, v, "snapshots-locked")
		if _, err := c.Snapshots(context.Background(), Filter{}); !IsLocked(err) {
			t.Errorf("%s: snapshots on a locked repository: %v", v, err)
		}
	}
}

func TestBackupRecorded(t *testing.T) {
	ctx := context.Background()
	for _, v := range recordedVersions {
		all := loadRecording(t, v, "snapshots")
		snaps, err := parseSnapshots(all.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		// restic 0.14 names the snapshot by its short ID: the client looks
		// the full one up with `snapshots --json SHORTID`.
		names := []string{"backup"}
		if v == "0.14.0" {
			names = append(names, "snapshots-filtered")
		}
		c, r := replayClient(t, v, names...)
		id, err := c.Backup(ctx, []string{"/src"}, []string{"*.log"}, []string{"t1", "t2"}, "h1")
		if err != nil || id != snaps[0].ID {
			t.Errorf("%s: Backup = %q, %v; want %s", v, id, err, snaps[0].ID)
		}
		if len(r.recs) != 0 {
			t.Errorf("%s: %d recordings left", v, len(r.recs))
		}
		want := []string{"backup", "--json", "--host", "h1", "--tag", "t1", "--tag", "t2", "--exclude", "*.log", "--", "/src"}
		if got := r.cmds[0].Args[len(r.cmds[0].Args)-len(want):]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: backup argv ends %q, want %q", v, got, want)
		}

		names = []string{"backup-incomplete"}
		if v == "0.14.0" {
			names = append(names, "snapshots")
		}
		c, _ = replayClient(t, v, names...)
		id, err = c.Backup(ctx, []string{"/src", unreadableFile}, nil, nil, "h2")
		if !IsIncomplete(err) || id != snaps[1].ID {
			t.Errorf("%s: incomplete Backup = %q, %v; want %s and an incomplete error", v, id, err, snaps[1].ID)
		}
		if err != nil && !strings.Contains(err.Error(), "/proc/self/mem") {
			t.Errorf("%s: the error does not name the unreadable file: %v", v, err)
		}

		c, _ = replayClient(t, v, "backup-locked")
		if _, err := c.Backup(ctx, []string{"/src"}, nil, nil, ""); !IsLocked(err) {
			t.Errorf("%s: backup on a locked repository: %v", v, err)
		}
	}
}

func TestCheckRecorded(t *testing.T) {
	ctx := context.Background()
	for _, v := range recordedVersions {
		for _, name := range []string{"check", "check-read-data-subset"} {
			c, _ := replayClient(t, v, name)
			res, err := c.Check(ctx, "")
			if err != nil || !res.OK || res.Summary != "no errors were found" {
				t.Errorf("%s/%s: %+v, %v", v, name, res, err)
			}
		}
		for name, want := range map[string]string{"check-damaged": "ciphertext verification failed", "check-missing-pack": "does not exist"} {
			c, _ := replayClient(t, v, name)
			res, err := c.Check(ctx, "100%")
			if err != nil || res.OK || !strings.Contains(res.Summary, want) {
				t.Errorf("%s/%s: %+v, %v", v, name, res, err)
			}
			if strings.Contains(res.Summary, "retrying after") || strings.Contains(res.Summary, "Fatal:") {
				t.Errorf("%s/%s: summary keeps noise: %s", v, name, res.Summary)
			}
		}
		c, _ := replayClient(t, v, "check-locked")
		if res, err := c.Check(ctx, ""); !IsLocked(err) || res.OK {
			t.Errorf("%s: check on a locked repository: %+v, %v", v, res, err)
		}
		c, _ = replayClient(t, v, "cat-config-wrong-password")
		if _, err := c.Check(ctx, ""); !IsWrongPassword(err) {
			t.Errorf("%s: check with a wrong password: %v", v, err)
		}
	}
}

func TestUnlockRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		for _, name := range []string{"unlock-held", "unlock-stale"} {
			c, r := replayClient(t, v, name)
			if err := c.Unlock(context.Background()); err != nil {
				t.Errorf("%s/%s: %v", v, name, err)
			}
			if args := r.cmds[0].Args; args[len(args)-1] != "unlock" {
				t.Errorf("%s: unlock argv %q", v, args)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := parseBackupSummary([]byte(`{"message_type":"status","percent_done":1}` + "\n")); err == nil {
		t.Error("backup output without summary accepted")
	}
	if _, err := parseSnapshots([]byte("not json")); err == nil {
		t.Error("bad snapshots accepted")
	}
	if _, err := parseConfig([]byte(`{"version":2}`)); err == nil {
		t.Error("config without id accepted")
	}
	if s, err := parseSnapshots([]byte("null")); err != nil || s == nil || len(s) != 0 {
		t.Errorf("null snapshots: %#v %v", s, err)
	}
	// A plain remote.ExitError is classified too (e.g. from another caller).
	ee := &remote.ExitError{Code: 1, Stderr: "Fatal: wrong password or no key found\n"}
	if !IsWrongPassword(ee) || errors.Is(ee, ErrNotFound) {
		t.Error("plain ExitError not classified")
	}
	if !IsUnreachable(&remote.ConnError{Target: "x", Op: "dial", Err: fmt.Errorf("refused")}) {
		t.Error("ConnError is not unreachable")
	}
	if errors.Is(nil, ErrNotFound) || IsLocked(nil) || IsUnreachable(nil) {
		t.Error("nil classified")
	}
}

// ErrNotFound matches restic's recorded "no repository there" answers on
// every backend, and none of the failures that must keep state: a refused
// connection (0.18 cut off by its context while retrying, 0.14 at once), a
// rest-server refusing the credentials, a wrong password, a lock, an
// unreachable host.
func TestErrNotFoundRecorded(t *testing.T) {
	for _, v := range recordedVersions {
		for name, want := range map[string]bool{
			"cat-config-missing":           true,
			"cat-config-missing-rest":      true,
			"cat-config-missing-sftp":      true,
			"cat-config-wrong-password":    false,
			"cat-config-rest-refused":      false,
			"cat-config-sftp-refused":      false,
			"cat-config-rest-unauthorized": false,
			"snapshots-locked":             false,
		} {
			c, _ := replayClient(t, v, name)
			ctx, cancel := context.WithCancel(context.Background())
			if loadRecording(t, v, name).Exit < 0 {
				cancel() // it was stopped by its context
			}
			_, err := c.Config(ctx)
			cancel()
			if got := errors.Is(err, ErrNotFound); err == nil || got != want {
				t.Errorf("%s/%s: errors.Is(%v, ErrNotFound) = %v, want %v", v, name, err, got, want)
			}
			if want && (IsUnreachable(err) || IsWrongPassword(err)) {
				t.Errorf("%s/%s: a missing repository also classified otherwise: %v", v, name, err)
			}
		}
	}
	unreachable := &remote.ConnError{Target: "x", Op: "dial", Err: errors.New("connection refused")}
	if errors.Is(unreachable, ErrNotFound) || errors.Is(fmt.Errorf("reading: %w", unreachable), ErrNotFound) {
		t.Error("an unreachable host matches ErrNotFound")
	}
}
