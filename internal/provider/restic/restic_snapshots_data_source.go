package restic

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

var _ datasource.DataSourceWithConfigure = (*resticSnapshotsDataSource)(nil)

// snapshotsLockWait bounds waiting for another restic (a scheduled backup,
// forget or prune) to release the repository's lock.
const snapshotsLockWait = 5 * time.Minute

// resticSnapshotsDataSource is the homelab_restic_snapshots data source.
type resticSnapshotsDataSource struct {
	data *connection.Data
}

// NewResticSnapshots returns the homelab_restic_snapshots data source.
func NewResticSnapshots() datasource.DataSource { return &resticSnapshotsDataSource{} }

// resticSnapshotsModel is the data source's data.
type resticSnapshotsModel struct {
	accessModel
	Host       types.String `tfsdk:"host"`
	Tags       types.List   `tfsdk:"tags"`
	Paths      types.List   `tfsdk:"paths"`
	Snapshots  types.List   `tfsdk:"snapshots"`
	LatestTime types.String `tfsdk:"latest_time"`
	LatestAge  types.Int64  `tfsdk:"latest_age_seconds"`
	Count      types.Int64  `tfsdk:"snapshot_count"`
}

var snapshotType = map[string]attr.Type{
	"id": types.StringType, "short_id": types.StringType, "time": types.StringType, "hostname": types.StringType,
	"paths": types.ListType{ElemType: types.StringType}, "tags": types.ListType{ElemType: types.StringType},
}

func (d *resticSnapshotsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restic_snapshots"
}

func (d *resticSnapshotsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	strs := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{Optional: true, ElementType: types.StringType, Description: desc}
	}
	ssh := connection.OptionalDataSourceBlock(sshDesc)
	resp.Schema = schema.Schema{
		Description: "Snapshots of a restic repository, filtered by host, tags and paths, with the newest one's time: " +
			"use it in a `check {}` block to warn when backups are not fresh.",
		Blocks: map[string]schema.Block{"ssh": ssh},
		Attributes: map[string]schema.Attribute{
			"repository": schema.StringAttribute{Required: true, Description: repositoryDesc,
				Validators: []validator.String{validators.NoPasswordInRepository()}},
			"password": schema.StringAttribute{Optional: true, Sensitive: true,
				Description: passwordDesc + passwordDataSourceDesc},
			"password_file": schema.StringAttribute{Optional: true, Description: passwordFileDesc},
			"environment":   schema.MapAttribute{Optional: true, Sensitive: true, ElementType: types.StringType, Description: environmentDesc},
			"options":       schema.MapAttribute{Optional: true, ElementType: types.StringType, Description: optionsDesc},
			"restic_path":   schema.StringAttribute{Optional: true, Description: resticPathDesc},
			"host":          schema.StringAttribute{Optional: true, Description: "Only snapshots taken on this host name."},
			"tags":          strs("Only snapshots carrying all these tags."),
			"paths":         strs("Only snapshots of exactly these paths."),
			"snapshots": schema.ListNestedAttribute{Computed: true, Description: "Matching snapshots, oldest first.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":       schema.StringAttribute{Computed: true, Description: "Snapshot ID."},
					"short_id": schema.StringAttribute{Computed: true, Description: "Short snapshot ID."},
					"time":     schema.StringAttribute{Computed: true, Description: "When the snapshot was taken, RFC 3339."},
					"hostname": schema.StringAttribute{Computed: true, Description: "Host the snapshot was taken on."},
					"paths":    schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Paths backed up."},
					"tags":     schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Tags."},
				}}},
			"latest_time": schema.StringAttribute{Computed: true, Description: "Time of the newest matching snapshot, RFC 3339; null when there is none."},
			"latest_age_seconds": schema.Int64Attribute{Computed: true,
				Description: "Seconds since the newest matching snapshot when this was read; null when there is none. Compare it with 86400 in a check {} block."},
			"snapshot_count": schema.Int64Attribute{Computed: true, Description: "Number of matching snapshots."},
		},
	}
}

func (d *resticSnapshotsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func (d *resticSnapshotsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m resticSnapshotsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, c, diags := client(ctx, d.data, &m.accessModel, "")
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	f := restic.Filter{Host: m.Host.ValueString()}
	if !m.Tags.IsNull() {
		resp.Diagnostics.Append(m.Tags.ElementsAs(ctx, &f.Tags, false)...)
	}
	if !m.Paths.IsNull() {
		resp.Diagnostics.Append(m.Paths.ElementsAs(ctx, &f.Paths, false)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	repo := m.Repository.ValueString()
	// A scheduled backup or forget holds the repository's lock for a
	// while: wait for it rather than failing the plan.
	ctx, cancel := context.WithTimeout(ctx, snapshotsLockWait)
	defer cancel()
	snaps, err := c.Snapshots(ctx, f)
wait:
	for delay := 2 * time.Second; restic.IsLocked(err); delay = min(2*delay, 15*time.Second) {
		logging.Info(ctx, "restic repository is locked, waiting", map[string]any{"repository": restic.RedactRepository(repo)})
		select {
		case <-ctx.Done():
			break wait // report the lock, not the deadline
		case <-time.After(delay):
		}
		snaps, err = c.Snapshots(ctx, f)
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to list snapshots of restic repository "+restic.RedactRepository(repo), explain(err, repo))
		return
	}
	vals := make([]attr.Value, len(snaps))
	var latest time.Time
	for i, s := range snaps {
		vals[i] = types.ObjectValueMust(snapshotType, map[string]attr.Value{
			"id": types.StringValue(s.ID), "short_id": types.StringValue(s.ShortID),
			"time": types.StringValue(s.Time.UTC().Format(time.RFC3339)), "hostname": types.StringValue(s.Hostname),
			"paths": tfhelp.StringList(s.Paths), "tags": tfhelp.StringList(s.Tags),
		})
		if s.Time.After(latest) {
			latest = s.Time
		}
	}
	m.Snapshots = types.ListValueMust(types.ObjectType{AttrTypes: snapshotType}, vals)
	m.Count = types.Int64Value(int64(len(snaps)))
	m.LatestTime, m.LatestAge = types.StringNull(), types.Int64Null()
	if !latest.IsZero() {
		m.LatestTime = types.StringValue(latest.UTC().Format(time.RFC3339))
		m.LatestAge = types.Int64Value(int64(time.Since(latest).Seconds()))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
