package zfs

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// sectionRoles maps the section headers of zpool status to vdev roles.
var sectionRoles = map[string]string{
	"logs": RoleLog, "cache": RoleCache, "spares": RoleSpare, "special": RoleSpecial, "dedup": RoleDedup,
}

var vdevNameRe = regexp.MustCompile(`^(mirror|raidz[123]|draid[123]?(?::[0-9a-z]+)*|replacing|spare|root)-\d+$`)

// deviceType derives a device's type from the name zpool status gives it.
func deviceType(name string) string {
	m := vdevNameRe.FindStringSubmatch(name)
	if m == nil {
		return TypeDisk
	}
	if strings.HasPrefix(m[1], "draid") {
		return m[1]
	}
	return m[1]
}

// ParseStatusText parses the text of `zpool status -p -P POOL`, for
// OpenZFS releases without JSON output.
func ParseStatusText(out []byte) (*Pool, error) {
	p := &Pool{Fragmentation: -1}
	sc := bufio.NewScanner(bytes.NewReader(out))
	inConfig, header, activityDetail := false, false, false
	role := RoleData
	// stack[i] is the last device seen at depth i+1 below the pool.
	var stack []*Device
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(line, "\t") || inConfig {
			activityDetail = false
		}
		switch {
		case strings.HasPrefix(trimmed, "pool:") && !inConfig:
			p.Name = strings.TrimSpace(strings.TrimPrefix(trimmed, "pool:"))
			continue
		case strings.HasPrefix(trimmed, "state:") && !inConfig:
			p.Health = strings.TrimSpace(strings.TrimPrefix(trimmed, "state:"))
			continue
		case strings.HasPrefix(trimmed, "scan: resilver in progress"):
			p.Activity, activityDetail = "resilver in progress", true
			continue
		case strings.HasPrefix(trimmed, "expand: expansion of") && strings.Contains(trimmed, "in progress"):
			p.Activity, activityDetail = "raidz expansion in progress", true
			continue
		case activityDetail && strings.HasPrefix(line, "\t") && trimmed != "":
			// The progress lines under a scan: or expand: line.
			p.Activity += "; " + trimmed
			continue
		case trimmed == "config:":
			inConfig = true
			continue
		case !inConfig:
			continue
		case strings.HasPrefix(trimmed, "NAME") && strings.Contains(trimmed, "STATE"):
			header = true
			continue
		case !header:
			continue
		case trimmed == "" || strings.HasPrefix(trimmed, "errors:"):
			if len(p.Devices) > 0 || trimmed != "" {
				inConfig = false
			}
			continue
		}
		body := strings.TrimLeft(line, "\t")
		depth := (len(body) - len(strings.TrimLeft(body, " "))) / 2
		fields := strings.Fields(body)
		if depth == 0 {
			if r, ok := sectionRoles[fields[0]]; ok {
				role = r
			} else {
				role = RoleData // the pool's own line
			}
			stack = stack[:0]
			continue
		}
		d := Device{Role: role, Name: fields[0], Type: deviceType(fields[0])}
		if len(fields) > 1 {
			d.State = fields[1]
		}
		if len(fields) > 4 {
			d.Read, _ = strconv.ParseUint(fields[2], 10, 64)
			d.Write, _ = strconv.ParseUint(fields[3], 10, 64)
			d.Checksum, _ = strconv.ParseUint(fields[4], 10, 64)
		}
		if d.Type == TypeDisk {
			d.Path = d.Name
			if i := strings.Index(body, " was "); i >= 0 {
				d.Path = strings.TrimSpace(body[i+len(" was "):])
			}
		}
		if depth > len(stack)+1 {
			return nil, fmt.Errorf("zpool status: unexpected indentation at %q", line)
		}
		stack = stack[:depth-1]
		if depth == 1 {
			p.Devices = append(p.Devices, d)
			stack = append(stack, &p.Devices[len(p.Devices)-1])
		} else {
			parent := stack[depth-2]
			parent.Children = append(parent.Children, d)
			stack = append(stack, &parent.Children[len(parent.Children)-1])
		}
	}
	if p.Name == "" || len(p.Devices) == 0 {
		return nil, fmt.Errorf("zpool status printed no pool configuration: %q", out)
	}
	return p, sc.Err()
}
