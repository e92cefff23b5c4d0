package zfs

import (
	"context"
	"errors"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

var _ datasource.DataSourceWithConfigure = (*zpoolDataSource)(nil)

// zpoolDataSource is the homelab_zpool data source: an existing pool's layout, health
// and capacity, for check {} blocks and for wiring.
type zpoolDataSource struct {
	data *connection.Data
}

// NewZPool returns the homelab_zpool data source.
func NewZPoolDataSource() datasource.DataSource { return &zpoolDataSource{} }

// zpoolDataSourceModel is the data source's data.
type zpoolDataSourceModel struct {
	SSH             *connection.SSHModel `tfsdk:"ssh"`
	Name            types.String         `tfsdk:"name"`
	ID              types.String         `tfsdk:"id"`
	Health          types.String         `tfsdk:"health"`
	Size            types.Int64          `tfsdk:"size"`
	Allocated       types.Int64          `tfsdk:"allocated"`
	Free            types.Int64          `tfsdk:"free"`
	CapacityPercent types.Float64        `tfsdk:"capacity_percent"`
	Fragmentation   types.Int64          `tfsdk:"fragmentation"`
	Vdevs           types.List           `tfsdk:"vdevs"`
	Status          types.List           `tfsdk:"status"`
	Problems        types.List           `tfsdk:"problems"`
}

func (d *zpoolDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_zpool"
}

func (d *zpoolDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc}
	}
	num := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Computed: true, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "Layout, health and capacity of an existing ZFS pool. Use it in `check {}` blocks to warn when a pool is not ONLINE or is filling up.",
		Blocks:      map[string]schema.Block{"ssh": connection.DataSourceBlock()},
		Attributes: map[string]schema.Attribute{
			"name":             schema.StringAttribute{Required: true, Description: "Pool name."},
			"id":               str("Pool GUID."),
			"health":           str(poolHealthDesc),
			"size":             num(poolSizeDesc),
			"allocated":        num(poolAllocatedDesc),
			"free":             num(poolFreeDesc),
			"capacity_percent": schema.Float64Attribute{Computed: true, Description: "Allocated space as a percentage of the pool size."},
			"fragmentation":    num(poolFragmentationDesc),
			"vdevs": schema.ListNestedAttribute{Computed: true, Description: "The layout in the form of homelab_zpool's vdev blocks.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"role": str("Vdev role."), "type": str("Vdev type (stripe for single disks)."),
					"disks": schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Disk paths."},
				}}},
			"status":   statusDataSourceAttribute(),
			"problems": schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "Human-readable problems: devices that are not ONLINE and devices with errors. Empty when healthy."},
		},
	}
}

func (d *zpoolDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func (d *zpoolDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m zpoolDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, _, diags := d.data.ZFSClient(m.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := m.Name.ValueString()
	pool, err := c.Pool(ctx, name)
	if err != nil {
		detail := tfhelp.ExplainRead(err)
		if errors.Is(err, zfs.ErrNotFound) {
			detail += "\n\nThe host has no imported pool of that name; `zpool import` lists pools that can be imported."
		}
		var ni *zfs.NotImportedError
		if errors.As(err, &ni) {
			detail += "\n\nImport it on the host with `" + ni.ImportCommand() + "`, then read it again."
		}
		resp.Diagnostics.AddError("Unable to read ZFS pool "+name, detail)
		return
	}
	m.ID = types.StringValue(pool.GUID)
	m.Health = types.StringValue(pool.Health)
	m.Size = types.Int64Value(int64(pool.Size))
	m.Allocated = types.Int64Value(int64(pool.Allocated))
	m.Free = types.Int64Value(int64(pool.Free))
	m.CapacityPercent = types.Float64Value(0)
	if pool.Size > 0 {
		m.CapacityPercent = types.Float64Value(float64(pool.Allocated) * 100 / float64(pool.Size))
	}
	m.Fragmentation = types.Int64Value(pool.Fragmentation)
	m.Vdevs = vdevList(pool.Topology().Specs())
	m.Status = statusList(pool)
	problems, _ := types.ListValueFrom(ctx, types.StringType, append([]string{}, pool.Problems()...))
	m.Problems = problems
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
