package connection

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

// ImportID is a parsed import identifier: "host:name" or "host:port:name".
type ImportID struct {
	Host string
	Port int64
	Name string
}

// ParseImportID reads "host:name", "host:port:name" or a plain "name",
// which means the provider's default host (the provider's ssh.host). IPv6
// addresses are written in brackets: "[fd00::5]:22:tank". A dataset name may
// hold ":" itself: a first part with a "/" is never a host.
func ParseImportID(id string) (ImportID, error) {
	var out ImportID
	rest := id
	if first, _, ok := strings.Cut(rest, ":"); !strings.HasPrefix(rest, "[") && (!ok || strings.Contains(first, "/")) {
		if rest == "" {
			return out, fmt.Errorf("import ID is empty: expected name, host:name or host:port:name")
		}
		out.Name = rest
		return out, nil
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return out, fmt.Errorf("import ID %q: an IPv6 host must be written [addr]:name", id)
		}
		out.Host, rest = rest[1:end], rest[end+2:]
	} else {
		host, r, ok := strings.Cut(rest, ":")
		if !ok {
			return out, fmt.Errorf("import ID %q names no host: write host:name or host:port:name", id)
		}
		out.Host, rest = host, r
	}
	if p, r, ok := strings.Cut(rest, ":"); ok {
		if n, err := strconv.ParseInt(p, 10, 32); err == nil && n > 0 && n < 65536 {
			out.Port, rest = n, r
		}
	}
	out.Name = rest
	if out.Host == "" || out.Name == "" {
		return out, fmt.Errorf("import ID %q: expected host:name or host:port:name", id)
	}
	return out, nil
}

// SSHForImport is the ssh block an imported resource starts with: the host
// (and port) from the import ID; everything else comes from the provider.
func (i ImportID) SSHForImport() *SSHModel {
	if i.Host == "" {
		// A plain name: the host is the provider's default, and the
		// resource has no ssh block of its own.
		return nil
	}
	// Zero framework values are null: only host and port are set.
	m := &SSHModel{}
	m.Host = types.StringValue(i.Host)
	if i.Port != 0 {
		m.Port = types.Int64Value(i.Port)
	}
	return m
}
