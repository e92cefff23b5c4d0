package restic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// checkFailedMarker is the last line of a `restic check` that found errors
// (0.14 and 0.18 alike, exit status 1).
const checkFailedMarker = "repository contains errors"

// parseVersion reads the version from `restic version` output
// ("restic 0.18.1 compiled with go1.24.4 on linux/amd64").
func parseVersion(out []byte) (string, error) {
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("cannot read a restic version from %q", truncate(string(bytes.TrimSpace(out)), 200))
	}
	return string(m[1]), nil
}

// parseConfig reads `restic cat config --json` output.
func parseConfig(out []byte) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing restic repository config: %w", err)
	}
	if cfg.ID == "" || cfg.Version == 0 {
		return Config{}, fmt.Errorf("restic repository config %q has no id or version", truncate(string(bytes.TrimSpace(out)), 200))
	}
	return cfg, nil
}

// parseSnapshots reads `restic snapshots --json` output: a JSON array (null
// or [] when there are none).
func parseSnapshots(out []byte) ([]Snapshot, error) {
	var snaps []Snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("parsing restic snapshots: %w", err)
	}
	for i, s := range snaps {
		if s.ID == "" {
			return nil, fmt.Errorf("restic snapshot %d has no id", i)
		}
		if s.ShortID == "" && len(s.ID) >= 8 {
			snaps[i].ShortID = s.ID[:8]
		}
	}
	if snaps == nil {
		snaps = []Snapshot{}
	}
	return snaps, nil
}

// parseBackupSummary returns the snapshot ID of the "summary" message of
// `restic backup --json` output (JSON lines; status messages come first).
// restic 0.14 gives the short ID, 0.17 and later the full one.
func parseBackupSummary(out []byte) (string, error) {
	var id string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m struct {
			MessageType string `json:"message_type"`
			SnapshotID  string `json:"snapshot_id"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			continue
		}
		if m.MessageType == "summary" {
			id, found = m.SnapshotID, true
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading restic backup output: %w", err)
	}
	if !found {
		return "", errors.New("restic backup printed no summary")
	}
	if id == "" {
		return "", errors.New("restic backup summary names no snapshot")
	}
	return id, nil
}

// parseCheck turns the result of `restic check` into a CheckResult: exit 0
// is OK, exit 1 with "repository contains errors" is not OK (with the errors
// as summary), anything else is err.
func parseCheck(res remote.Result, err error) (CheckResult, error) {
	if err == nil {
		return CheckResult{OK: true, Summary: lastLine(res.Stdout)}, nil
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != 1 || !strings.Contains(string(res.Stderr), checkFailedMarker) {
		return CheckResult{}, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(res.Stderr))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		switch {
		case strings.TrimSpace(line) == "",
			strings.Contains(line, "returned error, retrying after"),
			strings.HasPrefix(line, "Fatal: "+checkFailedMarker):
			continue
		}
		lines = append(lines, line)
	}
	summary := strings.Join(lines, "\n")
	if summary == "" {
		summary = checkFailedMarker
	}
	return CheckResult{OK: false, Summary: truncate(summary, maxMessage)}, nil
}

// lastLine returns the last non-empty line of out, trimmed.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
