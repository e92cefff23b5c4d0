package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
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
	_ resource.Resource                   = (*zfsDatasetResource)(nil)
	_ resource.ResourceWithConfigure      = (*zfsDatasetResource)(nil)
	_ resource.ResourceWithImportState    = (*zfsDatasetResource)(nil)
	_ resource.ResourceWithValidateConfig = (*zfsDatasetResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*zfsDatasetResource)(nil)
)

// Default timeouts of homelab_zfs_dataset.
const (
	datasetCreateTimeout = 5 * time.Minute
	datasetUpdateTimeout = 5 * time.Minute
	datasetDeleteTimeout = 10 * time.Minute
)

// zfsDatasetResource is the homelab_zfs_dataset resource.
type zfsDatasetResource struct {
	data *connection.Data
}

// NewZFSDataset returns the homelab_zfs_dataset resource.
func NewZFSDataset() resource.Resource { return &zfsDatasetResource{} }

// zfsDatasetModel is the resource's data.
type zfsDatasetModel struct {
	SSH              *connection.SSHModel `tfsdk:"ssh"`
	ID               types.String         `tfsdk:"id"`
	Name             types.String         `tfsdk:"name"`
	Type             types.String         `tfsdk:"type"`
	VolumeSize       types.String         `tfsdk:"volume_size"`
	VolBlockSize     types.String         `tfsdk:"volblocksize"`
	Sparse           types.Bool           `tfsdk:"sparse"`
	Properties       types.Map            `tfsdk:"properties"`
	Mountpoint       types.String         `tfsdk:"mountpoint"`
	Quota            types.String         `tfsdk:"quota"`
	Reservation      types.String         `tfsdk:"reservation"`
	Encryption       *encryptionModel     `tfsdk:"encryption"`
	RecursiveDestroy types.Bool           `tfsdk:"recursive_destroy"`
	AllowReplace     types.Bool           `tfsdk:"allow_replace"`
	GUID             types.String         `tfsdk:"guid"`
	Used             types.Int64          `tfsdk:"used"`
	Available        types.Int64          `tfsdk:"available"`
	Referenced       types.Int64          `tfsdk:"referenced"`
	Mounted          types.Bool           `tfsdk:"mounted"`
	Creation         types.String         `tfsdk:"creation"`
	EncryptionRoot   types.String         `tfsdk:"encryption_root"`
	KeyStatus        types.String         `tfsdk:"key_status"`
	Timeouts         timeouts.Value       `tfsdk:"timeouts"`
}

// encryptionModel is the encryption {} block.
type encryptionModel struct {
	Format       types.String `tfsdk:"format"`
	Algorithm    types.String `tfsdk:"algorithm"`
	KeyWO        types.String `tfsdk:"key_wo"`
	KeyWOVersion types.Int64  `tfsdk:"key_wo_version"`
	KeyLocation  types.String `tfsdk:"keylocation"`
}

// dedicated maps the resource's own attributes to the properties they set.
var dedicated = map[string]string{"mountpoint": "mountpoint", "quota": "quota", "reservation": "reservation"}

// structural properties are managed through their own attributes (or are
// set at creation only) and are kept out of the properties map on import.
var structural = map[string]bool{
	"mountpoint": true, "quota": true, "reservation": true, "volsize": true, "volblocksize": true,
	"encryption": true, "keyformat": true, "keylocation": true, "pbkdf2iters": true, "refreservation": true,
}

var datasetNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_.: -]+)+$`)

func (r *zfsDatasetResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_zfs_dataset"
}

func (r *zfsDatasetResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A ZFS filesystem or volume (zvol) on a host, managed over SSH with the host's own `zfs` command. " +
			"Only the properties set in the configuration are managed; a managed property that is later inherited or reset shows as drift.",
		Blocks: map[string]schema.Block{
			"ssh": connection.ResourceBlock(),
			"encryption": schema.SingleNestedBlock{
				Description: "Native ZFS encryption, chosen at creation (ZFS cannot encrypt an existing dataset). The key is never stored in state.",
				Attributes: map[string]schema.Attribute{
					"format": schema.StringAttribute{Optional: true, Description: "Key format: `passphrase`, `hex` (64 hex digits) or `raw` (32 bytes).",
						Validators: []validator.String{stringvalidator.OneOf("passphrase", "hex", "raw")}},
					"algorithm": schema.StringAttribute{Optional: true, Computed: true, Description: "Cipher, e.g. `aes-256-gcm` (the default when encryption is on).",
						PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
					"key_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
						Description: "The key or passphrase, write-only: sent to `zfs` on standard input and never stored. Changing `key_wo_version` changes the key in place (`zfs change-key`)."},
					"key_wo_version": schema.Int64Attribute{Optional: true, Description: "Bump to apply a new `key_wo`."},
					"keylocation": schema.StringAttribute{Optional: true, Computed: true,
						Description:   "Where ZFS finds the key when loading it, e.g. `file:///etc/zfs/keys/tank.key`; `prompt` (the default with `key_wo`) means it is supplied when loaded.",
						PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, datasetCreateTimeout, datasetUpdateTimeout, datasetDeleteTimeout),
		},
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "The dataset's GUID, which survives renames.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true,
				Description: "Full name, e.g. `tank/media`. Changing it within the same pool renames the dataset in place (`zfs rename`); moving it to another pool replaces it.",
				Validators:  []validator.String{stringvalidator.RegexMatches(datasetNameRe, "must be a dataset name such as tank/media (pool/child, no snapshot)")}},
			"type": schema.StringAttribute{Optional: true, Computed: true,
				Description: "`filesystem` (the default when creating) or `volume`. Cannot change after creation: when the configuration leaves it out, " +
					"the existing dataset's type is kept; a different value replaces the dataset, which is refused unless `allow_replace = true`.",
				Validators:    []validator.String{stringvalidator.OneOf("filesystem", "volume")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"volume_size": schema.StringAttribute{Optional: true, Description: "Size of a volume, e.g. `10G` (binary units). Required for volumes; can grow or shrink in place.",
				Validators: []validator.String{validators.Size()}},
			"volblocksize": schema.StringAttribute{Optional: true, Computed: true,
				Description: "Block size of a volume, e.g. `16K`. Set at creation only; left out, ZFS chooses it and state keeps the volume's real value, " +
					"so an adopted volume is never replaced over it. A value that differs from the volume's replaces it, which is refused unless `allow_replace = true`.",
				Validators: []validator.String{validators.Size()}, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"sparse": schema.BoolAttribute{Optional: true, Computed: true,
				Description: "A sparse (thin) volume, without a reservation for its full size (`refreservation=none`); false reserves it (`refreservation=auto`). " +
					"Changed in place; left out, a new volume is not sparse and an existing one keeps what it has.",
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()}},
			"properties": schema.MapAttribute{ElementType: types.StringType, Optional: true, Computed: true,
				Description: "ZFS properties to set, native (`compression = \"zstd\"`, `atime = \"off\"`) or user (`\"homelab:owner\" = \"media\"`). Only these are managed; one that is later inherited or changed shows as drift. Sizes may be written `10G`. " +
					"Left out of the configuration, the properties in state (after an import: every locally set one) are kept as they are.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
			"mountpoint":  schema.StringAttribute{Optional: true, Description: "Mount point (the `mountpoint` property): a path, `legacy` or `none`."},
			"quota":       schema.StringAttribute{Optional: true, Description: "Quota (the `quota` property), e.g. `500G` or `none`.", Validators: []validator.String{validators.Size()}},
			"reservation": schema.StringAttribute{Optional: true, Description: "Reservation (the `reservation` property), e.g. `50G` or `none`.", Validators: []validator.String{validators.Size()}},
			"allow_replace": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Allow changes ZFS cannot make to an existing dataset (a different `type` or `volblocksize`, a move to another pool, " +
					"an `encryption` block added or removed) to destroy it and create an empty one. Without it they are refused at plan time."},
			"recursive_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Let destroy remove the dataset's children and snapshots too. Without it, destroying a dataset that has any fails and names them."},
			"guid":       schema.StringAttribute{Computed: true, Description: "The dataset's GUID.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"used":       schema.Int64Attribute{Computed: true, Description: "Bytes used by the dataset and its descendants."},
			"available":  schema.Int64Attribute{Computed: true, Description: "Bytes available to the dataset."},
			"referenced": schema.Int64Attribute{Computed: true, Description: "Bytes referenced by the dataset."},
			"mounted":    schema.BoolAttribute{Computed: true, Description: "Whether the filesystem is mounted (false for volumes)."},
			"creation": schema.StringAttribute{Computed: true, Description: "Creation time, RFC 3339.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"encryption_root": schema.StringAttribute{Computed: true,
				Description: "The dataset whose key unlocks this one (the `encryptionroot` property): the dataset itself when it has an `encryption` block, " +
					"the ancestor it inherits encryption from otherwise; null when it is not encrypted. Inherited encryption is never a difference from the configuration."},
			"key_status": schema.StringAttribute{Computed: true,
				Description: "Whether the encryption key is loaded (the `keystatus` property): `available` or `unavailable` (after a pool import or reboot without `zfs load-key`); " +
					"null when the dataset is not encrypted. An unloaded key is reported as a warning, never as a reason to replace the dataset; " +
					"for an encryption root whose key is in the configuration (`key_wo`, or a `keylocation` file), apply loads it and mounts what it unlocks."},
		},
	}
}

func (r *zfsDatasetResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func (r *zfsDatasetResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m zfsDatasetModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(connection.Warnings(m.SSH, nil, path.Root("ssh"))...)
	volume := m.Type.ValueString() == "volume"
	if !m.Type.IsUnknown() {
		if volume && m.VolumeSize.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("volume_size"), "Missing volume size", "A volume needs `volume_size`, e.g. \"10G\".")
		}
		if !volume && !m.Type.IsNull() || m.Type.IsNull() {
			for _, a := range []string{"volume_size", "volblocksize"} {
				if v, _ := attrString(m, a); !v.IsNull() && !volume {
					resp.Diagnostics.AddAttributeError(path.Root(a), "Volume setting on a filesystem", fmt.Sprintf("`%s` applies to volumes only; set `type = \"volume\"` or remove it.", a))
				}
			}
			if !m.Sparse.IsNull() && m.Sparse.ValueBool() && !volume {
				resp.Diagnostics.AddAttributeError(path.Root("sparse"), "Volume setting on a filesystem", "`sparse` applies to volumes only.")
			}
		}
		if volume && !m.Mountpoint.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("mountpoint"), "Mount point on a volume", "Volumes are block devices and have no mount point.")
		}
	}
	if !m.Properties.IsNull() && !m.Properties.IsUnknown() {
		for k := range m.Properties.Elements() {
			if attrName, ok := dedicatedAttr(k); ok {
				resp.Diagnostics.AddAttributeError(path.Root("properties").AtMapKey(k), "Property set twice",
					fmt.Sprintf("Set %s with the `%s` attribute, not in `properties`.", k, attrName))
			}
			if k == "volsize" || k == "volblocksize" || k == "encryption" || k == "keyformat" || k == "keylocation" {
				resp.Diagnostics.AddAttributeError(path.Root("properties").AtMapKey(k), "Property has its own attribute",
					fmt.Sprintf("%s is managed by the resource's own attributes (volume_size, volblocksize, encryption {}), not `properties`.", k))
			}
		}
	}
	if e := m.Encryption; e != nil {
		if e.Format.IsNull() && !e.KeyWO.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("encryption").AtName("format"), "Missing key format", "Set `format` to passphrase, hex or raw.")
		}
		if !e.KeyWO.IsNull() && !e.KeyWO.IsUnknown() && e.Format.ValueString() != "" {
			if err := checkKey(e.Format.ValueString(), e.KeyWO.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("encryption").AtName("key_wo"), "Invalid encryption key", err.Error())
			}
		}
		if e.KeyWO.IsNull() && e.KeyLocation.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("encryption"), "No encryption key",
				"Give the key with `key_wo` (write-only, never stored), or a `keylocation` file that already holds it on the host.")
		}
	}
}

func attrString(m zfsDatasetModel, name string) (types.String, bool) {
	switch name {
	case "volume_size":
		return m.VolumeSize, true
	case "volblocksize":
		return m.VolBlockSize, true
	}
	return types.StringNull(), false
}

func dedicatedAttr(prop string) (string, bool) {
	for attrName, p := range dedicated {
		if p == prop {
			return attrName, true
		}
	}
	return "", false
}

func checkKey(format, key string) error {
	switch format {
	case "passphrase":
		if len(key) < 8 || len(key) > 512 {
			return errors.New("a ZFS passphrase must be 8 to 512 characters long")
		}
	case "hex":
		if len(key) != 64 || strings.Trim(strings.ToLower(key), "0123456789abcdef") != "" {
			return errors.New("a hex key must be exactly 64 hexadecimal digits")
		}
	case "raw":
		if len(key) != 32 {
			return errors.New("a raw key must be exactly 32 bytes")
		}
	}
	return nil
}

// replaceReason is a change ZFS cannot make to an existing dataset.
type replaceReason struct {
	path path.Path
	why  string
}

// datasetReplaceReasons lists the planned changes that need the dataset
// destroyed and created again. Creation-only attributes the configuration
// leaves out plan as their value in state (UseStateForUnknown), so only a
// value the configuration sets, and that differs from the real one, counts.
func datasetReplaceReasons(plan, state zfsDatasetModel) []replaceReason {
	var out []replaceReason
	name := state.Name.ValueString()
	if !plan.Name.IsUnknown() && zfs.PoolOf(plan.Name.ValueString()) != zfs.PoolOf(name) {
		out = append(out, replaceReason{path.Root("name"), fmt.Sprintf("moving %s to pool %s (zfs rename stays within a pool)", name, zfs.PoolOf(plan.Name.ValueString()))})
	}
	if tfhelp.Known(plan.Type) && !state.Type.IsNull() && plan.Type.ValueString() != state.Type.ValueString() {
		out = append(out, replaceReason{path.Root("type"), fmt.Sprintf("type %s is fixed when the dataset is created (it is a %s)", plan.Type.ValueString(), state.Type.ValueString())})
	}
	if tfhelp.Known(plan.VolBlockSize) && !state.VolBlockSize.IsNull() && !zfs.SameValue(plan.VolBlockSize.ValueString(), state.VolBlockSize.ValueString()) {
		out = append(out, replaceReason{path.Root("volblocksize"), fmt.Sprintf("volblocksize %s is fixed when the volume is created (it is %s)", plan.VolBlockSize.ValueString(), state.VolBlockSize.ValueString())})
	}
	// Adding or removing the encryption block in the configuration needs a
	// new dataset (ZFS cannot encrypt or decrypt one in place). Read never
	// adds the block for inherited encryption; a block in state on a
	// dataset that inherits encryption (left by older versions) is dropped
	// in place, never by replacing the dataset.
	inherited := !state.EncryptionRoot.IsNull() && !state.EncryptionRoot.IsUnknown() && state.EncryptionRoot.ValueString() != name
	if (plan.Encryption == nil) != (state.Encryption == nil) && !(plan.Encryption == nil && inherited) {
		what := "adding an encryption block (ZFS cannot encrypt an existing dataset)"
		if plan.Encryption == nil {
			what = "removing the encryption block (ZFS cannot decrypt a dataset)"
		}
		out = append(out, replaceReason{path.Root("encryption"), what})
	}
	return out
}

// planReplacement turns replace reasons into the plan: a replacement with a
// warning under allow_replace, a plan-time error naming the attribute otherwise.
func planReplacement(reasons []replaceReason, allow bool, name string, resp *resource.ModifyPlanResponse) {
	if len(reasons) == 0 {
		return
	}
	whys := make([]string, len(reasons))
	for i, r := range reasons {
		whys[i] = r.why
	}
	if allow {
		for _, r := range reasons {
			resp.RequiresReplace = append(resp.RequiresReplace, r.path)
		}
		resp.Diagnostics.AddWarning("ZFS dataset "+name+" will be destroyed and created again",
			"allow_replace = true and this change cannot be made in place: "+strings.Join(whys, "; ")+". Everything in the dataset will be lost.")
		return
	}
	resp.Diagnostics.AddAttributeError(reasons[0].path, "Change needs a new ZFS dataset "+name,
		"This change cannot be made to the existing dataset: "+strings.Join(whys, "; ")+
			".\n\nRecreating the dataset would destroy everything in it, so it is refused. Revert the change (leave a creation-only attribute out "+
			"to keep the dataset's value), or set allow_replace = true if the data is backed up and the dataset may be destroyed and created empty.")
}

// ModifyPlan fills in creation defaults, refuses replacements of an
// existing dataset unless allow_replace is set, and marks the computed
// values that a key load will change as unknown.
func (r *zfsDatasetResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, state zfsDatasetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		// Creating: what ZFS will make when the configuration is silent.
		var cfgType types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("type"), &cfgType)...)
		if cfgType.IsNull() {
			plan.Type = types.StringValue("filesystem")
		}
		if plan.Type.ValueString() == "filesystem" {
			plan.VolBlockSize = types.StringNull()
		}
		if plan.Sparse.IsUnknown() || plan.Sparse.IsNull() {
			var cfg types.Bool
			resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("sparse"), &cfg)...)
			if cfg.IsNull() {
				plan.Sparse = types.BoolValue(false)
			}
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	planReplacement(datasetReplaceReasons(plan, state), plan.AllowReplace.ValueBool(), state.Name.ValueString(), resp)
	if resp.Diagnostics.HasError() {
		return
	}
	// The encryption key changes in place with key_wo_version.
	if plan.Encryption != nil && state.Encryption != nil && !plan.Encryption.KeyWOVersion.Equal(state.Encryption.KeyWOVersion) {
		var key types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("encryption").AtName("key_wo"), &key)...)
		if key.IsNull() && !plan.Encryption.KeyWOVersion.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("encryption").AtName("key_wo"), "Missing new key",
				"`key_wo_version` changed but no `key_wo` was given to change the key to.")
		}
	}
	// A key that is not loaded (after an import or a reboot) is loaded by
	// apply when the configuration has it.
	if e := plan.Encryption; e != nil && state.KeyStatus.ValueString() == "unavailable" && state.EncryptionRoot.ValueString() == state.Name.ValueString() &&
		plan.Name.Equal(state.Name) {
		var key types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("encryption").AtName("key_wo"), &key)...)
		loc := e.KeyLocation.ValueString()
		if !key.IsNull() || !e.KeyLocation.IsUnknown() && loc != "" && loc != "prompt" && loc != "none" {
			plan.KeyStatus = types.StringValue("available")
			plan.Mounted = types.BoolUnknown()
			plan.Used, plan.Available, plan.Referenced = types.Int64Unknown(), types.Int64Unknown(), types.Int64Unknown()
			resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		}
	}
}

// desiredProps are the properties the configuration manages, by ZFS name.
func desiredProps(ctx context.Context, m *zfsDatasetModel) (map[string]string, diag.Diagnostics) {
	props := map[string]string{}
	var diags diag.Diagnostics
	if !m.Properties.IsNull() && !m.Properties.IsUnknown() {
		diags.Append(m.Properties.ElementsAs(ctx, &props, false)...)
	}
	for attrName, prop := range dedicated {
		v := dedicatedValue(m, attrName)
		if !v.IsNull() && !v.IsUnknown() {
			props[prop] = v.ValueString()
		}
	}
	return props, diags
}

func dedicatedValue(m *zfsDatasetModel, attrName string) types.String {
	switch attrName {
	case "mountpoint":
		return m.Mountpoint
	case "quota":
		return m.Quota
	}
	return m.Reservation
}

func setDedicated(m *zfsDatasetModel, attrName string, v types.String) {
	switch attrName {
	case "mountpoint":
		m.Mountpoint = v
	case "quota":
		m.Quota = v
	default:
		m.Reservation = v
	}
}

func (r *zfsDatasetResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan zfsDatasetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var keyWO types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("encryption").AtName("key_wo"), &keyWO)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, datasetCreateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c, target, diags := r.data.ZFSClient(plan.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	props, diags := desiredProps(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	spec := zfs.DatasetSpec{Name: name, Properties: props, Volume: plan.Type.ValueString() == "volume",
		VolSize: plan.VolumeSize.ValueString(), VolBlockSize: plan.VolBlockSize.ValueString(), Sparse: plan.Sparse.ValueBool()}
	// With a write-only key, zfs reads it from stdin (keylocation=prompt);
	// a keylocation file is pointed at afterwards. Without one, zfs reads
	// the key from the keylocation file itself.
	keyLocation := ""
	if e := plan.Encryption; e != nil {
		props["encryption"] = "on"
		if !e.Algorithm.IsNull() && !e.Algorithm.IsUnknown() {
			props["encryption"] = e.Algorithm.ValueString()
		}
		if !e.Format.IsNull() {
			props["keyformat"] = e.Format.ValueString()
		}
		if !e.KeyLocation.IsNull() && !e.KeyLocation.IsUnknown() {
			keyLocation = e.KeyLocation.ValueString()
		}
		if keyLocation != "" {
			props["keylocation"] = keyLocation
		}
		if !keyWO.IsNull() {
			spec.Key = []byte(keyWO.ValueString())
			props["keylocation"] = "prompt"
		}
	}
	logging.Info(ctx, "creating ZFS dataset", map[string]any{"dataset": name, "target": target.String()})
	if err := c.CreateDataset(ctx, spec); err != nil {
		resp.Diagnostics.AddError("Unable to create ZFS dataset "+name, tfhelp.Explain(err)+
			"\n\nCheck that the parent dataset exists (create it as its own homelab_zfs_dataset) and that the properties are valid for this OpenZFS version.")
		return
	}
	if len(spec.Key) > 0 && keyLocation != "" && keyLocation != "prompt" {
		if err := c.SetProperties(ctx, name, map[string]string{"keylocation": keyLocation}); err != nil {
			resp.Diagnostics.AddError("Unable to set keylocation of ZFS dataset "+name, tfhelp.Explain(err))
		}
	}
	r.readInto(ctx, c, &plan, name, &resp.Diagnostics, false)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *zfsDatasetResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state zfsDatasetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, _, diags := r.data.ZFSClient(state.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	if gone := r.readInto(ctx, c, &state, name, &resp.Diagnostics, false); gone {
		logging.Warn(ctx, "ZFS dataset no longer exists, removing it from state", map[string]any{"dataset": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// readInto refreshes m from the host. It reports gone when the host says
// the dataset does not exist; every other failure is an error diagnostic.
// With importing, the managed properties become every locally set one.
func (r *zfsDatasetResource) readInto(ctx context.Context, c *zfs.Client, m *zfsDatasetModel, name string, diags *diag.Diagnostics, importing bool) (gone bool) {
	ds, err := c.Dataset(ctx, name)
	if errors.Is(err, zfs.ErrNotFound) {
		return true
	}
	if err != nil {
		diags.AddError("Unable to read ZFS dataset "+name, explainZFS(err))
		return false
	}
	m.Name = types.StringValue(ds.Name)
	m.ID = types.StringValue(ds.Get("guid"))
	m.GUID = types.StringValue(ds.Get("guid"))
	if ds.Type == "volume" {
		m.Type = types.StringValue("volume")
		m.VolumeSize = keepSpelling(m.VolumeSize, "volsize", ds.Get("volsize"))
		// Creation-only, defaulted by ZFS: state always holds the real value,
		// so a configuration that leaves it out plans no change.
		m.VolBlockSize = keepSpelling(m.VolBlockSize, "volblocksize", ds.Get("volblocksize"))
		m.Sparse = types.BoolValue(sparseVolume(ds))
	} else {
		m.Type = types.StringValue("filesystem")
		m.VolBlockSize = types.StringNull()
		m.Sparse = types.BoolValue(false)
	}
	if m.RecursiveDestroy.IsNull() || m.RecursiveDestroy.IsUnknown() {
		m.RecursiveDestroy = types.BoolValue(false)
	}
	if m.AllowReplace.IsNull() || m.AllowReplace.IsUnknown() {
		m.AllowReplace = types.BoolValue(false)
	}
	m.Used = int64Prop(ds, "used")
	m.Available = int64Prop(ds, "available")
	m.Referenced = int64Prop(ds, "referenced")
	m.Mounted = types.BoolValue(ds.Get("mounted") == "yes")
	m.Creation = types.StringValue(creationTime(ds.Get("creation")))

	// Managed properties: the configured ones (or, on import, every local one).
	managed := map[string]string{}
	if !m.Properties.IsNull() && !m.Properties.IsUnknown() {
		diags.Append(m.Properties.ElementsAs(ctx, &managed, false)...)
	}
	if importing {
		for k, p := range ds.Props {
			if p.Local() && !structural[k] {
				managed[k] = zfs.Readable(k, p.Value)
			}
		}
	}
	if m.Properties.IsUnknown() && len(managed) == 0 {
		m.Properties = types.MapNull(types.StringType)
	}
	if len(managed) > 0 || !m.Properties.IsNull() {
		vals := map[string]attr.Value{}
		for k, want := range managed {
			vals[k] = types.StringValue(observed(want, ds.Props[k]))
		}
		m.Properties = types.MapValueMust(types.StringType, vals)
	}
	for attrName, prop := range dedicated {
		v := dedicatedValue(m, attrName)
		p, ok := ds.Props[prop]
		switch {
		case importing && ok && p.Local():
			setDedicated(m, attrName, types.StringValue(zfs.Readable(prop, p.Value)))
		case !v.IsNull() && !v.IsUnknown():
			setDedicated(m, attrName, types.StringValue(observed(v.ValueString(), p)))
		}
	}
	encrypted, encRoot, keyLoaded := ds.Encrypted()
	ownRoot := encrypted && encRoot == ds.Name
	m.EncryptionRoot, m.KeyStatus = types.StringNull(), types.StringNull()
	if encrypted {
		m.EncryptionRoot = types.StringValue(encRoot)
		m.KeyStatus = types.StringValue(ds.Get("keystatus"))
	}
	// The encryption block describes the dataset's own encryption. A
	// dataset that inherits its parent's (encryptionroot is another
	// dataset) has none of its own: that is never a difference.
	switch e := m.Encryption; {
	case e != nil || importing && ownRoot:
		if e == nil {
			e = &encryptionModel{}
			m.Encryption = e
		}
		e.KeyWO = types.StringNull()
		if !encrypted {
			// Encryption cannot be removed: this only happens if the dataset
			// was recreated out of band; show it as a difference.
			e.Algorithm = types.StringValue("off")
		} else {
			e.Algorithm = types.StringValue(ds.Get("encryption"))
		}
		if kf := ds.Get("keyformat"); kf != "" && kf != "none" && (!e.Format.IsNull() || importing) {
			e.Format = types.StringValue(kf)
		}
		e.KeyLocation = types.StringValue(ds.Get("keylocation"))
	case ownRoot:
		diags.AddWarning("ZFS dataset "+name+" is encrypted but has no encryption block",
			fmt.Sprintf("%s is its own encryption root (%s), but the configuration has no `encryption` block. ZFS cannot remove encryption, "+
				"so this is not planned as a change; add an `encryption` block to manage its key.", name, ds.Get("encryption")))
	}
	if encrypted && !keyLoaded {
		what := fmt.Sprintf("The key of its encryption root %s is not loaded (keystatus %s), so it is not mounted and its data cannot be read; nothing is planned to replace it.",
			encRoot, ds.Get("keystatus"))
		if ownRoot {
			what += fmt.Sprintf("\n\nLoad it on the host with `zfs load-key %s && zfs mount -a`, or apply: with the key in this resource's configuration "+
				"(`encryption.key_wo`, or a `keylocation` file on the host) apply loads it and mounts the datasets it unlocks.", encRoot)
		} else {
			what += fmt.Sprintf("\n\nApply the resource of %s with its key in the configuration, or run `zfs load-key %s && zfs mount -a` on the host.", encRoot, encRoot)
		}
		diags.AddWarning("Encryption key of ZFS dataset "+name+" is not loaded", what)
	}
	return false
}

// sparseVolume says whether a volume reserves no space for its size: a
// sparse one (zfs create -s) has no refreservation.
func sparseVolume(ds *zfs.Dataset) bool {
	rr := ds.Get("refreservation")
	return rr == "0" || rr == "none"
}

// observed is what state records for a managed property: the configured
// spelling when the host's value means the same and is set locally;
// otherwise the host's value, marked with where it comes from when it is not
// local, so that the plan shows the drift and apply sets it again.
func observed(configured string, p zfs.Property) string {
	switch {
	case p.Source == "" && p.Value == "":
		return "(not set)"
	case p.Local() && zfs.SameValue(configured, p.Value):
		return configured
	case p.Local():
		return p.Value
	case p.Source == zfs.SourceInherited:
		return fmt.Sprintf("%s (inherited from %s)", p.Value, p.From)
	}
	return fmt.Sprintf("%s (%s)", p.Value, p.Source)
}

// keepSpelling keeps the configured spelling of a value ("10G") when the
// host's exact value means the same, and otherwise writes the host's value
// the way people write it.
func keepSpelling(prior types.String, property, actual string) types.String {
	if !prior.IsNull() && !prior.IsUnknown() && zfs.SameValue(prior.ValueString(), actual) {
		return prior
	}
	return types.StringValue(zfs.Readable(property, actual))
}

func int64Prop(ds *zfs.Dataset, name string) types.Int64 {
	n, err := strconv.ParseInt(ds.Get(name), 10, 64)
	if err != nil {
		return types.Int64Null()
	}
	return types.Int64Value(n)
}

func creationTime(epoch string) string {
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return epoch
	}
	return time.Unix(n, 0).UTC().Format(time.RFC3339)
}

func (r *zfsDatasetResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state zfsDatasetModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	var keyWO types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("encryption").AtName("key_wo"), &keyWO)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, datasetUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, diags := r.data.ZFSClient(plan.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	if old := state.Name.ValueString(); old != name {
		logging.Info(ctx, "renaming ZFS dataset", map[string]any{"from": old, "to": name})
		if err := c.Rename(ctx, old, name); err != nil {
			resp.Diagnostics.AddError("Unable to rename ZFS dataset "+old, tfhelp.Explain(err))
			return
		}
	}
	if plan.KeyStatus.ValueString() == "available" && state.KeyStatus.ValueString() == "unavailable" {
		var key io.Reader
		if !keyWO.IsNull() {
			key = strings.NewReader(keyWO.ValueString())
		}
		logging.Info(ctx, "loading the encryption key of ZFS dataset", map[string]any{"dataset": name})
		if err := c.LoadKey(ctx, name, key); err != nil {
			resp.Diagnostics.AddError("Unable to load the encryption key of ZFS dataset "+name, explainZFS(err)+
				"\n\nCheck that `encryption.key_wo` (or the file `keylocation` names on the host) holds the dataset's current key.")
			return
		}
		if err := c.MountUnlocked(ctx, name); err != nil {
			resp.Diagnostics.AddError("Unable to mount ZFS dataset "+name, explainZFS(err)+
				"\n\nThe key is loaded; mount the datasets on the host with `zfs mount -a`.")
			return
		}
	}
	want, diags := desiredProps(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	have, _ := desiredProps(ctx, &state)
	changed := map[string]string{}
	for k, v := range want {
		if have[k] != v {
			changed[k] = v
		}
	}
	if plan.Type.ValueString() == "volume" && tfhelp.Known(plan.VolumeSize) && !plan.VolumeSize.Equal(state.VolumeSize) {
		changed["volsize"] = plan.VolumeSize.ValueString()
	}
	// sparse is the volume's refreservation: none, or auto (its full size).
	if plan.Type.ValueString() == "volume" && !plan.Sparse.IsUnknown() && !plan.Sparse.IsNull() && !plan.Sparse.Equal(state.Sparse) {
		changed["refreservation"] = "auto"
		if plan.Sparse.ValueBool() {
			changed["refreservation"] = "none"
		}
	}
	if e, s := plan.Encryption, state.Encryption; e != nil && s != nil && !e.KeyLocation.IsUnknown() && !e.KeyLocation.Equal(s.KeyLocation) && !e.KeyLocation.IsNull() {
		changed["keylocation"] = e.KeyLocation.ValueString()
	}
	if err := c.SetProperties(ctx, name, changed); err != nil {
		keys := make([]string, 0, len(changed))
		for k := range changed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		resp.Diagnostics.AddError("Unable to set properties of ZFS dataset "+name, fmt.Sprintf("Setting %s: %s", strings.Join(keys, ", "), tfhelp.Explain(err)))
		return
	}
	if e, s := plan.Encryption, state.Encryption; e != nil && s != nil && !e.KeyWOVersion.Equal(s.KeyWOVersion) && !keyWO.IsNull() {
		if err := c.ChangeKey(ctx, name, e.Format.ValueString(), bytes.NewReader([]byte(keyWO.ValueString()))); err != nil {
			resp.Diagnostics.AddError("Unable to change the encryption key of ZFS dataset "+name, tfhelp.Explain(err)+
				"\n\nThe key must be loaded (zfs load-key) to be changed.")
			return
		}
		// change-key reads the new key from stdin; point keylocation back at its file.
		if loc := e.KeyLocation.ValueString(); !e.KeyLocation.IsUnknown() && loc != "" && loc != "prompt" {
			if err := c.SetProperties(ctx, name, map[string]string{"keylocation": loc}); err != nil {
				resp.Diagnostics.AddError("Unable to set keylocation of ZFS dataset "+name, tfhelp.Explain(err))
				return
			}
		}
	}
	r.readInto(ctx, c, &plan, name, &resp.Diagnostics, false)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *zfsDatasetResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state zfsDatasetModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, datasetDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, diags := r.data.ZFSClient(state.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	deps, err := c.Dependents(ctx, name)
	if errors.Is(err, zfs.ErrNotFound) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to destroy ZFS dataset "+name, explainZFS(err))
		return
	}
	if len(deps) > 0 && !state.RecursiveDestroy.ValueBool() {
		shown := deps
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(deps)-10))
		}
		resp.Diagnostics.AddError("Unable to destroy ZFS dataset "+name,
			fmt.Sprintf("It has children or snapshots that would be destroyed with it: %s.\n\n"+
				"Destroy them first, or set recursive_destroy = true (and apply) to destroy them all.", strings.Join(shown, ", ")))
		return
	}
	logging.Info(ctx, "destroying ZFS dataset", map[string]any{"dataset": name, "recursive": len(deps) > 0})
	if err := c.DestroyDataset(ctx, name, len(deps) > 0); err != nil && !errors.Is(err, zfs.ErrNotFound) {
		resp.Diagnostics.AddError("Unable to destroy ZFS dataset "+name, tfhelp.Explain(err)+"\n\nA busy dataset (mounted and in use) cannot be destroyed; stop what uses it and try again.")
	}
}

func (r *zfsDatasetResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := connection.ParseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import ZFS dataset "+req.ID, err.Error()+"\n\nExample: terraform import homelab_zfs_dataset.media nas.lan:tank/media")
		return
	}
	m := zfsDatasetModel{SSH: id.SSHForImport(), Name: types.StringValue(id.Name), Properties: types.MapNull(types.StringType),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})}}
	c, _, diags := r.data.ZFSClient(m.SSH)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if gone := r.readInto(ctx, c, &m, id.Name, &resp.Diagnostics, true); gone {
		resp.Diagnostics.AddError("Unable to import ZFS dataset "+id.Name, fmt.Sprintf("%s has no dataset %s.", id.Host, id.Name))
		return
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
