package systemd

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// These tests run against real systemd 252 in the testbed's Debian 12 VM
// (booted once for the package, about 25 s), as root over SSH through a
// remote.Pool runner, like the provider reaches a host. Tests share the VM
// and run in parallel, each with its own unit names.

var record = flag.Bool("record", false, "save systemctl output recorded in the VM into testdata/ (see testdata/README.md)")

var vmShared struct {
	once sync.Once
	vm   *testbed.ZFSVM
	pool *remote.Pool
	r    remote.Runner
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if vmShared.pool != nil {
		_ = vmShared.pool.Close()
	}
	if vmShared.vm != nil {
		if err := vmShared.vm.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if vmShared.dir != "" {
		_ = os.RemoveAll(vmShared.dir)
	}
	os.Exit(code)
}

// testVM boots the package's VM on first use and returns it with a Runner
// that reaches it as root.
func testVM(t *testing.T) (*testbed.ZFSVM, remote.Runner) {
	t.Helper()
	vmShared.once.Do(func() {
		start := time.Now()
		dir, err := os.MkdirTemp("", "systemd-vm-")
		if err != nil {
			vmShared.err = err
			return
		}
		vmShared.dir = dir
		// Generous: a cold image build takes about five minutes.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "zfsvm: "+format+"\n", args...) }
		vm, err := testbed.StartZFSVM(ctx, dir, testbed.ZFSVMOptions{Disks: 1, Logf: logf})
		if err != nil {
			vmShared.err = err
			return
		}
		vmShared.vm = vm
		vmShared.pool = remote.NewPool(nil)
		vmShared.r, vmShared.err = vmShared.pool.Runner(remote.Config{
			Host: vm.SSHHost, Port: vm.SSHPort, User: "root",
			PrivateKey: string(vm.PrivateKeyPEM), KnownHostsFile: vm.KnownHostsPath,
			Timeout: 20 * time.Second,
		})
		fmt.Fprintf(os.Stderr, "systemd tests: VM up in %s\n", time.Since(start).Round(100*time.Millisecond))
	})
	if vmShared.err != nil {
		t.Fatalf("starting the test VM: %v", vmShared.err)
	}
	return vmShared.vm, vmShared.r
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// vmRun runs a shell script as root in the VM and returns its trimmed output.
func vmRun(t *testing.T, vm *testbed.ZFSVM, script string) string {
	t.Helper()
	out, err := vm.Run(testCtx(t, 2*time.Minute), script)
	if err != nil {
		t.Fatalf("in the VM: %s: %v", script, err)
	}
	return strings.TrimSpace(out)
}

// recordFixture saves data as testdata/name when -record is given.
func recordFixture(t *testing.T, name string, data []byte) {
	t.Helper()
	if !*record {
		return
	}
	if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordShow saves the systemctl show output Read parses for unit name
// as testdata/<fixture>.txt (with --timestamp=unix) and
// testdata/<fixture>.default.txt (without, as systemd before 248 prints).
func recordShow(t *testing.T, r remote.Runner, name, fixture string) {
	t.Helper()
	if !*record {
		return
	}
	for _, v := range []struct {
		suffix string
		unix   bool
	}{{".txt", true}, {".default.txt", false}} {
		res, err := r.Run(testCtx(t, time.Minute), showCommand(name, v.unix))
		if err != nil {
			t.Fatal(err)
		}
		recordFixture(t, fixture+v.suffix, res.Stdout)
	}
}

func install(t *testing.T, r remote.Runner, u Unit) Files {
	t.Helper()
	if err := (Manager{Runner: r}).Install(testCtx(t, 2*time.Minute), u); err != nil {
		t.Fatalf("Install %s: %v", u.Name, err)
	}
	files, err := Render(u)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func read(t *testing.T, r remote.Runner, name string) State {
	t.Helper()
	st, err := (Manager{Runner: r}).Read(testCtx(t, time.Minute), name)
	if err != nil {
		t.Fatalf("Read %s: %v", name, err)
	}
	return st
}

// waitResult polls Read until the unit has a finished run.
func waitResult(t *testing.T, r remote.Runner, name string, timeout time.Duration) State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := read(t, r, name)
		if st.LastResult != "" && st.LastResult != "running" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not run within %s: %+v", name, timeout, st)
		}
		time.Sleep(time.Second)
	}
}

// countingRunner counts the uploads through a Runner.
type countingRunner struct {
	remote.Runner
	uploads atomic.Int32
}

func (c *countingRunner) Upload(ctx context.Context, path string, r io.Reader, mode fs.FileMode) error {
	c.uploads.Add(1)
	return c.Runner.Upload(ctx, path, r, mode)
}

// The timer fires on its own every 10 s; Read reports the result of a
// successful and of a failing service, Install is idempotent.
func TestVMTimerFiresOnSchedule(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	out := "/var/tmp/homelab-test-sched.out"
	ok := Unit{
		Name:        "homelab-test-sched",
		Description: `Scheduled test: 100% "quoted" $HOME`,
		ExecStart: [][]string{
			{"/bin/sh", "-c", `printf '%s|%s|%s\n' "$1" "$GREETING" "$(date +%s)" >> ` + out, "sh",
				`arg with spaces, "double" and 'single' quotes, $HOME, ${HOME}, 100%, %n, back\slash`},
			{"/bin/sh", "-c", "echo second >> " + out},
		},
		Environment: map[string]string{"GREETING": `hello $USER "world"`},
		OnCalendar:  []string{"*:*:0/10"},
		AccuracySec: "1s",
	}
	bad := Unit{
		Name:        "homelab-test-sched-fail",
		ExecStart:   [][]string{{"/bin/false"}},
		OnCalendar:  []string{"*:*:0/10"},
		AccuracySec: "1s",
	}
	installed := time.Now()
	files := install(t, r, ok)
	install(t, r, bad)

	st := read(t, r, ok.Name)
	if st.Service != files.Service || st.Timer != files.Timer || st.Env != files.Env {
		t.Fatalf("read back files differ from the rendered ones:\n%+v\nwant %+v", st, files)
	}
	if !st.TimerEnabled || !st.TimerActive {
		t.Fatalf("fresh unit: %+v", st)
	}
	// On a busy machine the timer may have fired already. The VM's clock
	// and load make exact times meaningless: only require a next run.
	if st.LastRun.IsZero() && st.NextRun.IsZero() && !st.Running {
		t.Fatalf("fresh timer has neither run nor a next run: %+v", st)
	}

	got := waitResult(t, r, ok.Name, time.Minute)
	// Loose bounds: the VM's clock is not the host's.
	if got.LastResult != "success" || got.LastRun.Before(installed.Add(-time.Minute)) || got.LastRun.After(time.Now().Add(time.Minute)) {
		t.Fatalf("after the timer fired: %+v (installed at %s)", got, installed)
	}
	recordShow(t, r, ok.Name, "show-success")
	gotBad := waitResult(t, r, bad.Name, time.Minute)
	if gotBad.LastResult != "failed: exit-code/1" || gotBad.LastRun.IsZero() || !gotBad.TimerActive {
		t.Fatalf("failing unit after the timer fired: %+v", gotBad)
	}
	recordShow(t, r, bad.Name, "show-failed")
	t.Logf("timer ran %s after install: %+v", got.LastRun.Sub(installed).Round(time.Second), got)

	lines := strings.Split(vmRun(t, vm, "cat "+out), "\n")
	want := `arg with spaces, "double" and 'single' quotes, $HOME, ${HOME}, 100%, %n, back\slash|hello $USER "world"|`
	if len(lines) < 2 || !strings.HasPrefix(lines[0], want) || lines[1] != "second" {
		t.Fatalf("the service wrote %q, want a first line starting with %q, then \"second\"", lines, want)
	}

	// Installing the same unit again writes and reloads nothing.
	counting := &countingRunner{Runner: r}
	if err := (Manager{Runner: counting}).Install(testCtx(t, time.Minute), ok); err != nil {
		t.Fatal(err)
	}
	if n := counting.uploads.Load(); n != 0 {
		t.Fatalf("second Install wrote %d files", n)
	}
	if got := vmRun(t, vm, "systemctl show -P NeedDaemonReload homelab-test-sched.service homelab-test-sched.timer"); got != "no\n\nno" {
		t.Fatalf("NeedDaemonReload: %q", got)
	}

	// Remove leaves nothing of units whose timer fired (it has a stamp
	// file) and whose service failed.
	for _, name := range []string{ok.Name, bad.Name} {
		if got := vmRun(t, vm, "systemctl list-timers --all --no-legend "+name+".timer | wc -l"); got != "1" {
			t.Fatalf("list-timers before Remove: %s", got)
		}
		if err := (Manager{Runner: r}).Remove(testCtx(t, time.Minute), name); err != nil {
			t.Fatal(err)
		}
		checkGone(t, vm, r, name)
	}
	recordShow(t, r, ok.Name, "show-missing")
}

// Every ExecStart argument and every environment value reaches the
// program byte for byte.
func TestVMQuotingRoundTrip(t *testing.T) {
	t.Parallel()
	_, r := testVM(t)
	args := []string{
		"", "plain", "with space", "  leading and trailing  ", `"double"`, `'single'`, `it's`,
		"$HOME", "${HOME}", "$$", "$", "a$b", "100%", "%n", "%%", "%", `back\slash`, `trailing\`, `\`,
		`\n`, "new\nline", "tab\there", "cr\rhere", "bell\a", ";", `\;`, "a;b", "-x", "--flag=value",
		"#comment", "key=value", "é ü 日本", "*", "?", "~", "`cmd`", "$(cmd)", "{a,b}", "&&", "|", ">out",
		"\x7f", `\x41`, `\u00e9`,
	}
	env := map[string]string{
		"PLAIN":    "value",
		"SPACES":   "  two  words  ",
		"QUOTES":   `"double" 'single' it's`,
		"DOLLAR":   "$HOME ${HOME} $$ $",
		"BACKTICK": "`id`",
		"BACKSL":   `a\b\\c\`,
		"PERCENT":  "100% %n %%",
		"NEWLINES": "line1\nline2\n",
		"TAB":      "a\tb",
		"HASH":     "# not a comment ; nor this",
		"EMPTY":    "",
		"UNICODE":  "é ü 日本",
		"EQUALS":   "a=b=c",
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	u := Unit{
		Name: "homelab-test-quote",
		ExecStart: [][]string{
			append([]string{"/bin/sh", "-c", `for a; do printf '%s' "$a" | base64 -w0; echo; done > /var/tmp/quote-args`, "sh"}, args...),
			append([]string{"/bin/sh", "-c", `for v; do eval "val=\${$v}"; printf '%s' "$val" | base64 -w0; echo; done > /var/tmp/quote-env`, "sh"}, names...),
		},
		Environment: env,
		OnCalendar:  []string{"*-*-* 03:00:00"},
	}
	files := install(t, r, u)
	if err := (Manager{Runner: r}).RunNow(testCtx(t, time.Minute), u.Name); err != nil {
		t.Fatalf("RunNow: %v\nservice file:\n%s", err, files.Service)
	}
	decode := func(path string) []string {
		data, err := r.ReadFile(testCtx(t, time.Minute), path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			b, err := base64.StdEncoding.DecodeString(l)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, l, err)
			}
			out = append(out, string(b))
		}
		return out
	}
	gotArgs := decode("/var/tmp/quote-args")
	if len(gotArgs) != len(args) {
		t.Fatalf("the program got %d arguments, want %d: %q\nservice file:\n%s", len(gotArgs), len(args), gotArgs, files.Service)
	}
	for i := range args {
		if gotArgs[i] != args[i] {
			t.Errorf("argument %d: got %q, want %q (written %s)", i, gotArgs[i], args[i], quoteExecWord(args[i]))
		}
	}
	gotEnv := decode("/var/tmp/quote-env")
	if len(gotEnv) != len(names) {
		t.Fatalf("got %d values, want %d: %q\nenv file:\n%s", len(gotEnv), len(names), gotEnv, files.Env)
	}
	for i, k := range names {
		if gotEnv[i] != env[k] {
			t.Errorf("%s: got %q, want %q", k, gotEnv[i], env[k])
		}
	}
	if t.Failed() {
		t.Logf("service file:\n%s\nenv file:\n%s", files.Service, files.Env)
	}
	st := read(t, r, u.Name)
	if st.LastResult != "success" || st.LastRun.IsZero() {
		t.Fatalf("after RunNow: %+v", st)
	}
}

// The environment file is root's alone, and its secrets appear nowhere in
// the units.
func TestVMEnvFileIsPrivate(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	const secret = "s3cr3t-Pa55w0rd-never-in-units"
	u := Unit{
		Name:        "homelab-test-secret",
		Description: "secret handling",
		ExecStart:   [][]string{{"/bin/sh", "-c", `test "$RESTIC_PASSWORD" = "$1"`, "sh", "expected-elsewhere"}},
		Environment: map[string]string{"RESTIC_PASSWORD": secret},
		OnCalendar:  []string{"daily"},
		User:        "nobody",
	}
	files := install(t, r, u)
	if got := vmRun(t, vm, "stat -c '%a %U %G' "+EnvPath(u.Name)); got != "600 root root" {
		t.Fatalf("env file: %s", got)
	}
	if got := vmRun(t, vm, "stat -c '%a %U %G' "+EnvDir); got != "700 root root" {
		t.Fatalf("env dir: %s", got)
	}
	if got := vmRun(t, vm, "stat -c '%a %U %G' "+ServicePath(u.Name)+" "+TimerPath(u.Name)); got != "644 root root\n644 root root" {
		t.Fatalf("unit files: %s", got)
	}
	if strings.Contains(files.Service+files.Timer, secret) || !strings.Contains(files.Env, secret) {
		t.Fatalf("the secret must be in the env file only:\n%s\n%s", files.Service, files.Timer)
	}
	// Nothing systemd shows about the units carries it either.
	if got := vmRun(t, vm, `{ systemctl cat homelab-test-secret.service homelab-test-secret.timer; systemctl show homelab-test-secret.service homelab-test-secret.timer; grep -rF -- '`+secret+`' /etc/systemd /run/systemd/transient 2>/dev/null; } | grep -cF -- '`+secret+`' || :`); got != "0" {
		t.Fatalf("the secret shows up %s times in systemctl cat/show or unit directories", got)
	}
	if st := read(t, r, u.Name); st.Env != files.Env {
		t.Fatalf("Read Env differs from the rendered file")
	}
	// The service still sees it, though it runs as nobody.
	err := (Manager{Runner: r}).RunNow(testCtx(t, time.Minute), u.Name)
	var re *RunError
	if !errors.As(err, &re) || re.Result != "failed: exit-code/1" {
		t.Fatalf("the test compares with the wrong value on purpose and must fail: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error reveals the secret: %v", err)
	}
	u.ExecStart = [][]string{{"/bin/sh", "-c", `test "$RESTIC_PASSWORD" = "$1" && test "$(id -un)" = nobody`, "sh", secret}}
	install(t, r, u)
	if err := (Manager{Runner: r}).RunNow(testCtx(t, time.Minute), u.Name); err != nil {
		t.Fatalf("the service should see the secret: %v", err)
	}
}

// RunNow of a failing service reports its result and journal; Read too.
func TestVMRunNowFailure(t *testing.T) {
	t.Parallel()
	_, r := testVM(t)
	m := Manager{Runner: r}
	u := Unit{
		Name: "homelab-test-fail",
		ExecStart: [][]string{
			{"/bin/sh", "-c", "echo first-step-ran"},
			{"/bin/sh", "-c", "echo boom-marker >&2; exit 7"},
			{"/bin/sh", "-c", "echo never-reached"},
		},
		OnCalendar: []string{"*-*-* 03:00:00"},
	}
	install(t, r, u)
	err := m.RunNow(testCtx(t, time.Minute), u.Name)
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("RunNow: want a *RunError, got %v", err)
	}
	if re.Result != "failed: exit-code/7" || !strings.Contains(re.Journal, "boom-marker") ||
		!strings.Contains(re.Journal, "first-step-ran") || strings.Contains(re.Journal, "never-reached") {
		t.Fatalf("RunError: %+v", re)
	}
	if code, ok := remote.ExitCode(err); !ok || code == 0 {
		t.Fatalf("RunError should wrap systemctl's exit error: %v", err)
	}
	t.Logf("RunNow error:\n%v", err)
	st := read(t, r, u.Name)
	if st.LastResult != "failed: exit-code/7" || st.LastRun.IsZero() {
		t.Fatalf("Read after a failed run: %+v", st)
	}

	// Killed by a signal.
	k := Unit{Name: "homelab-test-killed", ExecStart: [][]string{{"/bin/sh", "-c", "kill -KILL $$"}}, OnCalendar: []string{"daily"}}
	install(t, r, k)
	if err := m.RunNow(testCtx(t, time.Minute), k.Name); !errors.As(err, &re) || re.Result != "failed: signal/KILL" {
		t.Fatalf("RunNow of a killed service: %v", err)
	}
	recordShow(t, r, k.Name, "show-killed")

	// A missing environment file fails before any command runs.
	e := Unit{Name: "homelab-test-noenv", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}}
	install(t, r, e)
	if _, err := r.Run(testCtx(t, time.Minute), remote.Command("rm", EnvPath(e.Name))); err != nil {
		t.Fatal(err)
	}
	if err := m.RunNow(testCtx(t, time.Minute), e.Name); !errors.As(err, &re) || re.Result != "failed: resources" {
		t.Fatalf("RunNow without the env file: %v", err)
	}
	if st := read(t, r, e.Name); st.Env != "" || st.LastResult != "failed: resources" || st.LastRun.IsZero() {
		t.Fatalf("Read without the env file: %+v", st)
	}
	recordShow(t, r, e.Name, "show-resources")
	install(t, r, e) // puts it back
	if err := m.RunNow(testCtx(t, time.Minute), e.Name); err != nil {
		t.Fatalf("RunNow after reinstalling: %v", err)
	}

	// A unit that does not exist.
	err = m.RunNow(testCtx(t, time.Minute), "homelab-test-nosuch")
	if err == nil || !strings.Contains(err.Error(), "not found") || remote.IsUnreachable(err) {
		t.Fatalf("RunNow of a missing unit: %v", err)
	}
}

// Read during a run reports it; RunNow waits for the run in progress.
func TestVMRunningState(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	u := Unit{Name: "homelab-test-running", ExecStart: [][]string{{"/bin/sleep", "5"}}, OnCalendar: []string{"daily"}}
	install(t, r, u)
	vmRun(t, vm, "systemctl start --no-block homelab-test-running.service")
	st := read(t, r, u.Name)
	if !st.Running || st.LastResult != "running" || st.LastRun.IsZero() {
		t.Fatalf("Read during a run: %+v", st)
	}
	recordShow(t, r, u.Name, "show-running")
	start := time.Now()
	if err := (Manager{Runner: r}).RunNow(testCtx(t, time.Minute), u.Name); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("note: RunNow took %s, so it started a second run", d)
	}
	if st := read(t, r, u.Name); st.Running || st.LastResult != "success" {
		t.Fatalf("Read after the run: %+v", st)
	}
}

// Read returns what is on disk, including edits made by hand, and Install
// puts the managed content back and reloads systemd.
func TestVMOutOfBandEdit(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	u := Unit{Name: "homelab-test-edit", Description: "managed description", ExecStart: [][]string{{"/bin/true"}},
		Environment: map[string]string{"K": "v"}, OnCalendar: []string{"daily"}}
	installed := time.Now().UTC()
	files := install(t, r, u)
	st := read(t, r, u.Name)
	midnight := time.Date(installed.Year(), installed.Month(), installed.Day()+1, 0, 0, 0, 0, time.UTC)
	if !st.TimerEnabled || !st.TimerActive || st.Running || !st.LastRun.IsZero() || st.LastResult != "" || !st.NextRun.Equal(midnight) {
		t.Fatalf("fresh daily unit (the VM runs on UTC): %+v, want NextRun %s", st, midnight)
	}
	recordShow(t, r, u.Name, "show-installed")
	vmRun(t, vm, "sed -i 's/^Description=.*/Description=edited by hand/' "+ServicePath(u.Name)+
		" && echo 'EXTRA=1' >> "+EnvPath(u.Name)+" && sed -i 's/^OnCalendar=.*/OnCalendar=weekly/' "+TimerPath(u.Name))
	st = read(t, r, u.Name)
	if st.Service != strings.Replace(files.Service, "managed description", "edited by hand", 1) ||
		st.Env != files.Env+"EXTRA=1\n" || st.Timer != strings.Replace(files.Timer, "OnCalendar=daily", "OnCalendar=weekly", 1) {
		t.Fatalf("Read does not return the edited files:\n%s\n%s", st.Service, st.Timer)
	}
	install(t, r, u)
	st = read(t, r, u.Name)
	if st.Service != files.Service || st.Timer != files.Timer || st.Env != files.Env {
		t.Fatalf("Install did not restore the files")
	}
	if got := vmRun(t, vm, "systemctl show -P Description,NeedDaemonReload homelab-test-edit.service"); got != "managed description\nno" {
		t.Fatalf("systemd did not reload the restored unit: %q", got)
	}

	// The files are right but systemd loaded an edited copy: Install
	// still reloads.
	vmRun(t, vm, "cp "+ServicePath(u.Name)+" /root/keep && sed -i 's/^Description=.*/Description=loaded edit/' "+ServicePath(u.Name)+
		" && systemctl daemon-reload && cp /root/keep "+ServicePath(u.Name))
	install(t, r, u)
	if got := vmRun(t, vm, "systemctl show -P Description,NeedDaemonReload homelab-test-edit.service"); got != "managed description\nno" {
		t.Fatalf("Install did not reload a stale unit: %q", got)
	}

	// A file that is gone reads as empty content; Install writes it back.
	vmRun(t, vm, "rm "+TimerPath(u.Name))
	if st := read(t, r, u.Name); st.Timer != "" || st.Service != files.Service {
		t.Fatalf("Read with the timer file gone: %+v", st)
	}
	install(t, r, u)
	if st := read(t, r, u.Name); st.Timer != files.Timer || !st.TimerActive || !st.TimerEnabled {
		t.Fatalf("Install did not restore the timer: %+v", st)
	}
}

// Remove of units that are missing or only partly there. (Removing
// complete units is tested in TestVMTimerFiresOnSchedule.)
func TestVMRemove(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	m := Manager{Runner: r}
	// Twice, and a name that never existed.
	name := "homelab-test-never-installed"
	for range 2 {
		if err := m.Remove(testCtx(t, time.Minute), name); err != nil {
			t.Fatalf("Remove %s: %v", name, err)
		}
	}
	checkGone(t, vm, r, name)

	// Files deleted by hand, and a failed service: Remove still stops and
	// forgets everything.
	u := Unit{Name: "homelab-test-remove-partial", ExecStart: [][]string{{"/bin/false"}}, OnCalendar: []string{"daily"}}
	install(t, r, u)
	if err := m.RunNow(testCtx(t, time.Minute), u.Name); err == nil {
		t.Fatal("RunNow of /bin/false succeeded")
	}
	// (Whether systemd still runs the timer now depends on whether another
	// test reloaded systemd in between.)
	vmRun(t, vm, "rm "+TimerPath(u.Name)+" "+EnvPath(u.Name))
	if err := m.Remove(testCtx(t, time.Minute), u.Name); err != nil {
		t.Fatal(err)
	}
	checkGone(t, vm, r, u.Name)
}

// checkGone verifies that nothing of unit name is left on the VM.
func checkGone(t *testing.T, vm *testbed.ZFSVM, r remote.Runner, name string) {
	t.Helper()
	paths := []string{ServicePath(name), TimerPath(name), EnvPath(name),
		"/etc/systemd/system/timers.target.wants/" + name + ".timer", "/var/lib/systemd/timers/stamp-" + name + ".timer"}
	for _, p := range paths {
		if got := vmRun(t, vm, "if [ -e "+p+" ] || [ -L "+p+" ]; then echo present; else echo absent; fi"); got != "absent" {
			t.Errorf("%s is still there", p)
		}
	}
	if got := vmRun(t, vm, "systemctl list-timers --all --no-legend"); slices.Contains(strings.Fields(got), name+".timer") {
		t.Errorf("systemctl list-timers still lists %s.timer:\n%s", name, got)
	}
	if got := vmRun(t, vm, "systemctl show -P LoadState,ActiveState "+name+".service "+name+".timer"); got != "not-found\ninactive\n\nnot-found\ninactive" {
		t.Errorf("systemd still knows the units: %q", got)
	}
	if st, err := (Manager{Runner: r}).Read(testCtx(t, time.Minute), name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read after Remove: %+v, %v; want ErrNotFound", st, err)
	}
}

// Calendar specifications and time spans are checked by the host's
// systemd, and a unit that fails the check is not installed.
func TestVMValidation(t *testing.T) {
	t.Parallel()
	vm, r := testVM(t)
	for _, spec := range []string{"*:*:0/10", "daily", "Mon..Fri 02:30", "*-*-01 04:00:00 Europe/Berlin", "2020-01-01"} {
		if err := ValidateCalendar(testCtx(t, time.Minute), r, spec); err != nil {
			t.Errorf("ValidateCalendar(%q): %v", spec, err)
		}
	}
	for _, spec := range []string{"bogus spec", "25:00", "-1", "daily; rm -rf /", "%n"} {
		err := ValidateCalendar(testCtx(t, time.Minute), r, spec)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Failed to parse calendar specification") || remote.IsUnreachable(err) {
			t.Errorf("ValidateCalendar(%q): %v", spec, err)
		}
	}
	if err := ValidateCalendar(testCtx(t, time.Minute), r, "daily\nOnCalendar=hourly"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a newline must be refused before asking systemd: %v", err)
	}
	m := Manager{Runner: r}
	for _, u := range []Unit{
		{Name: "homelab-test-invalid", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily", "bogus spec"}},
		{Name: "homelab-test-invalid", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}, RandomizedDelaySec: "5 fish"},
	} {
		err := m.Install(testCtx(t, time.Minute), u)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Install %+v: %v", u, err)
		}
		t.Logf("Install error: %v", err)
	}
	checkGone(t, vm, r, "homelab-test-invalid")
}

// An unreachable host is an error, never a missing unit.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	pool := remote.NewPool(nil)
	t.Cleanup(func() { _ = pool.Close() })
	r, err := pool.Runner(remote.Config{Host: "127.0.0.1", Port: port, User: "root", Password: "x",
		InsecureIgnoreHostKey: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := Manager{Runner: r}
	u := Unit{Name: "x", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}}
	ctx := testCtx(t, time.Minute)
	if _, err := m.Read(ctx, "x"); !remote.IsUnreachable(err) {
		t.Errorf("Read: %v", err)
	}
	for name, err := range map[string]error{
		"Install":          m.Install(ctx, u),
		"RunNow":           m.RunNow(ctx, "x"),
		"Remove":           m.Remove(ctx, "x"),
		"ValidateCalendar": ValidateCalendar(ctx, r, "daily"),
	} {
		if !remote.IsUnreachable(err) || errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}
