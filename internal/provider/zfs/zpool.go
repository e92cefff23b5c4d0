package zfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

var (
	_ resource.Resource                   = (*zpoolResource)(nil)
	_ resource.ResourceWithConfigure      = (*zpoolResource)(nil)
	_ resource.ResourceWithImportState    = (*zpoolResource)(nil)
	_ resource.ResourceWithValidateConfig = (*zpoolResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*zpoolResource)(nil)
)

// Default timeouts of homelab_zpool. Updates may resilver or expand a raidz,
// which takes as long as the data takes to copy.
const (
	zpoolCreateTimeout = 10 * time.Minute
	zpoolUpdateTimeout = 6 * time.Hour
	zpoolDeleteTimeout = 10 * time.Minute
)

// createOnlyFSProps are root dataset properties ZFS sets at creation only.
var createOnlyFSProps = map[string]bool{
	"casesensitivity": true, "normalization": true, "utf8only": true, "encryption": true, "keyformat": true, "pbkdf2iters": true,
}

// zpoolResource is the homelab_zpool resource.
type zpoolResource struct {
	data *connection.Data
}

// NewZPool returns the homelab_zpool resource.
func NewZPool() resource.Resource { return &zpoolResource{} }

// zpoolModel is the resource's data.
type zpoolModel struct {
	SSH                  *connection.SSHModel `tfsdk:"ssh"`
	ID                   types.String         `tfsdk:"id"`
	Name                 types.String         `tfsdk:"name"`
	Vdevs                types.List           `tfsdk:"vdev"`
	Properties           types.Map            `tfsdk:"properties"`
	FilesystemProperties types.Map            `tfsdk:"filesystem_properties"`
	Force                types.Bool           `tfsdk:"force"`
	ForceDestroy         types.Bool           `tfsdk:"force_destroy"`
	AllowReplace         types.Bool           `tfsdk:"allow_replace"`
	GUID                 types.String         `tfsdk:"guid"`
	Health               types.String         `tfsdk:"health"`
	Size                 types.Int64          `tfsdk:"size"`
	Allocated            types.Int64          `tfsdk:"allocated"`
	Free                 types.Int64          `tfsdk:"free"`
	Fragmentation        types.Int64          `tfsdk:"fragmentation"`
	Status               types.List           `tfsdk:"status"`
	DiskGUIDs            types.Map            `tfsdk:"disk_guids"`
	Timeouts             timeouts.Value       `tfsdk:"timeouts"`
}

// vdevModel is one vdev block.
type vdevModel struct {
	Role  types.String `tfsdk:"role"`
	Type  types.String `tfsdk:"type"`
	Disks types.List   `tfsdk:"disks"`
}

// vdevObjectType is a vdev of the layout, as the resource's vdev blocks and
// the data source's vdevs list hold it.
var vdevObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"role": types.StringType, "type": types.StringType, "disks": types.ListType{ElemType: types.StringType},
}}

func (r *zpoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_zpool"
}

func (r *zpoolResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A ZFS pool on a host, managed over SSH. Layout changes that ZFS can make to a live pool are made in place " +
			"(adding vdevs, adding and removing log, cache and spare devices, attaching disks to mirrors, raidz expansion, " +
			"replacing disks); anything that would need a new pool is refused at plan time unless `allow_replace = true`. " +
			"A pool that holds data is never destroyed without `force_destroy = true`, and a failed disk shows in `health` " +
			"and `status` and as a warning, never as a replacement.",
		Blocks: map[string]schema.Block{
			"ssh": connection.ResourceBlock(),
			"vdev": schema.ListNestedBlock{
				Description: "The pool's vdevs, in order. Name disks by `/dev/disk/by-id/...` so the names survive reboots and controller changes.",
				Validators:  []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"role": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(zfs.RoleData),
						Description: "What the vdev is for: `data` (default), `log` (SLOG), `cache` (L2ARC), `spare`, `special` or `dedup`.",
						Validators:  []validator.String{stringvalidator.OneOf(zfs.Roles...)}},
					"type": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(zfs.TypeStripe),
						Description: "`stripe` (default: every disk is a vdev of its own), `mirror`, `raidz1`, `raidz2`, `raidz3`, or a dRAID spec such as `draid1:2d:1s`.",
						Validators: []validator.String{stringvalidator.Any(stringvalidator.OneOf(zfs.TypeStripe, zfs.TypeMirror, zfs.TypeRaidz1, zfs.TypeRaidz2, zfs.TypeRaidz3),
							validators.DRAID())}},
					"disks": schema.ListAttribute{ElementType: types.StringType, Required: true,
						Description: "Disk paths, e.g. `/dev/disk/by-id/ata-WDC_WD80EFAX-68KNBN0_VAGXXXXX`. New disks of a raidz expansion go at the end.",
						Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(validators.DiskPath())}},
				}},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, zpoolCreateTimeout, zpoolUpdateTimeout, zpoolDeleteTimeout),
		},
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "The pool's GUID.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, Description: "Pool name. Renaming needs an export and import, so it is refused unless `allow_replace` is set.",
				Validators: []validator.String{validators.PoolName()}},
			"properties": schema.MapAttribute{ElementType: types.StringType, Optional: true, Computed: true,
				Description: "Pool properties such as `ashift`, `autotrim`, `autoexpand`, `comment`. Only these are managed; they are set at creation and changed in place (`ashift` then applies to vdevs added later). " +
					"Left out of the configuration, the properties in state (after an import: every locally set one) are kept as they are.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
			"filesystem_properties": schema.MapAttribute{ElementType: types.StringType, Optional: true, Computed: true,
				Description: "Properties of the pool's root dataset, such as `compression`, `atime`, `xattr`, `mountpoint`. Set at creation (`-O`) and changed in place, except the creation-only `casesensitivity`, `normalization`, `utf8only` and `encryption`: " +
					"one of these that the configuration leaves out is never a change; one set to a value that differs from the pool's is refused unless `allow_replace = true`. " +
					"Left out of the configuration, the properties in state are kept as they are.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
			"force": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Create the pool (and add vdevs) even on disks that hold a filesystem or another pool's label (`zpool create -f`). Without it such disks are refused."},
			"force_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Let destroy remove a pool that holds datasets, snapshots or files. Without it, destroying such a pool fails and says what it holds."},
			"allow_replace": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Allow changes that need a new pool (a raidz's parity, a rename, creation-only properties) to destroy and recreate it, with everything on it. Without it they are refused at plan time."},
			"guid":          schema.StringAttribute{Computed: true, Description: "Pool GUID.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"health":        schema.StringAttribute{Computed: true, Description: poolHealthDesc + " Not ONLINE also raises a warning."},
			"size":          schema.Int64Attribute{Computed: true, Description: poolSizeDesc},
			"allocated":     schema.Int64Attribute{Computed: true, Description: poolAllocatedDesc},
			"free":          schema.Int64Attribute{Computed: true, Description: poolFreeDesc},
			"fragmentation": schema.Int64Attribute{Computed: true, Description: poolFragmentationDesc},
			"disk_guids": schema.MapAttribute{ElementType: types.StringType, Computed: true,
				Description: "The ZFS GUID of every disk, by the path the configuration names it by. A disk found under another path " +
					"(a `/dev/sdX` name that re-enumerated) is recognised by its GUID: it is the same disk, named as before, and a warning, never a `zpool replace`."},
			"status": statusResourceAttribute(),
		},
	}
}

func (r *zpoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

// specsOf reads the vdev blocks; known is false while any part of them is
// unknown (values from resources not created yet, or a dynamic block).
func specsOf(ctx context.Context, l types.List) (specs []zfs.VdevSpec, known bool) {
	if l.IsUnknown() {
		return nil, false
	}
	var vs []vdevModel
	if diags := l.ElementsAs(ctx, &vs, false); diags.HasError() {
		return nil, false
	}
	for _, v := range vs {
		if v.Role.IsUnknown() || v.Type.IsUnknown() || v.Disks.IsUnknown() {
			return nil, false
		}
		var disks []string
		if diags := v.Disks.ElementsAs(ctx, &disks, false); diags.HasError() {
			return nil, false
		}
		for _, d := range v.Disks.Elements() {
			if d.IsUnknown() {
				return nil, false
			}
		}
		specs = append(specs, zfs.VdevSpec{Role: v.Role.ValueString(), Type: v.Type.ValueString(), Disks: disks})
	}
	return specs, true
}

// topologyOf is the layout of known vdev blocks.
func topologyOf(ctx context.Context, l types.List) zfs.Topology {
	specs, _ := specsOf(ctx, l)
	return zfs.Expand(specs)
}

// vdevList is the layout as a list of vdevObjectType.
func vdevList(specs []zfs.VdevSpec) types.List {
	vals := make([]attr.Value, len(specs))
	for i, s := range specs {
		disks := make([]attr.Value, len(s.Disks))
		for k, d := range s.Disks {
			disks[k] = types.StringValue(d)
		}
		vals[i] = types.ObjectValueMust(vdevObjectType.AttrTypes, map[string]attr.Value{
			"role": types.StringValue(s.Role), "type": types.StringValue(s.Type),
			"disks": types.ListValueMust(types.StringType, disks),
		})
	}
	return types.ListValueMust(vdevObjectType, vals)
}

func (r *zpoolResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m zpoolModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(connection.Warnings(m.SSH, nil, path.Root("ssh"))...)
	specs, known := specsOf(ctx, m.Vdevs)
	if !known {
		return
	}
	for _, err := range zfs.Validate(specs) {
		resp.Diagnostics.AddAttributeError(path.Root("vdev"), "Invalid pool layout", err.Error())
	}
	resp.Diagnostics.Append(unstableDiskWarnings(specs)...)
}

// unstableDiskWarnings warns, at plan time, about disks named by a path the
// kernel gives out in probe order (/dev/sdX, /dev/nvmeXnY, ...).
func unstableDiskWarnings(specs []zfs.VdevSpec) diag.Diagnostics {
	var diags diag.Diagnostics
	for i, s := range specs {
		for k, d := range s.Disks {
			if zfs.UnstablePath(d) {
				diags.AddAttributeWarning(path.Root("vdev").AtListIndex(i).AtName("disks").AtListIndex(k), "Disk named by a path that can change",
					fmt.Sprintf("%s is a name the kernel hands out in the order it finds disks: after a reboot or a hardware change it can name another disk. "+
						"The provider recognises the pool's own disks by their ZFS GUID, but a new disk named this way may not be the one you meant. "+
						"Use its /dev/disk/by-id/... name (ls -l /dev/disk/by-id/ shows which one points at %s).", d, d))
			}
		}
	}
	return diags
}

// ModifyPlan refuses, at plan time, any change that would need a new pool,
// unless allow_replace is set.
func (r *zpoolResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || req.State.Raw.IsNull() {
		return
	}
	var plan, state zpoolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	planSpecs, known := specsOf(ctx, plan.Vdevs)
	if resp.Diagnostics.HasError() || !known {
		return
	}
	var reasons []string
	var paths []path.Path
	if !plan.Name.IsUnknown() && plan.Name.ValueString() != state.Name.ValueString() {
		reasons = append(reasons, fmt.Sprintf("renaming pool %s to %s needs it exported and imported under the new name", state.Name.ValueString(), plan.Name.ValueString()))
		paths = append(paths, path.Root("name"))
	}
	if _, err := zfs.Plan(zfs.PreviewNames(topologyOf(ctx, state.Vdevs)), zfs.Expand(planSpecs)); err != nil {
		var re *zfs.ReplaceError
		if errors.As(err, &re) {
			reasons = append(reasons, re.Reasons...)
			paths = append(paths, path.Root("vdev"))
		}
	}
	planFS, stateFS := mapOf(ctx, plan.FilesystemProperties), mapOf(ctx, state.FilesystemProperties)
	for k := range createOnlyFSProps {
		// Only a value the configuration sets, and that differs from the pool's, counts.
		if want, set := planFS[k]; set && !zfs.SameValue(want, stateFS[k]) && !plan.FilesystemProperties.IsUnknown() {
			reasons = append(reasons, fmt.Sprintf("filesystem property %s is fixed when the pool is created", k))
			paths = append(paths, path.Root("filesystem_properties").AtMapKey(k))
		}
	}
	if len(reasons) == 0 {
		return
	}
	if plan.AllowReplace.ValueBool() {
		resp.RequiresReplace = append(resp.RequiresReplace, paths...)
		resp.Diagnostics.AddWarning("Pool "+state.Name.ValueString()+" will be destroyed and recreated",
			"allow_replace = true and this change cannot be made in place: "+strings.Join(reasons, "; ")+". Everything on the pool will be lost.")
		return
	}
	resp.Diagnostics.AddAttributeError(paths[0], "Change needs a new pool "+state.Name.ValueString(),
		"This change cannot be made to the existing pool: "+strings.Join(reasons, "; ")+
			".\n\nRecreating the pool would destroy everything on it, so it is refused. Revert the change, or set allow_replace = true "+
			"if the data is backed up and the pool may be destroyed and recreated.")
}

func mapOf(ctx context.Context, m types.Map) map[string]string {
	out := map[string]string{}
	if !m.IsNull() && !m.IsUnknown() {
		_ = m.ElementsAs(ctx, &out, false)
	}
	return out
}

func (r *zpoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan zpoolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, zpoolCreateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, diags := r.data.ZFSClient(plan.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	spec := zfs.PoolSpec{Name: name, Topology: topologyOf(ctx, plan.Vdevs),
		Properties: mapOf(ctx, plan.Properties), FSProperties: mapOf(ctx, plan.FilesystemProperties), Force: plan.Force.ValueBool()}
	logging.Info(ctx, "creating ZFS pool", map[string]any{"pool": name, "vdevs": strings.Join(spec.Topology.CreateArgs(), " ")})
	if err := c.CreatePool(ctx, spec); err != nil {
		detail := explainZFS(err)
		if errors.Is(err, zfs.ErrNotImported) {
			resp.Diagnostics.AddError("Unable to create ZFS pool "+name, detail+
				"\n\nCreating it (with force, over its disks) could destroy that pool. If it is the pool this resource manages, import it on the host, "+
				"then import it into the state (terraform import). If it must go, destroy it on the host first (zpool import, then zpool destroy).")
			return
		}
		if strings.Contains(err.Error(), "-f") || strings.Contains(err.Error(), "in use") || strings.Contains(err.Error(), "contains a") {
			detail += "\n\nA disk holds data, a filesystem or another pool's label. Check it is the disk you mean; " +
				"set force = true only if its contents may be overwritten."
		}
		resp.Diagnostics.AddError("Unable to create ZFS pool "+name, detail)
		return
	}
	_, diags = r.read(ctx, c, &plan, false)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		// The pool exists: keep it in state (tainted) rather than lose it.
		if err := saveCreated(req.Plan.Raw, &resp.State); err != nil {
			resp.Diagnostics.AddError("Unable to save ZFS pool "+name+" after creating it", err.Error())
		}
		resp.Diagnostics.AddWarning("ZFS pool "+name+" was created but could not be read back",
			"It is kept in the state as tainted, so it is not created again over its disks. Once the host answers, "+
				"`terraform untaint` it if it is the pool you want (the next plan then shows only what differs), or let the next apply replace it.")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *zpoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state zpoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, _, diags := r.data.ZFSClient(state.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	gone, diags := r.read(ctx, c, &state, false)
	if gone {
		logging.Warn(ctx, "ZFS pool no longer exists on the host, removing it from state", map[string]any{"pool": state.Name.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// read refreshes m from the host: layout (kept as configured when it means
// the same), managed properties, capacity, health and status. gone reports
// that the host says the pool does not exist.
func (r *zpoolResource) read(ctx context.Context, c *zfs.Client, m *zpoolModel, importing bool) (gone bool, diags diag.Diagnostics) {
	name := m.Name.ValueString()
	guid := ""
	if !m.GUID.IsNull() && !m.GUID.IsUnknown() {
		guid = m.GUID.ValueString()
	}
	// Gone only when the pool is neither imported nor listed by zpool
	// import (by name or by the GUID in state); an exported pool is an
	// error that keeps the state.
	pool, err := c.LookupPool(ctx, name, guid)
	if errors.Is(err, zfs.ErrNotFound) {
		return true, diags
	}
	if err != nil {
		diags.AddError("Unable to read ZFS pool "+name, explainZFS(err))
		return false, diags
	}
	prior, priorKnown := specsOf(ctx, m.Vdevs)
	actual, moved := zfs.FollowGUIDs(pool.Topology(), pool.DiskGUIDs(), invert(mapOf(ctx, m.DiskGUIDs)), namedDisks(prior))
	for _, mv := range moved {
		diags.AddWarning(fmt.Sprintf("Disk %s of ZFS pool %s is now %s", mv.Was, name, mv.Now),
			fmt.Sprintf("The disk with ZFS GUID %s, configured as %s, is now at %s (the kernel named the disks in another order). "+
				"It is the same disk, so nothing is planned for it; whatever disk now has the name %s is left alone. "+
				"Name the pool's disks by /dev/disk/by-id/... so that their names do not change.", mv.GUID, mv.Was, mv.Now, mv.Was))
	}
	if !priorKnown || m.Vdevs.IsNull() || !zfs.Equal(actual, zfs.Expand(prior)) {
		m.Vdevs = vdevList(actual.Specs())
	}
	m.DiskGUIDs = diskGUIDs(pool.DiskGUIDs(), moved)
	m.ID = types.StringValue(pool.GUID)
	m.GUID = types.StringValue(pool.GUID)
	m.Health = types.StringValue(pool.Health)
	m.Size = types.Int64Value(int64(pool.Size))
	m.Allocated = types.Int64Value(int64(pool.Allocated))
	m.Free = types.Int64Value(int64(pool.Free))
	m.Fragmentation = types.Int64Value(pool.Fragmentation)
	m.Status = statusList(pool)
	for _, b := range []*types.Bool{&m.Force, &m.ForceDestroy, &m.AllowReplace} {
		if b.IsNull() || b.IsUnknown() {
			*b = types.BoolValue(false)
		}
	}
	if pool.Health != "ONLINE" {
		diags.AddWarning(fmt.Sprintf("ZFS pool %s is %s", name, pool.Health),
			fmt.Sprintf("%s. The pool keeps working while it has redundancy left. To recover, replace the failed disk: "+
				"change its path in the vdev block to the new disk and apply (zpool replace, then a resilver).", strings.Join(pool.Problems(), "; ")))
	}

	props, err := c.PoolProperties(ctx, name)
	if err != nil {
		diags.AddError("Unable to read properties of ZFS pool "+name, tfhelp.Explain(err))
		return false, diags
	}
	m.Properties = managedMap(ctx, m.Properties, props, importing, poolPropertyImportable, false)
	root, err := c.Dataset(ctx, name)
	if err != nil {
		diags.AddError("Unable to read the root dataset of ZFS pool "+name, tfhelp.Explain(err))
		return false, diags
	}
	m.FilesystemProperties = managedMap(ctx, m.FilesystemProperties, root.Props, importing, func(k string, p zfs.Property) bool {
		return p.Local() && k != "keylocation"
	}, true)
	return false, diags
}

// invert turns path-to-GUID into GUID-to-path.
func invert(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// namedDisks is the set of disks vdev specs name.
func namedDisks(specs []zfs.VdevSpec) map[string]bool {
	out := map[string]bool{}
	for _, d := range zfs.Expand(specs).Disks() {
		out[d] = true
	}
	return out
}

// diskGUIDs is disk_guids: every disk's GUID by the name state gives it
// (a moved disk by its old name).
func diskGUIDs(live map[string]string, moved []zfs.Moved) types.Map {
	was := map[string]string{}
	for _, mv := range moved {
		was[mv.GUID] = mv.Was
	}
	vals := map[string]attr.Value{}
	for guid, now := range live {
		if w, ok := was[guid]; ok {
			now = w
		}
		vals[now] = types.StringValue(guid)
	}
	return types.MapValueMust(types.StringType, vals)
}

// poolPropertyImportable says which pool properties import puts in the
// configuration: those set locally, except bookkeeping ones.
func poolPropertyImportable(k string, p zfs.Property) bool {
	return p.Source == zfs.SourceLocal && !strings.HasPrefix(k, "feature@") && k != "cachefile" && k != "guid" && k != "load_guid"
}

// managedMap refreshes a map of managed properties. Pool properties are not
// inherited, so only their value counts; dataset properties also show
// drift when they stop being set locally (sourceMatters).
func managedMap(ctx context.Context, prior types.Map, props map[string]zfs.Property, importing bool,
	importable func(string, zfs.Property) bool, sourceMatters bool) types.Map {
	managed := mapOf(ctx, prior)
	if importing {
		for k, p := range props {
			if importable(k, p) {
				managed[k] = zfs.Readable(k, p.Value)
			}
		}
	}
	if len(managed) == 0 && (prior.IsNull() || prior.IsUnknown()) {
		return types.MapNull(types.StringType)
	}
	vals := map[string]attr.Value{}
	for k, want := range managed {
		p, ok := props[k]
		switch {
		case !ok:
			vals[k] = types.StringValue("(not set)")
		case sourceMatters:
			vals[k] = types.StringValue(observed(want, p))
		case zfs.SameValue(want, p.Value):
			vals[k] = types.StringValue(want)
		default:
			vals[k] = types.StringValue(p.Value)
		}
	}
	return types.MapValueMust(types.StringType, vals)
}

func (r *zpoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state zpoolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, zpoolUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, diags := r.data.ZFSClient(plan.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	if err := r.reshape(ctx, c, name, topologyOf(ctx, plan.Vdevs), plan.Force.ValueBool(), invert(mapOf(ctx, state.DiskGUIDs))); err != nil {
		resp.Diagnostics.AddError("Unable to change the layout of ZFS pool "+name, tfhelp.Explain(err)+
			"\n\nThe steps before the failing one were applied; refresh to see the pool as it is now.")
		// Keep what was done: read the pool back into state.
		_, diags := r.read(ctx, c, &state, false)
		resp.Diagnostics.Append(diags...)
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	if changed := changedProps(ctx, plan.Properties, state.Properties); len(changed) > 0 {
		if err := c.SetPoolProperties(ctx, name, changed); err != nil {
			resp.Diagnostics.AddError("Unable to set properties of ZFS pool "+name, tfhelp.Explain(err))
			return
		}
	}
	if changed := changedProps(ctx, plan.FilesystemProperties, state.FilesystemProperties); len(changed) > 0 {
		if err := c.SetProperties(ctx, name, changed); err != nil {
			resp.Diagnostics.AddError("Unable to set filesystem properties of ZFS pool "+name, tfhelp.Explain(err))
			return
		}
	}
	// The disks state knows by GUID keep their names across a re-enumeration.
	plan.DiskGUIDs = state.DiskGUIDs
	_, diags = r.read(ctx, c, &plan, false)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		// The pool exists: keep it in state (tainted) rather than lose it.
		if err := saveCreated(req.Plan.Raw, &resp.State); err != nil {
			resp.Diagnostics.AddError("Unable to save ZFS pool "+name+" after creating it", err.Error())
		}
		resp.Diagnostics.AddWarning("ZFS pool "+name+" was created but could not be read back",
			"It is kept in the state as tainted, so it is not created again over its disks. Once the host answers, "+
				"`terraform untaint` it if it is the pool you want (the next plan then shows only what differs), or let the next apply replace it.")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// changedProps returns the properties whose planned value differs from state.
func changedProps(ctx context.Context, plan, state types.Map) map[string]string {
	want, have := mapOf(ctx, plan), mapOf(ctx, state)
	changed := map[string]string{}
	for k, v := range want {
		if have[k] != v {
			changed[k] = v
		}
	}
	return changed
}

// reshape has the client turn the pool's live layout into desired,
// logging each step and each wait for a resilver or raidz expansion.
func (r *zpoolResource) reshape(ctx context.Context, c *zfs.Client, name string, desired zfs.Topology, force bool, known map[string]string) error {
	return c.Reshape(ctx, name, desired, zfs.ReshapeOptions{
		Force:      force,
		KnownGUIDs: known,
		Progress: func(step, of int, op zfs.Op, activity string) {
			if activity == "" {
				logging.Info(ctx, "changing ZFS pool layout", map[string]any{"pool": name, "step": step, "of": of, "operation": op.String()})
				return
			}
			logging.Info(ctx, "waiting for ZFS pool", map[string]any{"pool": name, "operation": op.String(), "progress": activity})
		},
	})
}

func (r *zpoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state zpoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, zpoolDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, diags := r.data.ZFSClient(state.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	contents, err := c.Contents(ctx, name)
	if errors.Is(err, zfs.ErrNotFound) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to destroy ZFS pool "+name, explainZFS(err))
		return
	}
	if len(contents) > 0 && !state.ForceDestroy.ValueBool() {
		sort.Strings(contents)
		shown := contents
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(contents)-10))
		}
		resp.Diagnostics.AddError("Unable to destroy ZFS pool "+name,
			fmt.Sprintf("The pool holds data that would be lost: %s.\n\nMove or back up the data and destroy it first, "+
				"or set force_destroy = true and apply before destroying, if it may be lost.", strings.Join(shown, ", ")))
		return
	}
	logging.Info(ctx, "destroying ZFS pool", map[string]any{"pool": name})
	if err := c.DestroyPool(ctx, name); err != nil && !errors.Is(err, zfs.ErrNotFound) {
		resp.Diagnostics.AddError("Unable to destroy ZFS pool "+name, tfhelp.Explain(err)+"\n\nA pool whose datasets are in use cannot be destroyed; stop what uses them and try again.")
	}
}

func (r *zpoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := connection.ParseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import ZFS pool "+req.ID, err.Error()+"\n\nExample: terraform import homelab_zpool.tank nas.lan:tank")
		return
	}
	m := zpoolModel{SSH: id.SSHForImport(), Name: types.StringValue(id.Name), Vdevs: types.ListNull(vdevObjectType), DiskGUIDs: types.MapNull(types.StringType),
		Properties: types.MapNull(types.StringType), FilesystemProperties: types.MapNull(types.StringType),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})}}
	c, _, diags := r.data.ZFSClient(m.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	gone, diags := r.read(ctx, c, &m, true)
	if gone {
		resp.Diagnostics.AddError("Unable to import ZFS pool "+id.Name, fmt.Sprintf("%s has no pool %s.", id.Host, id.Name))
		return
	}
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
