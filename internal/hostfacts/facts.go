// Package hostfacts gathers facts about a host (name, OS, kernel, CPU,
// memory and the versions of the tools this provider drives) with one
// command over a remote.Runner, and parses what that command prints.
//
// The package has no ErrNotFound: a host answers or its read fails (see
// remote), and a tool that is not installed is an empty version, not an
// error.
package hostfacts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Facts describes a host. Tool versions are empty when the tool is not installed.
type Facts struct {
	Hostname      string
	EffectiveUser string
	OSID          string
	OSVersion     string
	OSPrettyName  string
	Kernel        string
	Architecture  string
	CPUCount      int64
	MemoryBytes   int64
	ZFSVersion    string
	ResticVersion string
	RKE2Version   string
}

// script prints one key=value line per fact. It is constant; nothing from
// configuration is pasted into it. Tools are looked up in the sbin
// directories too, which a non-root login's PATH often lacks.
const script = `PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
printf 'hostname=%s\n' "$(uname -n)"
printf 'effective_user=%s\n' "$(id -un)"
if [ -r /etc/os-release ]; then
  ( . /etc/os-release; printf 'os_id=%s\nos_version=%s\nos_pretty_name=%s\n' "$ID" "$VERSION_ID" "$PRETTY_NAME" )
fi
printf 'kernel=%s\n' "$(uname -r)"
printf 'architecture=%s\n' "$(uname -m)"
printf 'cpu_count=%s\n' "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
printf 'mem_total_kb=%s\n' "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
if command -v zfs >/dev/null 2>&1; then printf 'zfs=%s\n' "$(zfs version 2>/dev/null | head -n 1)"; fi
if command -v restic >/dev/null 2>&1; then printf 'restic=%s\n' "$(restic version 2>/dev/null | head -n 1)"; fi
if command -v rke2 >/dev/null 2>&1; then printf 'rke2=%s\n' "$(rke2 --version 2>/dev/null | head -n 1)"; fi
exit 0`

// Gather runs the facts script on r and parses its output.
func Gather(ctx context.Context, r remote.Runner) (Facts, error) {
	res, err := r.Run(ctx, remote.Script(script))
	if err != nil {
		return Facts{}, err
	}
	return Parse(res.Stdout)
}

var (
	zfsRe    = regexp.MustCompile(`^zfs-(\d+\.\d+\.\d+(?:-rc\d+)?)`)
	resticRe = regexp.MustCompile(`^restic (\d+\.\d+\.\d+\S*)`)
	rke2Re   = regexp.MustCompile(`^rke2 version (v\S+)`)
)

// Parse reads the output of the facts script.
func Parse(out []byte) (Facts, error) {
	var f Facts
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "hostname":
			f.Hostname = val
		case "effective_user":
			f.EffectiveUser = val
		case "os_id":
			f.OSID = val
		case "os_version":
			f.OSVersion = val
		case "os_pretty_name":
			f.OSPrettyName = val
		case "kernel":
			f.Kernel = val
		case "architecture":
			f.Architecture = val
		case "cpu_count":
			f.CPUCount, err = strconv.ParseInt(val, 10, 64)
		case "mem_total_kb":
			var kb int64
			kb, err = strconv.ParseInt(val, 10, 64)
			f.MemoryBytes = kb * 1024
		case "zfs":
			f.ZFSVersion = firstMatch(zfsRe, val)
		case "restic":
			f.ResticVersion = firstMatch(resticRe, val)
		case "rke2":
			f.RKE2Version = firstMatch(rke2Re, val)
		}
		if err != nil {
			return f, fmt.Errorf("parsing host fact %s=%q: %w", key, val, err)
		}
	}
	if f.Hostname == "" || f.Kernel == "" {
		return f, fmt.Errorf("the host did not report its hostname and kernel; output was %q", out)
	}
	return f, nil
}

func firstMatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}
