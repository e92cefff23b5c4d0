package systemd

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// showProperties are the properties Read asks systemctl show for, of both
// the service and the timer (each unit prints those it has).
var showProperties = []string{
	"Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "Result",
	// Service: the run. ConditionTimestamp is when a start was last
	// attempted, InactiveExitTimestamp when the service last left the
	// inactive state; for Type=oneshot, ExecMain* describe the last
	// ExecStart= command that ran.
	"ConditionTimestamp", "InactiveExitTimestamp", "ExecMainStartTimestamp", "ExecMainExitTimestamp",
	"ExecMainCode", "ExecMainStatus", "InvocationID",
	// Timer.
	"LastTriggerUSec", "NextElapseUSecRealtime",
}

// properties is one unit's block of systemctl show output.
type properties map[string]string

// parseShow splits systemctl show output into one property map per unit,
// in the order the units were named. Blocks are separated by empty lines;
// each line is KEY=VALUE, the value running to the end of the line.
func parseShow(out []byte) ([]properties, error) {
	var units []properties
	var cur properties
	for i, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		if line == "" {
			if cur != nil {
				units = append(units, cur)
				cur = nil
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("systemctl show output line %d is not KEY=VALUE: %q", i+1, line)
		}
		if cur == nil {
			cur = properties{}
		}
		cur[k] = v
	}
	if cur != nil {
		units = append(units, cur)
	}
	return units, nil
}

// showStatus is what Read takes from systemctl show.
type showStatus struct {
	ServiceLoaded, TimerLoaded bool
	TimerEnabled, TimerActive  bool
	Running                    bool
	LastRun                    time.Time
	LastResult                 string
	NextRun                    time.Time
}

// statusFromShow interprets the service's and the timer's properties.
//
// LastRun is the start of the service's latest run, whether the timer or
// RunNow started it: the later of its ConditionTimestamp (set when a start
// is attempted, even one that fails before any command runs, such as
// without its environment file) and its InactiveExitTimestamp (set when it
// leaves the inactive state). Both mark the start of the whole run, where
// ExecMainStartTimestamp would mark that of the last of several ExecStart=
// commands. systemd keeps them across daemon-reload but not across a
// reboot; until the service runs again after one, LastRun falls back to
// the timer's LastTriggerUSec, which a Persistent=true timer keeps on disk,
// and LastResult is "" (unknown). The same happens after `systemctl
// reset-failed` of the service, which makes systemd forget the unit's
// runtime state altogether. (The timer keeps its service loaded, so the
// state of a successful run is not lost to systemd's unloading of unused
// units.)
//
// Running is true while the service runs (ActiveState activating or
// deactivating) and from the moment the timer fires (its SubState is then
// "running") until the run ends; LastResult is then "running" and LastRun
// includes the timer's latest trigger.
//
// Otherwise LastResult is "" when no run is known, "success", or
// "failed: RESULT/STATUS" where RESULT is systemd's Result (exit-code,
// signal, timeout, ...) and STATUS the exit status of the command that
// failed or the name of the signal that killed it ("failed: exit-code/1",
// "failed: signal/KILL"); "/STATUS" is left out when no command ended
// (e.g. "failed: resources" when the environment file is missing).
func statusFromShow(svc, tmr properties) (showStatus, error) {
	var st showStatus
	st.ServiceLoaded = svc["LoadState"] == "loaded"
	st.TimerLoaded = tmr["LoadState"] == "loaded"
	switch tmr["UnitFileState"] {
	case "enabled", "enabled-runtime":
		st.TimerEnabled = true
	}
	st.TimerActive = tmr["ActiveState"] == "active"

	var times [4]time.Time
	for i, p := range []struct {
		props properties
		key   string
	}{
		{tmr, "NextElapseUSecRealtime"}, {tmr, "LastTriggerUSec"},
		{svc, "ConditionTimestamp"}, {svc, "InactiveExitTimestamp"},
	} {
		t, err := parseTime(p.props, p.key)
		if err != nil {
			return st, err
		}
		times[i] = t
	}
	st.NextRun = times[0]
	triggered, started := times[1], later(times[2], times[3])

	switch svc["ActiveState"] {
	case "activating", "deactivating", "reloading":
		// A oneshot service is "activating" while its commands run and
		// "deactivating" while it is being stopped.
		st.Running = true
	}
	if tmr["ActiveState"] == "active" && tmr["SubState"] == "running" {
		st.Running = true // fired; the service may not have started yet
	}
	if st.Running {
		st.LastRun = later(started, triggered)
		st.LastResult = "running"
		return st, nil
	}
	if started.IsZero() {
		// No run since the service was loaded (e.g. since boot).
		st.LastRun = triggered
		return st, nil
	}
	st.LastRun = started
	code, status := svc["ExecMainCode"], svc["ExecMainStatus"]
	result := svc["Result"]
	if result == "success" {
		st.LastResult = "success"
		return st, nil
	}
	if result == "" {
		result = "unknown"
	}
	st.LastResult = "failed: " + result
	switch code {
	case cldExited:
		st.LastResult += "/" + status
	case cldKilled, cldDumped:
		st.LastResult += "/" + signalName(status)
	}
	return st, nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ExecMainCode values: the si_code of the main process's exit (waitid(2)).
const (
	cldExited = "1"
	cldKilled = "2"
	cldDumped = "3"
)

// signalName names the Linux signal whose number is n ("9" -> "KILL").
func signalName(n string) string {
	names := map[string]string{
		"1": "HUP", "2": "INT", "3": "QUIT", "4": "ILL", "5": "TRAP", "6": "ABRT",
		"7": "BUS", "8": "FPE", "9": "KILL", "10": "USR1", "11": "SEGV", "12": "USR2",
		"13": "PIPE", "14": "ALRM", "15": "TERM", "24": "XCPU", "25": "XFSZ", "31": "SYS",
	}
	if s, ok := names[n]; ok {
		return s
	}
	return "SIG" + n
}

// parseTime reads a time property. systemctl prints "" (or "n/a") for
// never, "@SECONDS" with --timestamp=unix, and otherwise
// "Sat 2026-11-21 12:28:36 UTC" in the zone of TZ, which Read sets to UTC.
func parseTime(p properties, key string) (time.Time, error) {
	v := strings.TrimSpace(p[key])
	switch v {
	case "", "n/a", "0", "infinity":
		return time.Time{}, nil
	}
	if s, ok := strings.CutPrefix(v, "@"); ok {
		// Whole seconds; newer systemd may print a fraction.
		sec, frac, _ := strings.Cut(s, ".")
		n, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("systemctl show %s=%q: not a unix timestamp", key, v)
		}
		t := time.Unix(n, 0)
		if frac != "" {
			f, err := strconv.ParseFloat("0."+frac, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("systemctl show %s=%q: not a unix timestamp", key, v)
			}
			t = t.Add(time.Duration(f * float64(time.Second)))
		}
		return t.UTC(), nil
	}
	f := strings.Fields(v)
	if len(f) == 4 { // weekday first
		f = f[1:]
	}
	if len(f) != 3 || f[2] != "UTC" {
		return time.Time{}, fmt.Errorf("systemctl show %s=%q: want a UTC time like \"Sat 2026-11-21 12:28:36 UTC\"", key, v)
	}
	t, err := time.Parse("2006-01-02 15:04:05", f[0]+" "+f[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("systemctl show %s=%q: %w", key, v, err)
	}
	return t, nil
}

// unsupportedTimestampOption reports whether stderr of systemctl says it
// does not know --timestamp (systemd before 248).
func unsupportedTimestampOption(stderr []byte) bool {
	return bytes.Contains(stderr, []byte("timestamp")) &&
		(bytes.Contains(stderr, []byte("unrecognized")) || bytes.Contains(stderr, []byte("nknown")) || bytes.Contains(stderr, []byte("nvalid")))
}
