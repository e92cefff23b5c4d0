package systemd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// journalTailLines bounds the journal quoted in a RunError.
const journalTailLines = 30

// outputTailLines bounds State.LastOutput.
const outputTailLines = 20

// State is a unit as installed on a host.
type State struct {
	// Service, Timer and Env are the installed contents. Env holds
	// secrets: callers store a hash of it, never the content. A missing
	// file reads as "" (when at least one of the three is there, else
	// Read fails with ErrNotFound), so an install that lost a file shows as
	// content drift.
	Service, Timer, Env string
	// TimerEnabled: the timer starts at boot (enabled in timers.target).
	// TimerActive: the timer is running now and will fire.
	TimerEnabled, TimerActive bool
	// LastRun is when the latest run started, zero if none is known;
	// LastResult is "" (no run known), "running", "success" or
	// "failed: RESULT/STATUS". See statusFromShow for where they come
	// from and what survives a reboot.
	LastRun    time.Time
	LastResult string
	// LastOutput is, when the latest run failed, the last lines its
	// commands wrote (stdout and stderr, from the journal of that
	// invocation, without systemd's own messages); "" otherwise, and when
	// the journal no longer has them.
	LastOutput string
	// Running reports a run in progress (LastResult "running").
	Running bool
	// NextRun is when the timer fires next; zero when it is not active,
	// and while a run is in progress (systemd computes the next time
	// once the service has finished).
	NextRun time.Time
}

// Manager installs and inspects units on the host its Runner reaches. The
// Runner must run commands as root (directly or through sudo).
type Manager struct {
	Runner remote.Runner
}

// RunError reports a run of the service that failed.
type RunError struct {
	// Unit is NAME.service and Target the host.
	Unit, Target string
	// Result is the run's outcome as State.LastResult puts it.
	Result string
	// Journal is the tail of the run's journal (its commands' output and
	// systemd's messages about it).
	Journal string
	// Err is the failure of `systemctl start`.
	Err error
}

func (e *RunError) Error() string {
	msg := fmt.Sprintf("%s on %s: ", e.Unit, e.Target)
	if e.Result != "" {
		msg += e.Result
	} else {
		msg += "failed"
	}
	if j := strings.TrimSpace(e.Journal); j != "" {
		msg += "\njournal:\n" + j
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

// ValidateCalendar asks the host's systemd whether spec is a valid
// OnCalendar= value (`systemd-analyze calendar`). An invalid spec gives an
// error wrapping ErrInvalid that carries systemd's message; a host that
// cannot be reached gives an error for which remote.IsUnreachable holds.
// A valid spec that never elapses again (a date in the past) is accepted,
// as systemd accepts it.
func ValidateCalendar(ctx context.Context, r remote.Runner, spec string) error {
	return validateCalendars(ctx, r, []string{spec})
}

// validateCalendars checks specs with one systemd-analyze command.
func validateCalendars(ctx context.Context, r remote.Runner, specs []string) error {
	for _, spec := range specs {
		if err := checkCalendarText(spec); err != nil {
			return fmt.Errorf("%w calendar specification %q: %v", ErrInvalid, spec, err)
		}
	}
	res, err := r.Run(ctx, remote.Command("systemd-analyze", append([]string{"calendar", "--"}, specs...)...))
	if err == nil {
		return nil
	}
	if code, ok := remote.ExitCode(err); ok && code == 1 {
		// "Failed to parse calendar specification 'x': Invalid argument"
		msg := oneLine(res.Stderr)
		if len(specs) == 1 {
			return fmt.Errorf("%w calendar specification %q: %s", ErrInvalid, specs[0], msg)
		}
		return fmt.Errorf("%w calendar specification: %s", ErrInvalid, msg)
	}
	return fmt.Errorf("checking calendar specifications on %s: %w", r.String(), err)
}

// validateTimespans checks time spans with `systemd-analyze timespan`.
func validateTimespans(ctx context.Context, r remote.Runner, spans map[string]string) error {
	var keys, vals []string
	for _, k := range []string{"RandomizedDelaySec", "AccuracySec"} {
		if v := strings.TrimSpace(spans[k]); v != "" {
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	res, err := r.Run(ctx, remote.Command("systemd-analyze", append([]string{"timespan", "--"}, vals...)...))
	if err == nil {
		return nil
	}
	if code, ok := remote.ExitCode(err); ok && code == 1 {
		return fmt.Errorf("%w %s: %s", ErrInvalid, strings.Join(keys, " or "), oneLine(res.Stderr))
	}
	return fmt.Errorf("checking time spans on %s: %w", r.String(), err)
}

// oneLine joins the non-empty lines of a command's output.
func oneLine(b []byte) string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(no error output)"
	}
	return strings.Join(lines, "; ")
}

// installedFiles are the three files as read from the host; a missing
// file has ok false.
type installedFiles struct {
	service, timer, env       string
	serviceOK, timerOK, envOK bool
}

func (m Manager) readFiles(ctx context.Context, name string) (installedFiles, error) {
	var f installedFiles
	for _, x := range []struct {
		path string
		data *string
		ok   *bool
	}{
		{ServicePath(name), &f.service, &f.serviceOK},
		{TimerPath(name), &f.timer, &f.timerOK},
		{EnvPath(name), &f.env, &f.envOK},
	} {
		b, err := m.Runner.ReadFile(ctx, x.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return f, err
		}
		*x.data, *x.ok = string(b), true
	}
	return f, nil
}

// activateScript fixes ownership and modes, enables the timer if it is
// not, reloads systemd when a file changed, the timer was enabled or
// systemd says its loaded copy of a unit is stale, and starts the timer if
// it is not running. Each step is skipped when there is nothing to do:
// daemon-reload is the slow part, and a plain `systemctl enable --now`
// reloads every time. Arguments: name, service path, timer path, env path,
// "1" if a file was written.
const activateScript = `set -eu
svc="$1.service" tmr="$1.timer" reload=$5
chown 0:0 -- "$2" "$3" "$4"
chmod 0644 -- "$2" "$3"
chmod 0600 -- "$4"
if ! systemctl is-enabled --quiet -- "$tmr"; then
  systemctl enable --quiet --no-reload -- "$tmr"
  reload=1
fi
if [ "$reload" = 1 ] || systemctl show -P NeedDaemonReload -- "$svc" "$tmr" | grep -qx yes; then
  systemctl daemon-reload
fi
systemctl is-active --quiet -- "$tmr" || systemctl start -- "$tmr"`

// Install makes the host run u: it validates u (Render, and the calendar
// and time span values with the host's systemd), writes each of the three
// files that differs from the wanted content (each atomically: a temporary
// file renamed into place; the env file is never readable by others), runs
// daemon-reload if anything changed and enables and starts the timer.
// Calling it again with the same unit writes nothing and reloads nothing.
// A run in progress is not interrupted; the next one uses the new files.
func (m Manager) Install(ctx context.Context, u Unit) error {
	files, err := Render(u)
	if err != nil {
		return err
	}
	if err := validateCalendars(ctx, m.Runner, u.OnCalendar); err != nil {
		return fmt.Errorf("unit %s: %w", u.Name, err)
	}
	if err := validateTimespans(ctx, m.Runner, map[string]string{"RandomizedDelaySec": u.RandomizedDelaySec, "AccuracySec": u.AccuracySec}); err != nil {
		return fmt.Errorf("unit %s: %w", u.Name, err)
	}
	have, err := m.readFiles(ctx, u.Name)
	if err != nil {
		return fmt.Errorf("installing %s: %w", u.Name, err)
	}
	changed := false
	// The env file first and the timer last, so that nothing that is
	// already installed refers to a file that is not written yet.
	for _, f := range []struct {
		path, want, have string
		ok               bool
		mode             fs.FileMode
	}{
		{EnvPath(u.Name), files.Env, have.env, have.envOK, EnvFileMode},
		{ServicePath(u.Name), files.Service, have.service, have.serviceOK, UnitFileMode},
		{TimerPath(u.Name), files.Timer, have.timer, have.timerOK, UnitFileMode},
	} {
		if f.ok && f.have == f.want {
			continue
		}
		if err := remote.WriteFile(ctx, m.Runner, f.path, []byte(f.want), f.mode); err != nil {
			return fmt.Errorf("installing %s: %w", u.Name, err)
		}
		changed = true
	}
	flag := "0"
	if changed {
		flag = "1"
	}
	if _, err := m.Runner.Run(ctx, remote.Script(activateScript, u.Name, ServicePath(u.Name), TimerPath(u.Name), EnvPath(u.Name), flag)); err != nil {
		return fmt.Errorf("activating %s.timer on %s: %w", u.Name, m.Runner.String(), err)
	}
	return nil
}

// Read returns the installed files and what systemd says about the units.
// Units that are not installed (none of the three files is there) give an
// error matching ErrNotFound; a host that cannot be reached gives an error
// for which remote.IsUnreachable holds, and never ErrNotFound.
func (m Manager) Read(ctx context.Context, name string) (State, error) {
	if err := ValidateName(name); err != nil {
		return State{}, err
	}
	f, err := m.readFiles(ctx, name)
	if err != nil {
		return State{}, fmt.Errorf("reading unit %s: %w", name, err)
	}
	st := State{
		Service: f.service,
		Timer:   f.timer,
		Env:     f.env,
	}
	svc, tmr, err := m.show(ctx, name)
	if err != nil {
		return State{}, err
	}
	s, err := statusFromShow(svc, tmr)
	if err != nil {
		return State{}, fmt.Errorf("reading unit %s on %s: %w", name, m.Runner.String(), err)
	}
	st.TimerEnabled, st.TimerActive = s.TimerEnabled, s.TimerActive
	st.LastRun, st.LastResult, st.Running, st.NextRun = s.LastRun, s.LastResult, s.Running, s.NextRun
	if id := svc["InvocationID"]; strings.HasPrefix(st.LastResult, "failed") && id != "" {
		out, err := m.invocationOutput(ctx, id, outputTailLines)
		if err != nil {
			return State{}, fmt.Errorf("reading the journal of unit %s on %s: %w", name, m.Runner.String(), err)
		}
		st.LastOutput = out
	}
	if !f.serviceOK && !f.timerOK && !f.envOK {
		return State{}, fmt.Errorf("unit %s on %s: %w", name, m.Runner.String(), ErrNotFound)
	}
	return st, nil
}

// invocationOutput returns the last n lines that the processes of one
// invocation of a unit wrote to the journal (_SYSTEMD_INVOCATION_ID is set
// on the records of the unit's processes, not on systemd's own).
func (m Manager) invocationOutput(ctx context.Context, id string, n int) (string, error) {
	res, err := m.Runner.Run(ctx, remote.Command("journalctl", "--no-pager", "--quiet", "-o", "cat",
		"-n", fmt.Sprint(n), "_SYSTEMD_INVOCATION_ID="+id))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// showCommand is systemctl show of the unit pair; unixTime selects
// --timestamp=unix. TZ=UTC makes the times that option does not cover
// parseable.
func showCommand(name string, unixTime bool) remote.Cmd {
	args := []string{"TZ=UTC", "systemctl", "show"}
	if unixTime {
		args = append(args, "--timestamp=unix")
	}
	args = append(args, "--property="+strings.Join(showProperties, ","), "--", name+".service", name+".timer")
	return remote.Command("env", args...)
}

// show returns the properties of the service and the timer. Units that
// do not exist have LoadState "not-found".
func (m Manager) show(ctx context.Context, name string) (svc, tmr properties, err error) {
	res, err := m.Runner.Run(ctx, showCommand(name, true))
	if _, ok := remote.ExitCode(err); ok && unsupportedTimestampOption(res.Stderr) {
		res, err = m.Runner.Run(ctx, showCommand(name, false))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading unit %s on %s: %w", name, m.Runner.String(), err)
	}
	units, err := parseShow(res.Stdout)
	if err == nil && len(units) != 2 {
		err = fmt.Errorf("systemctl show printed %d units, want 2", len(units))
	}
	if err == nil {
		for i, want := range []string{name + ".service", name + ".timer"} {
			if id := units[i]["Id"]; id != want {
				err = fmt.Errorf("systemctl show printed unit %q where %q was expected", id, want)
				break
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading unit %s on %s: %w", name, m.Runner.String(), err)
	}
	return units[0], units[1], nil
}

// RunNow runs the service at once and waits until it has finished (for a
// oneshot service `systemctl start` returns when the commands are done; a
// run already in progress is waited for instead of starting another). A
// failed run gives a *RunError with the result and the tail of the run's
// journal. When ctx ends first, the run goes on on the host.
func (m Manager) RunNow(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	unit := name + ".service"
	_, err := m.Runner.Run(ctx, remote.Command("systemctl", "start", "--", unit))
	if err == nil {
		return nil
	}
	if _, ok := remote.ExitCode(err); !ok {
		return fmt.Errorf("running %s on %s: %w", unit, m.Runner.String(), err)
	}
	re := &RunError{Unit: unit, Target: m.Runner.String(), Err: err}
	svc, tmr, serr := m.show(ctx, name)
	if serr != nil || svc["LoadState"] != "loaded" {
		return re // e.g. "Unit x.service not found."; Err says it
	}
	if s, serr := statusFromShow(svc, tmr); serr == nil {
		re.Result = s.LastResult
	}
	if id := svc["InvocationID"]; id != "" {
		res, jerr := m.Runner.Run(ctx, remote.Command("journalctl", "--no-pager", "--quiet", "-o", "short-iso",
			"-n", fmt.Sprint(journalTailLines), "_SYSTEMD_INVOCATION_ID="+id, "+", "INVOCATION_ID="+id))
		if jerr == nil {
			re.Journal = string(res.Stdout)
		}
	}
	return re
}

// removeScript stops and removes the unit pair; anything already missing
// is skipped. A unit whose file was deleted without daemon-reload may
// still be loaded (and running): it is stopped all the same. The timer's
// stamp file goes too, so that a unit installed later under the same name
// starts with no run to catch up on. systemd is reloaded only if it knows
// a unit or a file was removed, so removing what is gone costs little.
const removeScript = `set -eu
svc="$1.service" tmr="$1.timer" dir=/etc/systemd/system reload=0
for u in "$tmr" "$svc"; do
  props=$(systemctl show -p LoadState -p ActiveState -- "$u")
  case "$props" in *LoadState=not-found*) ;; *) reload=1 ;; esac
  case "$props" in *ActiveState=inactive*|*ActiveState=failed*) ;; *) systemctl stop -- "$u" ;; esac
done
if [ -e "$dir/$tmr" ]; then systemctl disable --quiet --no-reload -- "$tmr"; fi
for f in "$dir/timers.target.wants/$tmr" "$dir/$tmr" "$dir/$svc" "$2" "/var/lib/systemd/timers/stamp-$tmr"; do
  if [ -e "$f" ] || [ -L "$f" ]; then rm -f -- "$f"; reload=1; fi
done
if [ "$reload" = 1 ]; then systemctl daemon-reload; fi
# Forget a failed state, so that nothing is left loaded; units that are
# not loaded at all make it fail, which is fine.
systemctl reset-failed -- "$svc" "$tmr" 2>/dev/null || :`

// Remove stops and disables the timer, stops the service (ending a run in
// progress), removes the three files and reloads systemd. A unit that is
// not installed, or only partly, is fine.
func (m Manager) Remove(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if _, err := m.Runner.Run(ctx, remote.Script(removeScript, name, EnvPath(name))); err != nil {
		return fmt.Errorf("removing unit %s on %s: %w", name, m.Runner.String(), err)
	}
	return nil
}
