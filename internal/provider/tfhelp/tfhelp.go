// Package tfhelp holds the small Terraform helpers that several domains of
// the provider use: list and map conversions, the timeouts block, the
// plan/state interfaces, error explanations and file hashes.
package tfhelp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Explain adds what the user can do to an error from a host.
func Explain(err error) string {
	if remote.IsUnreachable(err) {
		return err.Error() + "\n\nThe host could not be reached, so nothing was changed and the state was kept. " +
			"Check that it is up and that the ssh block's address and port are right; raise ssh.timeout for slow links."
	}
	return err.Error()
}

// TimeoutsBlock is the timeouts {} block with a description naming the
// defaults, which the framework's block does not carry.
func TimeoutsBlock(ctx context.Context, create, update, del time.Duration) schema.Block {
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

// StrList is a list of strings, null when empty.
func StrList(v []string) types.List {
	if len(v) == 0 {
		return types.ListNull(types.StringType)
	}
	vals := make([]attr.Value, len(v))
	for i, s := range v {
		vals[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, vals)
}

// StringList is a list of strings, empty (not null) when v is.
func StringList(v []string) types.List {
	vals := make([]attr.Value, len(v))
	for i, s := range v {
		vals[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, vals)
}

// StringMap is a map of strings, empty (not null) when m is.
func StringMap(m map[string]string) types.Map {
	vals := make(map[string]attr.Value, len(m))
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, vals)
}

// ExplainRead adds what the user can do to a connection error of a data
// source, which has no state to keep.
func ExplainRead(err error) string {
	if remote.IsUnreachable(err) {
		return err.Error() + "\n\nThe host could not be reached. Check that it is up, that the address and port in the ssh block are right, " +
			"and that nothing blocks the connection; raise ssh.timeout for slow links."
	}
	return err.Error()
}

// PlanGetter is what a plan or a config offers: Get into a model.
type PlanGetter interface {
	Get(context.Context, any) diag.Diagnostics
}

// StateSetter is what a state offers: Set from a model.
type StateSetter interface {
	Set(context.Context, any) diag.Diagnostics
}

// FileHash is the sha256:<hex> hash of content, as state records files.
func FileHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Known is true when v is neither null nor unknown.
func Known(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }
