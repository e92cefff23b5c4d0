package host

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/hostfacts"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
)

var (
	_ datasource.DataSource                   = (*hostDataSource)(nil)
	_ datasource.DataSourceWithConfigure      = (*hostDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*hostDataSource)(nil)
)

// hostDataSource is the homelab_host data source: facts about one host.
type hostDataSource struct {
	data *connection.Data
}

// NewHost returns the homelab_host data source.
func NewHost() datasource.DataSource { return &hostDataSource{} }

// hostModel is the homelab_host data source's data.
type hostModel struct {
	SSH           *connection.SSHModel `tfsdk:"ssh"`
	ID            types.String         `tfsdk:"id"`
	Hostname      types.String         `tfsdk:"hostname"`
	EffectiveUser types.String         `tfsdk:"effective_user"`
	OSID          types.String         `tfsdk:"os_id"`
	OSVersion     types.String         `tfsdk:"os_version"`
	OSPrettyName  types.String         `tfsdk:"os_pretty_name"`
	Kernel        types.String         `tfsdk:"kernel"`
	Architecture  types.String         `tfsdk:"architecture"`
	CPUCount      types.Int64          `tfsdk:"cpu_count"`
	MemoryBytes   types.Int64          `tfsdk:"memory_bytes"`
	ZFSVersion    types.String         `tfsdk:"zfs_version"`
	ResticVersion types.String         `tfsdk:"restic_version"`
	RKE2Version   types.String         `tfsdk:"rke2_version"`
}

func (d *hostDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_host"
}

func (d *hostDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc, MarkdownDescription: desc}
	}
	const desc = "Facts about a host, read over SSH (or locally): its name, operating system, kernel, " +
		"architecture, CPUs and memory, and the versions of ZFS, restic and RKE2 when they are installed."
	const cpuDesc = "Number of online CPUs."
	const memDesc = "Total memory in bytes, as the kernel reports it (MemTotal)."
	resp.Schema = schema.Schema{
		Description: desc, MarkdownDescription: desc,
		Blocks: map[string]schema.Block{"ssh": connection.DataSourceBlock()},
		Attributes: map[string]schema.Attribute{
			"id":             computed("The target the facts were read from, as user@host:port."),
			"hostname":       computed("The host's name (uname -n)."),
			"effective_user": computed("User the provider's commands run as on the host: `root` when connected as root or when `sudo` works, otherwise the login user."),
			"os_id":          computed("Operating system ID from /etc/os-release, e.g. `debian` or `ubuntu`."),
			"os_version":     computed("Operating system version from /etc/os-release (VERSION_ID), e.g. `12`."),
			"os_pretty_name": computed("Human-readable operating system name from /etc/os-release."),
			"kernel":         computed("Kernel release (uname -r)."),
			"architecture":   computed("Machine architecture (uname -m), e.g. `x86_64` or `aarch64`."),
			"cpu_count":      schema.Int64Attribute{Computed: true, Description: cpuDesc, MarkdownDescription: cpuDesc},
			"memory_bytes":   schema.Int64Attribute{Computed: true, Description: memDesc, MarkdownDescription: memDesc},
			"zfs_version":    computed("OpenZFS userland version (e.g. `2.3.2`), or null when `zfs` is not installed."),
			"restic_version": computed("restic version (e.g. `0.18.1`), or null when `restic` is not installed."),
			"rke2_version":   computed("RKE2 version (e.g. `v1.31.4+rke2r1`), or null when `rke2` is not installed."),
		},
	}
}

func (d *hostDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func (d *hostDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m hostModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	resp.Diagnostics.Append(connection.Warnings(m.SSH, nil, path.Root("ssh"))...)
}

func (d *hostDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m hostModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	runner, target, diags := d.data.Runner(m.SSH, path.Root("ssh"), connection.HostRequired)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	logging.Debug(ctx, "reading host facts", map[string]any{"target": target.String()})
	facts, err := hostfacts.Gather(ctx, runner)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read facts of host "+target.String(), tfhelp.ExplainRead(err))
		return
	}
	m.ID = types.StringValue(runner.String())
	m.Hostname = types.StringValue(facts.Hostname)
	m.EffectiveUser = types.StringValue(facts.EffectiveUser)
	m.OSID = types.StringValue(facts.OSID)
	m.OSVersion = types.StringValue(facts.OSVersion)
	m.OSPrettyName = types.StringValue(facts.OSPrettyName)
	m.Kernel = types.StringValue(facts.Kernel)
	m.Architecture = types.StringValue(facts.Architecture)
	m.CPUCount = types.Int64Value(facts.CPUCount)
	m.MemoryBytes = types.Int64Value(facts.MemoryBytes)
	m.ZFSVersion = optional(facts.ZFSVersion)
	m.ResticVersion = optional(facts.ResticVersion)
	m.RKE2Version = optional(facts.RKE2Version)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// optional maps "not installed" to null.
func optional(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}
