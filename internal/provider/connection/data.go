// Data is what the provider hands its resources and data sources in
// Configure: the connection defaults and the per-operation caches.
package connection

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// Data is created by each ConfigureProvider call, so its caches live for one
// Terraform operation (a plan or an apply) and never serve stale reads to the next.
type Data struct {
	Defaults
	// ZFS shares one recursive read per pool among every ZFS resource of a host.
	ZFS *zfs.Registry
}

// From converts the provider data a resource or data source receives.
func From(v any) (*Data, error) {
	if v == nil {
		return nil, nil
	}
	d, ok := v.(*Data)
	if !ok {
		return nil, fmt.Errorf("expected *connection.Data, got %T; this is a bug in the provider", v)
	}
	return d, nil
}

// Configure is the body of every resource's and data source's Configure:
// it converts the provider data and reports a provider bug otherwise.
func Configure(v any, diags *diag.Diagnostics) *Data {
	d, err := From(v)
	if err != nil {
		diags.AddError("Unexpected provider data", err.Error())
	}
	return d
}

// MaskSecrets hides the given secrets from every log message and field
// logged with the returned context. Empty strings are ignored.
func MaskSecrets(ctx context.Context, secrets ...string) context.Context {
	var mask []string
	for _, s := range secrets {
		if s != "" {
			mask = append(mask, s)
		}
	}
	if len(mask) == 0 {
		return ctx
	}
	ctx = tflog.MaskMessageStrings(ctx, mask...)
	return tflog.MaskAllFieldValuesStrings(ctx, mask...)
}

// HasDefaultHost reports whether the provider's ssh block names a default
// host (known or not yet known).
func (d *Data) HasDefaultHost() bool {
	return d != nil && d.SSH != nil && !d.SSH.Host.IsNull()
}

// Absent says what a missing ssh block (and no default host in the
// provider's) means for a resource or data source.
type Absent int

const (
	// HostRequired: the resource's ssh block or the provider's must name
	// the host; without one, Runner reports "Missing SSH host".
	HostRequired Absent = iota
	// LocalWhenNoHost: with no ssh block and no default host in the
	// provider's, commands run on the machine Terraform runs on (restic).
	LocalWhenNoHost
)

// ThisMachine is the runner for the machine Terraform runs on, without
// sudo: where restic runs without an ssh block, and a netboot server that
// is a local directory.
func ThisMachine() remote.Runner { return remote.NewLocal(false) }

// Runner is the one entry point from an ssh block to a command runner: the
// block merged over the provider's (see Resolve), pooled SSH, or this
// machine for `local = true` and, with LocalWhenNoHost, for no host at all.
// at is the block's path, for the diagnostics.
func (d *Data) Runner(m *SSHModel, at path.Path, absent Absent) (remote.Runner, Target, diag.Diagnostics) {
	if absent == LocalWhenNoHost && m == nil && !d.HasDefaultHost() {
		return ThisMachine(), Target{Local: true}, nil
	}
	return connect(d.conn(), m, at)
}

// conn returns the connection defaults, nil when the provider is not configured.
func (d *Data) conn() *Defaults {
	if d == nil {
		return nil
	}
	return &d.Defaults
}

// ZFSClient connects to the host of an ssh block and returns a ZFS client
// sharing this operation's per-host cache.
func (d *Data) ZFSClient(m *SSHModel) (*zfs.Client, Target, diag.Diagnostics) {
	runner, target, diags := d.Runner(m, path.Root("ssh"), HostRequired)
	if diags.HasError() {
		return nil, target, diags
	}
	if d != nil && d.ZFS != nil {
		return d.ZFS.Client(runner), target, diags
	}
	return zfs.NewClient(runner), target, diags
}
