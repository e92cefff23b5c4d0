// Package resources holds the provider's managed resources, one per file.
package resources

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// importID is a parsed import identifier: "host:name" or "host:port:name".
type importID struct {
	Host string
	Port int64
	Name string
}

// parseImportID reads "host:name", "host:port:name" or a plain "name",
// which means the provider's default host (the provider's ssh.host). IPv6
// addresses are written in brackets: "[fd00::5]:22:tank". A dataset name may
// hold ":" itself: a first part with a "/" is never a host.
func parseImportID(id string) (importID, error) {
	var out importID
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

// sshForImport is the ssh block an imported resource starts with: the host
// (and port) from the import ID; everything else comes from the provider.
func (i importID) sshForImport() *connection.SSHModel {
	if i.Host == "" {
		// A plain name: the host is the provider's default, and the
		// resource has no ssh block of its own.
		return nil
	}
	// Zero framework values are null: only host and port are set.
	m := &connection.SSHModel{}
	m.Host = types.StringValue(i.Host)
	if i.Port != 0 {
		m.Port = types.Int64Value(i.Port)
	}
	return m
}

// explain adds what the user can do to an error from a host.
func explain(err error) string {
	if remote.IsUnreachable(err) {
		return err.Error() + "\n\nThe host could not be reached, so nothing was changed and the state was kept. " +
			"Check that it is up and that the ssh block's address and port are right; raise ssh.timeout for slow links."
	}
	return err.Error()
}

// explainZFS is explain with what to do about a pool that is not imported.
func explainZFS(err error) string {
	var ni *zfs.NotImportedError
	if !errors.As(err, &ni) {
		return explain(err)
	}
	return err.Error() + fmt.Sprintf("\n\nThe pool %s exists on the host's disks but is not imported (a reboot without the cache file, "+
		"moved disks or a rescue boot leave it so). Nothing was changed and the state was kept. Import it on the host with `%s` "+
		"(`-l` loads encryption keys that can be loaded), then plan again. If it should no longer be managed here, remove it and its "+
		"datasets from the state (`terraform state rm`) instead.", ni.Asked, ni.ImportCommand())
}

// timeoutsBlock is the timeouts {} block with a description naming the
// defaults, which the framework's block does not carry.
func timeoutsBlock(ctx context.Context, create, update, del time.Duration) schema.Block {
	b := timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true})
	nb, ok := b.(schema.SingleNestedBlock)
	if !ok {
		return b
	}
	desc := fmt.Sprintf("How long operations may take, as durations such as `30m` or `2h`. Defaults: create %s, update %s, delete %s.", create, update, del)
	nb.Description, nb.MarkdownDescription = desc, desc
	for name, a := range nb.Attributes {
		if sa, ok := a.(schema.StringAttribute); ok {
			sa.Description = "Time limit for " + name + "."
			sa.MarkdownDescription = sa.Description
			nb.Attributes[name] = sa
		}
	}
	return nb
}

// saveCreated stores what a create that failed after making something
// knows of it: the planned values, with every value not known yet (what
// the read-back would have filled in) null. Terraform then keeps the
// resource in state as tainted, instead of forgetting something that
// exists on the host and creating it again over the top.
func saveCreated(plan tftypes.Value, state *tfsdk.State) error {
	v, err := tftypes.Transform(plan, func(_ *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
		if !v.IsKnown() {
			return tftypes.NewValue(v.Type(), nil), nil
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	state.Raw = v
	return nil
}

// strList is a list of strings, null when empty.
func strList(v []string) types.List {
	if len(v) == 0 {
		return types.ListNull(types.StringType)
	}
	vals := make([]attr.Value, len(v))
	for i, s := range v {
		vals[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, vals)
}

// stringMap is a map of strings, empty (not null) when m is.
func stringMap(m map[string]string) types.Map {
	vals := make(map[string]attr.Value, len(m))
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, vals)
}
