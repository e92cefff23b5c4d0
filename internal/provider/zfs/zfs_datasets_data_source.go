package zfs

import (
	"context"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

var _ datasource.DataSourceWithConfigure = (*zfsDatasetsDataSource)(nil)

// zfsDatasetsDataSource is the homelab_zfs_datasets data source.
type zfsDatasetsDataSource struct {
	data *connection.Data
}

// NewZFSDatasets returns the homelab_zfs_datasets data source.
func NewZFSDatasets() datasource.DataSource { return &zfsDatasetsDataSource{} }

// zfsDatasetsModel is the data source's data.
type zfsDatasetsModel struct {
	SSH        *connection.SSHModel `tfsdk:"ssh"`
	Parent     types.String         `tfsdk:"parent"`
	Properties []string             `tfsdk:"properties"`
	ID         types.String         `tfsdk:"id"`
	Datasets   types.List           `tfsdk:"datasets"`
}

var defaultDatasetProps = []string{"used", "available", "referenced", "compression", "compressratio", "mountpoint", "quota", "mounted"}

var datasetEntryType = map[string]attr.Type{
	"name": types.StringType, "type": types.StringType, "properties": types.MapType{ElemType: types.StringType},
}

func (d *zfsDatasetsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_zfs_datasets"
}

func (d *zfsDatasetsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Every filesystem and volume under a parent dataset (the parent included), with selected properties, read with one recursive `zfs get`.",
		Blocks:      map[string]schema.Block{"ssh": connection.DataSourceBlock()},
		Attributes: map[string]schema.Attribute{
			"parent": schema.StringAttribute{Required: true, Description: "Pool or dataset to list, e.g. `tank` or `tank/media`."},
			"properties": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				Description: "Properties to return for each dataset (values with -p: sizes in bytes). Defaults to " + strings.Join(defaultDatasetProps, ", ") + "."},
			"id": schema.StringAttribute{Computed: true, Description: "The parent's name."},
			"datasets": schema.ListNestedAttribute{Computed: true, Description: "The datasets, sorted by name.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":       schema.StringAttribute{Computed: true, Description: "Dataset name."},
					"type":       schema.StringAttribute{Computed: true, Description: "`filesystem` or `volume`."},
					"properties": schema.MapAttribute{Computed: true, ElementType: types.StringType, Description: "The selected properties that the dataset has."},
				}}},
		},
	}
}

func (d *zfsDatasetsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func (d *zfsDatasetsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m zfsDatasetsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, _, diags := d.data.ZFSClient(m.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	parent := m.Parent.ValueString()
	sets, err := c.Datasets(ctx, zfs.PoolOf(parent))
	if err != nil {
		resp.Diagnostics.AddError("Unable to list ZFS datasets under "+parent, tfhelp.ExplainRead(err))
		return
	}
	props := m.Properties
	if props == nil {
		props = defaultDatasetProps
	}
	var names []string
	for name := range sets {
		if name == parent || strings.HasPrefix(name, parent+"/") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("parent"), "Unable to list ZFS datasets under "+parent, "There is no dataset "+parent+" on the host.")
		return
	}
	sort.Strings(names)
	var entries []attr.Value
	for _, name := range names {
		ds := sets[name]
		vals := map[string]attr.Value{}
		for _, p := range props {
			if v, ok := ds.Props[p]; ok {
				vals[p] = types.StringValue(v.Value)
			}
		}
		entries = append(entries, types.ObjectValueMust(datasetEntryType, map[string]attr.Value{
			"name": types.StringValue(name), "type": types.StringValue(ds.Type),
			"properties": types.MapValueMust(types.StringType, vals),
		}))
	}
	m.ID = types.StringValue(parent)
	m.Datasets = types.ListValueMust(types.ObjectType{AttrTypes: datasetEntryType}, entries)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
