package systemd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// statusOf parses a recorded systemctl show of a service and its timer.
func statusOf(t *testing.T, name string) (showStatus, []properties) {
	t.Helper()
	units, err := parseShow(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 2 || !strings.HasSuffix(units[0]["Id"], ".service") || !strings.HasSuffix(units[1]["Id"], ".timer") {
		t.Fatalf("%s: units %v", name, units)
	}
	st, err := statusFromShow(units[0], units[1])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return st, units
}

// The fixtures are systemd 252's output in the states the VM tests reach
// (testdata/README.md); the times are those of the recording.
func TestStatusFromRecordedShow(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    showStatus
	}{
		{"show-installed", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			NextRun: utc("2026-11-22 00:00:00")}},
		{"show-running", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			Running: true, LastRun: utc("2026-11-21 12:46:51"), LastResult: "running", NextRun: utc("2026-11-22 00:00:00")}},
		{"show-success", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			LastRun: utc("2026-11-21 12:46:12"), LastResult: "success", NextRun: utc("2026-11-21 12:46:20")}},
		{"show-failed", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			LastRun: utc("2026-11-21 12:46:20"), LastResult: "failed: exit-code/1", NextRun: utc("2026-11-21 12:46:30")}},
		{"show-killed", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			LastRun: utc("2026-11-21 12:47:17"), LastResult: "failed: signal/KILL", NextRun: utc("2026-11-22 00:00:00")}},
		// Failed before any command ran: only ConditionTimestamp is set.
		{"show-resources", showStatus{ServiceLoaded: true, TimerLoaded: true, TimerEnabled: true, TimerActive: true,
			LastRun: utc("2026-11-21 12:47:24"), LastResult: "failed: resources", NextRun: utc("2026-11-22 00:00:00")}},
		{"show-missing", showStatus{}},
	} {
		// With --timestamp=unix (systemd >= 248) and without, as older
		// systemd prints; the two recordings were taken a moment apart.
		for _, suffix := range []string{".txt", ".default.txt"} {
			got, _ := statusOf(t, tc.fixture+suffix)
			if got != tc.want {
				t.Errorf("%s%s:\n got %+v\nwant %+v", tc.fixture, suffix, got, tc.want)
			}
		}
	}
}

func TestParseShowBlocks(t *testing.T) {
	units, err := parseShow([]byte("Id=a.service\nDescription=x=y\n\n\nId=a.timer\nLastTriggerUSec=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 2 || units[0]["Description"] != "x=y" || units[1]["Id"] != "a.timer" || units[1]["LastTriggerUSec"] != "" {
		t.Fatalf("%v", units)
	}
	if _, err := parseShow([]byte("Id=a.service\ngarbage\n")); err == nil {
		t.Fatal("a line without = must be an error")
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                            {},
		"n/a":                         {},
		"0":                           {},
		"@1795264101":                 time.Unix(1795264101, 0).UTC(),
		"@1795264101.5":               time.Unix(1795264101, 5e8).UTC(),
		"Sat 2026-11-21 12:28:36 UTC": utc("2026-11-21 12:28:36"),
		"2026-11-21 12:28:36 UTC":     utc("2026-11-21 12:28:36"),
	} {
		got, err := parseTime(properties{"T": in}, "T")
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"Sat 2026-11-21 12:28:36 CET", "@-5", "@x", "yesterday", "Sat 2026-13-21 12:28:36 UTC"} {
		if _, err := parseTime(properties{"T": in}, "T"); err == nil {
			t.Errorf("parseTime(%q) should fail", in)
		}
	}
}

// Running from the moment the timer fires, before the service starts.
func TestStatusTimerFiredServiceQueued(t *testing.T) {
	_, units := statusOf(t, "show-success.txt") // a previous run succeeded
	svc, tmr := units[0], units[1]
	tmr["SubState"] = "running"
	tmr["LastTriggerUSec"] = "Sat 2026-11-21 12:50:00 UTC"
	tmr["NextElapseUSecRealtime"] = ""
	st, err := statusFromShow(svc, tmr)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.LastResult != "running" || !st.LastRun.Equal(utc("2026-11-21 12:50:00")) || !st.NextRun.IsZero() {
		t.Fatalf("%+v", st)
	}
}

// After a reboot only the timer's persistent stamp is known.
func TestStatusAfterReboot(t *testing.T) {
	_, units := statusOf(t, "show-installed.txt")
	units[1]["LastTriggerUSec"] = "Sat 2026-11-21 03:00:00 UTC"
	st, err := statusFromShow(units[0], units[1])
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.LastResult != "" || !st.LastRun.Equal(utc("2026-11-21 03:00:00")) {
		t.Fatalf("%+v", st)
	}
}

// fakeRunner answers commands with a function and keeps files in a map.
type fakeRunner struct {
	run   func(cmd remote.Cmd) (remote.Result, error)
	files map[string]string
	cmds  []string
}

func (f *fakeRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	f.cmds = append(f.cmds, cmd.String())
	return f.run(cmd)
}

func (f *fakeRunner) Upload(_ context.Context, path string, r io.Reader, _ fs.FileMode) error {
	b, err := io.ReadAll(r)
	f.files[path] = string(b)
	return err
}

func (f *fakeRunner) ReadFile(_ context.Context, path string) ([]byte, error) {
	if s, ok := f.files[path]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

func (f *fakeRunner) String() string { return "root@fake:22" }

func exitErr(code int, stderr string) error {
	return &remote.ExitError{Target: "root@fake:22", Cmd: "x", Code: code, Stderr: stderr}
}

// systemd before 248 has no --timestamp=unix: Read asks again without it.
func TestReadOldSystemd(t *testing.T) {
	old := fixture(t, "show-success.default.txt")
	f := &fakeRunner{files: map[string]string{ServicePath("homelab-test-sched"): "S", TimerPath("homelab-test-sched"): "T"}}
	f.run = func(cmd remote.Cmd) (remote.Result, error) {
		if slices.Contains(cmd.Args, "--timestamp=unix") {
			stderr := "systemctl: unrecognized option '--timestamp=unix'\n"
			return remote.Result{Stderr: []byte(stderr), ExitCode: 1}, exitErr(1, stderr)
		}
		return remote.Result{Stdout: old}, nil
	}
	st, err := Manager{Runner: f}.Read(context.Background(), "homelab-test-sched")
	if err != nil {
		t.Fatal(err)
	}
	if st.Service != "S" || st.Env != "" || st.LastResult != "success" || !st.LastRun.Equal(utc("2026-11-21 12:46:12")) {
		t.Fatalf("%+v", st)
	}
	if len(f.cmds) != 2 || !strings.Contains(f.cmds[1], "systemctl show '--property=") {
		t.Fatalf("commands: %q", f.cmds)
	}
}

// Read refuses output for other units than it asked about.
func TestReadWrongUnits(t *testing.T) {
	f := &fakeRunner{files: map[string]string{}, run: func(remote.Cmd) (remote.Result, error) {
		return remote.Result{Stdout: fixture(t, "show-success.txt")}, nil
	}}
	if _, err := (Manager{Runner: f}).Read(context.Background(), "other"); err == nil || !strings.Contains(err.Error(), "homelab-test-sched.service") {
		t.Fatalf("want an error naming the unexpected unit, got %v", err)
	}
}

// RunNow gathers the result and the run's journal.
func TestRunNowFailureDetails(t *testing.T) {
	f := &fakeRunner{files: map[string]string{}}
	f.run = func(cmd remote.Cmd) (remote.Result, error) {
		switch {
		case cmd.Args[0] == "systemctl" && cmd.Args[1] == "start":
			stderr := "Job for homelab-test-sched-fail.service failed because the control process exited with error code.\n"
			return remote.Result{ExitCode: 1, Stderr: []byte(stderr)}, exitErr(1, stderr)
		case cmd.Args[0] == "env":
			return remote.Result{Stdout: fixture(t, "show-failed.txt")}, nil
		case cmd.Args[0] == "journalctl":
			return remote.Result{Stdout: []byte("line 1\nline 2\n")}, nil
		}
		t.Fatalf("unexpected command %q", cmd.String())
		return remote.Result{}, nil
	}
	err := Manager{Runner: f}.RunNow(context.Background(), "homelab-test-sched-fail")
	var re *RunError
	if !errors.As(err, &re) || re.Result != "failed: exit-code/1" || re.Journal != "line 1\nline 2\n" {
		t.Fatalf("%#v", err)
	}
	want := "homelab-test-sched-fail.service on root@fake:22: failed: exit-code/1\njournal:\nline 1\nline 2"
	if err.Error() != want {
		t.Fatalf("error %q\nwant %q", err.Error(), want)
	}
	units, _ := parseShow(fixture(t, "show-failed.txt"))
	id := "_SYSTEMD_INVOCATION_ID=" + units[0]["InvocationID"]
	if last := f.cmds[len(f.cmds)-1]; !strings.Contains(last, id) {
		t.Fatalf("journalctl %q does not select the invocation (%s)", last, id)
	}
}

// A second Install of the same unit writes nothing.
func TestInstallIdempotentFake(t *testing.T) {
	var scripts []string
	f := &fakeRunner{files: map[string]string{}}
	f.run = func(cmd remote.Cmd) (remote.Result, error) {
		if cmd.Args[0] == "sh" {
			scripts = append(scripts, cmd.Args[len(cmd.Args)-1])
		}
		return remote.Result{}, nil
	}
	u := Unit{Name: "job", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}, Environment: map[string]string{"K": "v"}}
	m := Manager{Runner: f}
	for range 2 {
		if err := m.Install(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := Render(u)
	if f.files[ServicePath("job")] != files.Service || f.files[TimerPath("job")] != files.Timer || f.files[EnvPath("job")] != files.Env {
		t.Fatalf("files %v", f.files)
	}
	// The activation script is told whether anything was written.
	if !slices.Equal(scripts, []string{"1", "0"}) {
		t.Fatalf("activation flags %q", scripts)
	}
	if !bytes.Contains([]byte(strings.Join(f.cmds, "\n")), []byte("systemd-analyze calendar -- daily")) {
		t.Fatalf("the calendar was not checked: %q", f.cmds)
	}
}

// Read of a failed run carries what its commands wrote, from the journal
// of that invocation only.
func TestReadFailedOutput(t *testing.T) {
	f := &fakeRunner{files: map[string]string{ServicePath("homelab-test-sched-fail"): "S"}}
	f.run = func(cmd remote.Cmd) (remote.Result, error) {
		switch cmd.Args[0] {
		case "env":
			return remote.Result{Stdout: fixture(t, "show-failed.txt")}, nil
		case "journalctl":
			return remote.Result{Stdout: []byte("unable to create lock in backend: repository is already locked\n")}, nil
		}
		t.Fatalf("unexpected command %q", cmd.String())
		return remote.Result{}, nil
	}
	st, err := Manager{Runner: f}.Read(context.Background(), "homelab-test-sched-fail")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastResult != "failed: exit-code/1" || st.LastOutput != "unable to create lock in backend: repository is already locked" {
		t.Fatalf("%+v", st)
	}
	units, _ := parseShow(fixture(t, "show-failed.txt"))
	if last := f.cmds[len(f.cmds)-1]; !strings.Contains(last, "_SYSTEMD_INVOCATION_ID="+units[0]["InvocationID"]) || !strings.Contains(last, "-o cat") {
		t.Fatalf("journalctl %q does not select the invocation's own output", last)
	}

	// A successful run reads no journal.
	f.cmds = nil
	f.files[ServicePath("homelab-test-sched")] = "S"
	f.run = func(cmd remote.Cmd) (remote.Result, error) {
		if cmd.Args[0] != "env" {
			t.Fatalf("unexpected command %q", cmd.String())
		}
		return remote.Result{Stdout: fixture(t, "show-success.txt")}, nil
	}
	if st, err := (Manager{Runner: f}).Read(context.Background(), "homelab-test-sched"); err != nil || st.LastOutput != "" {
		t.Fatalf("%+v, %v", st, err)
	}
}

// failingFiles is a fakeRunner whose file reads fail with err.
type failingFiles struct {
	*fakeRunner
	err error
}

func (f failingFiles) ReadFile(context.Context, string) ([]byte, error) { return nil, f.err }

// Read says ErrNotFound only when none of the unit's files is on the host
// (systemd's recorded answer for removed units, show-missing): a unit with
// one file left is drift, and an unreachable host, a file that cannot be
// read or a failing systemctl keep their own errors.
func TestReadNotFound(t *testing.T) {
	const name = "homelab-test-sched"
	missing := func(remote.Cmd) (remote.Result, error) {
		return remote.Result{Stdout: fixture(t, "show-missing.txt")}, nil
	}
	ctx := context.Background()

	_, err := Manager{Runner: &fakeRunner{files: map[string]string{}, run: missing}}.Read(ctx, name)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "root@fake:22") {
		t.Errorf("no files: %v, want ErrNotFound naming the unit and the host", err)
	}

	st, err := Manager{Runner: &fakeRunner{files: map[string]string{EnvPath(name): "A=1\n"}, run: missing}}.Read(ctx, name)
	if err != nil || st.Env != "A=1\n" || st.Service != "" {
		t.Errorf("only the env file: %+v, %v; want the state", st, err)
	}

	for what, r := range map[string]remote.Runner{
		"unreachable": failingFiles{&fakeRunner{run: missing}, &remote.ConnError{Target: "root@fake:22", Op: "dial", Err: errors.New("connection refused")}},
		"unreadable":  failingFiles{&fakeRunner{run: missing}, exitErr(1, "cat: "+ServicePath(name)+": Permission denied\n")},
		"systemctl": &fakeRunner{files: map[string]string{}, run: func(remote.Cmd) (remote.Result, error) {
			return remote.Result{ExitCode: 1}, exitErr(1, "Failed to connect to bus: No such file or directory\n")
		}},
	} {
		_, err := Manager{Runner: r}.Read(ctx, name)
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want an error that is not ErrNotFound", what, err)
		}
		if what == "unreachable" && !remote.IsUnreachable(err) {
			t.Errorf("%s: %v is not unreachable", what, err)
		}
	}
}
