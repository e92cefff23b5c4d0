package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
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
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/pxe"
)

var (
	_ resource.Resource                   = (*nodeResource)(nil)
	_ resource.ResourceWithConfigure      = (*nodeResource)(nil)
	_ resource.ResourceWithImportState    = (*nodeResource)(nil)
	_ resource.ResourceWithValidateConfig = (*nodeResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*nodeResource)(nil)
)

// Default timeouts of homelab_node. Create and update may reprovision the
// machine and wait for it to answer SSH again, which takes as long as an
// operating system install.
const (
	nodeCreateTimeout = 30 * time.Minute
	nodeUpdateTimeout = 30 * time.Minute
	nodeDeleteTimeout = 5 * time.Minute
	// nodeReadTimeout bounds one refresh of a node (BMC and netboot server).
	nodeReadTimeout = 2 * time.Minute
	// defaultWaitForSSH is wait_for_ssh.timeout when not set.
	defaultWaitForSSH = "15m"
)

// nodeResource is the homelab_node resource.
type nodeResource struct {
	data *connection.Data
}

// NewNode returns the homelab_node resource.
func NewNode() resource.Resource { return &nodeResource{} }

// nodeModel is the resource's data.
type nodeModel struct {
	ID                 types.String     `tfsdk:"id"`
	Name               types.String     `tfsdk:"name"`
	Power              types.String     `tfsdk:"power"`
	PowerState         types.String     `tfsdk:"power_state"`
	PowerOffOnDestroy  types.Bool       `tfsdk:"power_off_on_destroy"`
	Reprovision        types.Bool       `tfsdk:"reprovision"`
	ReprovisionTrigger types.String     `tfsdk:"reprovision_trigger"`
	BMCProtocol        types.String     `tfsdk:"bmc_protocol"`
	Vendor             types.String     `tfsdk:"vendor"`
	Model              types.String     `tfsdk:"model"`
	Serial             types.String     `tfsdk:"serial"`
	BMCFirmware        types.String     `tfsdk:"bmc_firmware"`
	PXEFiles           types.Map        `tfsdk:"pxe_files"`
	BMC                *nodeBMCModel    `tfsdk:"bmc"`
	Boot               *nodeBootModel   `tfsdk:"boot"`
	PXE                *nodePXEModel    `tfsdk:"pxe"`
	WaitForSSH         *waitForSSHModel `tfsdk:"wait_for_ssh"`
	Timeouts           timeouts.Value   `tfsdk:"timeouts"`
}

// nodeBMCModel is the bmc block.
type nodeBMCModel struct {
	Address           types.String `tfsdk:"address"`
	Port              types.Int64  `tfsdk:"port"`
	Username          types.String `tfsdk:"username"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.String `tfsdk:"password_wo_version"`
	Protocol          types.String `tfsdk:"protocol"`
	InsecureTLS       types.Bool   `tfsdk:"insecure_tls"`
	Timeout           types.String `tfsdk:"timeout"`
}

// nodeBootModel is the boot block.
type nodeBootModel struct {
	Device     types.String `tfsdk:"device"`
	Persistent types.Bool   `tfsdk:"persistent"`
	EFI        types.Bool   `tfsdk:"efi"`
}

// nodePXEModel is the pxe block.
type nodePXEModel struct {
	MAC         types.String      `tfsdk:"mac"`
	Server      *pxeServerModel   `tfsdk:"server"`
	Root        types.String      `tfsdk:"root"`
	Kernel      types.String      `tfsdk:"kernel"`
	Initrd      types.List        `tfsdk:"initrd"`
	Cmdline     types.String      `tfsdk:"cmdline"`
	IPXEScript  types.String      `tfsdk:"ipxe_script"`
	RaspberryPi *raspberryPiModel `tfsdk:"raspberrypi"`
}

// pxeServerModel is pxe.server: the netboot server the files go to.
type pxeServerModel struct {
	SSH      *connection.SSHModel `tfsdk:"ssh"`
	LocalDir types.String         `tfsdk:"local_dir"`
}

// raspberryPiModel is pxe.raspberrypi.
type raspberryPiModel struct {
	Serial types.String `tfsdk:"serial"`
	Config types.String `tfsdk:"config"`
}

// waitForSSHModel is the wait_for_ssh block.
type waitForSSHModel struct {
	Host    types.String `tfsdk:"host"`
	Port    types.Int64  `tfsdk:"port"`
	Timeout types.String `tfsdk:"timeout"`
}

var (
	nodeNameRe    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)
	bootDevices   = []string{"pxe", "disk", "cdrom", "bios"}
	powerStates   = []string{"on", "off"}
	bmcProtocols  = []string{"auto", "ipmi", "redfish"}
	computedStrPM = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
)

func (r *nodeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_node"
}

func (r *nodeResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	inventory := func(what string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, PlanModifiers: computedStrPM,
			Description: what + " as the BMC reports it; empty when it does not."}
	}
	serverSSH := connection.OptionalResourceBlock("The netboot server, reached over SSH. Unset attributes fall back to the provider's `ssh` block.")
	resp.Schema = schema.Schema{
		Description: "A physical machine: its power and boot device through its BMC (IPMI or Redfish, via bmclib), " +
			"and its network boot configuration on a netboot server (iPXE script and pxelinux file named after its MAC, " +
			"or a Raspberry Pi's TFTP folder). Raspberry Pis have no BMC: `bmc` is optional.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "The node's name."},
			"name": schema.StringAttribute{Required: true, Description: "Name of the node, unique in the configuration (letters, digits, `.`, `_`, `-`). A label: changing it is an in-place update that touches neither the machine nor its netboot files.",
				Validators: []validator.String{stringvalidator.RegexMatches(nodeNameRe, "must be letters, digits, '.', '_' and '-'")}},
			"power": schema.StringAttribute{Optional: true,
				Description: "Desired power state, `on` or `off`. When set, a machine found in the other state (someone powered it off) shows as a change in the plan and apply corrects it. Unset: power is left alone.",
				Validators:  []validator.String{stringvalidator.OneOf(powerStates...)}},
			"power_state": schema.StringAttribute{Computed: true,
				Description: "Power state the BMC reports, `on` or `off` (null without a BMC)."},
			"power_off_on_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Power the machine off when the resource is destroyed. By default destroy leaves it powered as it is."},
			"reprovision": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "When the configured PXE files change (or `reprovision_trigger` does), set a one-shot PXE boot and power-cycle the machine so it boots the new configuration; on create, boot it into its configuration. Needs `bmc` and `pxe`. Files edited or deleted on the netboot server are rewritten without reprovisioning, and a `pxe` block added to a node that had none (e.g. after import) is written without reprovisioning, whatever `reprovision_trigger` says; change `reprovision_trigger` afterwards to reprovision it. The plan warns whenever apply will power-cycle the machine."},
			"reprovision_trigger": schema.StringAttribute{Optional: true,
				Description: "Any string; changing it reprovisions the machine (with `reprovision = true`) even when the PXE files are unchanged, e.g. an image version."},
			"bmc_protocol": schema.StringAttribute{Computed: true, PlanModifiers: computedStrPM,
				Description: "Protocol in use with the BMC, `ipmi` or `redfish` (the result of `protocol = \"auto\"`)."},
			"vendor":       inventory("Manufacturer"),
			"model":        inventory("Model"),
			"serial":       inventory("Serial number"),
			"bmc_firmware": inventory("BMC firmware version"),
			"pxe_files": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				Description: "The node's files on the netboot server, path to `sha256:` of the content, as found there. A file edited or deleted on the server shows as a change in the plan, and apply writes it again (without reprovisioning). A netboot root directory that does not exist (not mounted) is an error that keeps the state."},
		},
		Blocks: map[string]schema.Block{
			"bmc": schema.SingleNestedBlock{
				Description: "The machine's BMC. Unset attributes fall back to the provider's `bmc` block. Omit for machines without one (Raspberry Pis).",
				Attributes: map[string]schema.Attribute{
					"address": schema.StringAttribute{Optional: true, Description: "BMC host name or IP address. Required in the block.",
						Validators: []validator.String{validators.Host()}},
					"port": schema.Int64Attribute{Optional: true, Description: "BMC port: default 623 (IPMI over LAN) or 443 (Redfish).",
						Validators: validators.Port()},
					"username": schema.StringAttribute{Optional: true, Description: "BMC user."},
					"password": schema.StringAttribute{Optional: true, Sensitive: true,
						Description: "BMC password, kept (sensitive) in state so refresh can reach the BMC.",
						Validators: []validator.String{stringvalidator.ConflictsWith(
							path.MatchRelative().AtParent().AtName("password_wo"))}},
					"password_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
						Description: "BMC password, write-only: used during apply and never stored. Refresh then reaches the BMC with the provider's `bmc.password` (which can come from an ephemeral value); without one, refresh cannot read the BMC and keeps the last known power state. Change `password_wo_version` to make apply use a new value.",
						Validators: []validator.String{stringvalidator.AlsoRequires(
							path.MatchRelative().AtParent().AtName("password_wo_version"))}},
					"password_wo_version": schema.StringAttribute{Optional: true,
						Description: "Any string; change it when `password_wo` changes."},
					"protocol": schema.StringAttribute{Optional: true,
						Description: "`auto` (Redfish, then IPMI), `ipmi` or `redfish`. Default: the provider's, else `auto`.",
						Validators:  []validator.String{stringvalidator.OneOf(bmcProtocols...)}},
					"insecure_tls": schema.BoolAttribute{Optional: true,
						Description: "Accept a Redfish BMC's self-signed TLS certificate without verifying it."},
					"timeout": schema.StringAttribute{Optional: true,
						Description: "How long one BMC operation (with its retries) may take, as a Go duration (`30s`, `2m`); a BMC that stops answering fails the refresh or apply with an error that keeps the state. Default: the provider's `bmc.timeout`, else `30s`.",
						Validators:  []validator.String{validators.Duration()}},
				},
			},
			"boot": schema.SingleNestedBlock{
				Description: "Boot device override. A one-shot override (`persistent = false`) is set when it changes and is consumed by the next boot, raising no drift; a persistent one is read back and corrected when it drifts.",
				Attributes: map[string]schema.Attribute{
					"device": schema.StringAttribute{Optional: true, Description: "`pxe`, `disk`, `cdrom` or `bios`. Required in the block.",
						Validators: []validator.String{stringvalidator.OneOf(bootDevices...)}},
					"persistent": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						Description: "Keep the override for every boot instead of the next one only."},
					"efi": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						Description: "Boot in UEFI mode rather than legacy BIOS."},
				},
			},
			"pxe": schema.SingleNestedBlock{
				Description: "Network boot configuration, written atomically onto the netboot server and removed on destroy: " +
					"`<root>/<aa-bb-cc-dd-ee-ff>.ipxe` (for a `boot.ipxe` that chains `${net0/mac:hexhyp}.ipxe`) and `<root>/pxelinux.cfg/01-<aa-bb-cc-dd-ee-ff>`; " +
					"or, for a Raspberry Pi, `<root>/<serial>/cmdline.txt` and `config.txt`.",
				Attributes: map[string]schema.Attribute{
					"mac": schema.StringAttribute{Optional: true, Description: "MAC address the machine PXE-boots from (any common notation). Required except for Raspberry Pis."},
					"root": schema.StringAttribute{Optional: true,
						Description: "Directory the netboot server serves (TFTP/HTTP root), on the SSH server. Required with `server.ssh`; with `server.local_dir` that directory is the root. It must exist: the provider creates directories below it, never the root itself, and reports a missing root (e.g. not mounted) as an error."},
					"kernel": schema.StringAttribute{Optional: true, Description: "Kernel path relative to the root, or an http(s) URL."},
					"initrd": schema.ListAttribute{Optional: true, ElementType: types.StringType,
						Description: "Initrd paths relative to the root, or URLs, in load order.",
						Validators:  []validator.List{listvalidator.SizeAtLeast(1)}},
					"cmdline": schema.StringAttribute{Optional: true,
						Description: "Kernel command line; for a Raspberry Pi, the content of `cmdline.txt`."},
					"ipxe_script": schema.StringAttribute{Optional: true,
						Description: "A complete iPXE script to write as the node's script instead of generating one from `kernel`/`initrd`/`cmdline` (no pxelinux file is written then)."},
				},
				Blocks: map[string]schema.Block{
					"server": schema.SingleNestedBlock{
						Description: "The netboot server: `ssh` to write to a host, or `local_dir` for a directory on the machine running Terraform.",
						Attributes: map[string]schema.Attribute{
							"local_dir": schema.StringAttribute{Optional: true,
								Description: "Absolute directory on the machine running Terraform that the netboot server serves. It must exist (it is never created)."},
						},
						Blocks: map[string]schema.Block{"ssh": serverSSH},
					},
					"raspberrypi": schema.SingleNestedBlock{
						Description: "Raspberry Pi network boot: a TFTP folder named by the Pi's serial holding `cmdline.txt` (from `cmdline`) and `config.txt`.",
						Attributes: map[string]schema.Attribute{
							"serial": schema.StringAttribute{Optional: true, Description: "The Pi's serial number (8 hex digits, as the Pi's bootloader requests its folder). Required in the block."},
							"config": schema.StringAttribute{Optional: true, Description: "Content of `config.txt`."},
						},
					},
				},
			},
			"wait_for_ssh": schema.SingleNestedBlock{
				Description: "After reprovisioning, wait until the machine answers SSH (its server banner) before apply goes on.",
				Attributes: map[string]schema.Attribute{
					"host": schema.StringAttribute{Optional: true, Description: "Address the reinstalled machine answers SSH on. Required in the block.",
						Validators: []validator.String{validators.Host()}},
					"port": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(22), Description: "SSH port. Defaults to 22.",
						Validators: validators.Port()},
					"timeout": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultWaitForSSH),
						Description: "How long to wait, e.g. `20m`. Defaults to " + defaultWaitForSSH + "; also bounded by the create/update timeout.",
						Validators:  []validator.String{validators.Duration()}},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, nodeCreateTimeout, nodeUpdateTimeout, nodeDeleteTimeout),
		},
	}
}

func (r *nodeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig checks what the schema cannot: which blocks go together,
// the MAC and the Pi serial.
func (r *nodeResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m nodeModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	needBMC := func(attr string) {
		resp.Diagnostics.AddAttributeError(path.Root(attr), "Missing bmc block",
			"`"+attr+"` acts through the machine's BMC: add a `bmc { address = ... }` block, or remove `"+attr+"` for machines without one (Raspberry Pis).")
	}
	if m.BMC == nil {
		if !m.Power.IsNull() {
			needBMC("power")
		}
		if m.Boot != nil {
			needBMC("boot")
		}
		if m.Reprovision.ValueBool() {
			needBMC("reprovision")
		}
	} else if m.BMC.Address.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("bmc").AtName("address"), "Missing BMC address", "The `bmc` block needs `address`.")
	}
	if m.Boot != nil && m.Boot.Device.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("boot").AtName("device"), "Missing boot device", "The `boot` block needs `device`: pxe, disk, cdrom or bios.")
	}
	if m.Reprovision.ValueBool() && m.PXE == nil {
		resp.Diagnostics.AddAttributeError(path.Root("reprovision"), "Nothing to reprovision from",
			"`reprovision = true` boots the machine from its PXE configuration: add a `pxe` block.")
	}
	if m.Reprovision.ValueBool() && m.Power.ValueString() == "off" {
		resp.Diagnostics.AddAttributeError(path.Root("power"), "Conflicting power and reprovision",
			"Reprovisioning powers the machine on to boot it from PXE, so `power = \"off\"` cannot hold. Remove `power` or set it to \"on\".")
	}
	if w := m.WaitForSSH; w != nil && w.Host.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("wait_for_ssh").AtName("host"), "Missing host", "`wait_for_ssh` needs `host`.")
	}
	if m.PXE != nil {
		validatePXE(m.PXE, &resp.Diagnostics)
	}
}

func validatePXE(p *nodePXEModel, diags *diag.Diagnostics) {
	at := path.Root("pxe")
	if p.Server == nil || (p.Server.SSH == nil) == p.Server.LocalDir.IsNull() {
		diags.AddAttributeError(at.AtName("server"), "Choose one netboot server",
			"`pxe` needs a `server` block with exactly one of `ssh { host = ... }` and `local_dir`.")
	} else if p.Server.SSH != nil && p.Root.IsNull() {
		diags.AddAttributeError(at.AtName("root"), "Missing netboot root", "With `server.ssh`, `root` names the directory the netboot server serves, e.g. /srv/tftp.")
	} else if !p.Server.LocalDir.IsNull() && !p.Root.IsNull() {
		diags.AddAttributeError(at.AtName("root"), "Conflicting netboot root", "With `server.local_dir`, that directory is the root: remove `root`.")
	}
	layouts := 0
	for _, set := range []bool{!p.Kernel.IsNull(), !p.IPXEScript.IsNull(), p.RaspberryPi != nil} {
		if set {
			layouts++
		}
	}
	if layouts != 1 {
		diags.AddAttributeError(at, "Choose one boot layout",
			"`pxe` needs exactly one of `kernel` (with `initrd` and `cmdline`), `ipxe_script`, or a `raspberrypi` block.")
	}
	if p.RaspberryPi == nil && p.MAC.IsNull() {
		diags.AddAttributeError(at.AtName("mac"), "Missing MAC", "The node's files are named after the MAC it PXE-boots from: set `mac`.")
	}
	if v := p.MAC; !v.IsNull() && !v.IsUnknown() {
		if _, err := pxe.NormalizeMAC(v.ValueString()); err != nil {
			diags.AddAttributeError(at.AtName("mac"), "Invalid MAC address", err.Error())
		}
	}
	if pi := p.RaspberryPi; pi != nil {
		if pi.Serial.IsNull() {
			diags.AddAttributeError(at.AtName("raspberrypi").AtName("serial"), "Missing serial", "The Pi's TFTP folder is named by its serial: set `serial`.")
		} else if !pi.Serial.IsUnknown() {
			if _, err := pxe.NormalizePiSerial(pi.Serial.ValueString()); err != nil {
				diags.AddAttributeError(at.AtName("raspberrypi").AtName("serial"), "Invalid Raspberry Pi serial", err.Error())
			}
		}
	}
}

// pxeConfig turns the pxe block into the renderer's config; ok is false
// while any of it is unknown.
func pxeConfig(ctx context.Context, p *nodePXEModel) (cfg pxe.Config, ok bool, diags diag.Diagnostics) {
	vals := []types.String{p.MAC, p.Root, p.Kernel, p.Cmdline, p.IPXEScript}
	if p.Server != nil {
		vals = append(vals, p.Server.LocalDir)
	}
	if p.RaspberryPi != nil {
		vals = append(vals, p.RaspberryPi.Serial, p.RaspberryPi.Config)
	}
	for _, v := range vals {
		if v.IsUnknown() {
			return cfg, false, nil
		}
	}
	if p.Initrd.IsUnknown() {
		return cfg, false, nil
	}
	cfg = pxe.Config{MAC: p.MAC.ValueString(), Root: p.Root.ValueString(), Kernel: p.Kernel.ValueString(),
		Cmdline: p.Cmdline.ValueString(), IPXEScript: p.IPXEScript.ValueString()}
	if p.Server != nil && !p.Server.LocalDir.IsNull() {
		cfg.Root = p.Server.LocalDir.ValueString()
	}
	if !p.Initrd.IsNull() {
		diags.Append(p.Initrd.ElementsAs(ctx, &cfg.Initrd, false)...)
	}
	if pi := p.RaspberryPi; pi != nil {
		cfg.RaspberryPi = &pxe.RaspberryPi{Serial: pi.Serial.ValueString(), Cmdline: p.Cmdline.ValueString(), Config: pi.Config.ValueString()}
		cfg.Cmdline = ""
	}
	return cfg, true, diags
}

// renderedFiles renders the pxe block; known is false while any of it is unknown.
func renderedFiles(ctx context.Context, p *nodePXEModel) (files []pxe.File, known bool, diags diag.Diagnostics) {
	cfg, ok, diags := pxeConfig(ctx, p)
	if !ok || diags.HasError() {
		return nil, ok, diags
	}
	files, err := pxe.Render(cfg)
	if err != nil {
		diags.AddAttributeError(path.Root("pxe"), "Invalid PXE configuration", err.Error())
	}
	return files, true, diags
}

func filesMap(files map[string]string) types.Map {
	vals := map[string]attr.Value{}
	for p, c := range files {
		vals[p] = types.StringValue(tfhelp.FileHash(c))
	}
	return types.MapValueMust(types.StringType, vals)
}

// ModifyPlan plans the computed values the configuration decides: the
// hashes of the PXE files to be written and the power state asked for,
// and warns when apply will reprovision the machine.
func (r *nodeResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *nodeModel
	if !req.State.Raw.IsNull() {
		state = &nodeModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	switch {
	case plan.PXE == nil:
		plan.PXEFiles = types.MapNull(types.StringType)
	default:
		files, known, diags := renderedFiles(ctx, plan.PXE)
		resp.Diagnostics.Append(diags...)
		if !known || diags.HasError() {
			plan.PXEFiles = types.MapUnknown(types.StringType)
			break
		}
		want := map[string]string{}
		for _, f := range files {
			want[f.Path] = f.Content
		}
		plan.PXEFiles = filesMap(want)
	}
	switch {
	case plan.BMC == nil:
		plan.PowerState = types.StringNull()
	case !plan.Power.IsNull():
		plan.PowerState = plan.Power
	case state != nil && !reprovisionPlanned(ctx, &plan, state):
		plan.PowerState = state.PowerState
	}
	if plan.Name.IsUnknown() {
		plan.ID = types.StringUnknown()
	} else {
		plan.ID = plan.Name
	}
	name := plan.Name.ValueString()
	switch {
	case state == nil && plan.Reprovision.ValueBool() && plan.PXE != nil && plan.BMC != nil:
		// A create, or the replacement of a tainted node (Terraform plans
		// those as creates).
		resp.Diagnostics.AddWarning("Node "+name+" will be provisioned: apply power-cycles it into PXE",
			"reprovision = true: creating this node writes its PXE files, sets a one-shot PXE boot and powers the machine on, or power-cycles it if it is on, so that it boots (and installs) its PXE configuration. "+
				"If this replaces a tainted node whose install may still be running or has succeeded, do not apply: run `terraform untaint` (or `tofu untaint`) on it instead.")
	case state != nil && reprovisionPlanned(ctx, &plan, state):
		resp.Diagnostics.AddWarning("Node "+name+" will be reprovisioned: apply power-cycles it into PXE",
			"Its configured PXE files or reprovision_trigger change and reprovision = true: apply sets a one-shot PXE boot and power-cycles the machine.")
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// reprovisionPlanned reports whether an update reprovisions the machine:
// with reprovision = true, when the configured PXE files or
// reprovision_trigger change. Drift on the netboot server (pxe_files as
// read) does not count. When the configuration is not known yet it
// reports true, so that the plan warns.
func reprovisionPlanned(ctx context.Context, plan, state *nodeModel) bool {
	if plan.BMC == nil {
		return false
	}
	yes, known := reprovisionOnUpdate(ctx, plan, state)
	return yes || !known
}

// reprovisionOnUpdate is the one rule, for ModifyPlan and apply, of when an
// update reprovisions: reprovision = true and, on a node whose prior state
// has a pxe block, a change of the configured PXE files or of
// reprovision_trigger. A node without a pxe block in state (imported, or
// never netbooted by this resource) is running what it runs: its first pxe
// block is written without reprovisioning, whatever reprovision_trigger
// says. known is false while the configuration is not.
func reprovisionOnUpdate(ctx context.Context, plan, prior *nodeModel) (yes, known bool) {
	if !plan.Reprovision.ValueBool() || plan.PXE == nil || prior.PXE == nil {
		return false, true
	}
	changed, known := pxeConfigChanged(ctx, prior.PXE, plan.PXE)
	if !plan.ReprovisionTrigger.IsUnknown() && !plan.ReprovisionTrigger.Equal(prior.ReprovisionTrigger) {
		return true, true
	}
	return changed, known && !plan.ReprovisionTrigger.IsUnknown()
}

// pxeConfigChanged reports whether the files the configuration renders
// differ between the prior pxe block (as last applied, kept in state) and
// the next one. A pxe block added where there was none is not a change: the
// machine was installed some other way (or imported). known is false while
// the next block has unknown values.
func pxeConfigChanged(ctx context.Context, prior, next *nodePXEModel) (changed, known bool) {
	if prior == nil || next == nil {
		return false, true
	}
	nextFiles, ok, d := renderedFiles(ctx, next)
	if !ok || d.HasError() {
		return false, false
	}
	priorFiles, ok, d := renderedFiles(ctx, prior)
	if !ok || d.HasError() {
		return true, true
	}
	toMap := func(files []pxe.File) map[string]string {
		out := map[string]string{}
		for _, f := range files {
			out[f.Path] = f.Content
		}
		return out
	}
	return !filesMap(toMap(priorFiles)).Equal(filesMap(toMap(nextFiles))), true
}

// bmcClient builds the BMC client from the resource's bmc block, the
// provider's defaults and, during apply, the write-only password.
func (r *nodeResource) bmcClient(ctx context.Context, m *nodeModel, passwordWO string) (context.Context, *bmc.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	b := m.BMC
	cfg := r.data.BMCConfig(b.Address.ValueString(), int(b.Port.ValueInt64()), connection.BMCModel{Username: b.Username,
		Password: b.Password, Protocol: b.Protocol, InsecureTLS: b.InsecureTLS, Timeout: b.Timeout})
	if passwordWO != "" {
		cfg.Password = passwordWO
	}
	ctx = connection.MaskSecrets(ctx, cfg.Password)
	cfg.Logger = func(msg string, fields map[string]any) { logging.Debug(ctx, msg, fields) }
	c, err := bmc.New(cfg)
	if err != nil {
		diags.AddAttributeError(path.Root("bmc"), "Unable to configure the BMC of node "+m.Name.ValueString(), err.Error())
	}
	return ctx, c, diags
}

// pxeServer connects to the node's netboot server.
// The server checks that the netboot root exists before reading or
// writing (see pxe.Server.Root).
func (r *nodeResource) pxeServer(p *nodePXEModel) (pxe.Server, diag.Diagnostics) {
	if !p.Server.LocalDir.IsNull() {
		return pxe.Server{Runner: connection.ThisMachine(), Root: p.Server.LocalDir.ValueString()}, nil
	}
	runner, _, diags := r.data.Runner(p.Server.SSH, path.Root("pxe").AtName("server").AtName("ssh"), connection.HostRequired)
	return pxe.Server{Runner: runner, Root: p.Root.ValueString()}, diags
}

// pxeDetail explains a netboot server error with what the user can do.
func pxeDetail(err error) string {
	if errors.Is(err, pxe.ErrRootMissing) {
		return err.Error() + "\n\nThe directory the netboot server serves is not there, so nothing was written and the state was kept. " +
			"Mount it (or fix pxe.root / pxe.server.local_dir), or create it if this is a new netboot server, then plan again."
	}
	return tfhelp.Explain(err)
}

// bmcDetail explains a BMC error with what the user can do.
func bmcDetail(err error) string {
	switch {
	case bmc.IsAuth(err):
		return err.Error() + "\n\nThe BMC refused the username or password. Check `bmc.username` and the password (resource or provider `bmc` block)."
	case bmc.IsUnreachable(err):
		return err.Error() + "\n\nThe BMC did not answer, so nothing was changed and the state was kept. Check that it is powered (BMCs run on standby power) and reachable, and the address, port and protocol."
	}
	return err.Error()
}

// refresh reads the node into m: power, boot override and inventory from
// the BMC, the PXE files from the netboot server. c is nil when the BMC is
// not read (no bmc block, or a write-only password and none in the provider).
func (r *nodeResource) refresh(ctx context.Context, m *nodeModel, c *bmc.Client, diags *diag.Diagnostics) {
	name := m.Name.ValueString()
	m.ID = m.Name
	if c != nil {
		state, err := c.PowerState(ctx)
		if err != nil {
			diags.AddError("Unable to read power state of node "+name, bmcDetail(err))
			return
		}
		m.PowerState = types.StringValue(state)
		if !m.Power.IsNull() {
			m.Power = types.StringValue(state)
		}
		m.BMCProtocol = types.StringValue(c.Protocol())
		if b := m.Boot; b != nil && b.Persistent.ValueBool() {
			o, err := c.BootOverride(ctx)
			if err != nil {
				diags.AddError("Unable to read boot override of node "+name, bmcDetail(err))
				return
			}
			switch {
			case !o.Active || !o.Persistent:
				// The persistent override is gone: show it as a change back.
				b.Device, b.Persistent = types.StringValue(o.Device), types.BoolValue(o.Persistent && o.Active)
			default:
				b.Device, b.EFI = types.StringValue(o.Device), types.BoolValue(o.EFI)
			}
		}
		inv, err := c.Inventory(ctx)
		if err != nil {
			logging.Warn(ctx, "could not read the BMC's inventory", map[string]any{"node": name, "error": err.Error()})
		}
		m.Vendor, m.Model = types.StringValue(inv.Vendor), types.StringValue(inv.Model)
		m.Serial, m.BMCFirmware = types.StringValue(inv.Serial), types.StringValue(inv.BMCFirmware)
	} else if m.BMC == nil {
		m.PowerState, m.BMCProtocol = types.StringNull(), types.StringNull()
		m.Vendor, m.Model, m.Serial, m.BMCFirmware = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	}
	if m.PXE == nil {
		m.PXEFiles = types.MapNull(types.StringType)
		return
	}
	files, known, d := renderedFiles(ctx, m.PXE)
	diags.Append(d...)
	if !known || d.HasError() {
		return
	}
	srv, d := r.pxeServer(m.PXE)
	diags.Append(d...)
	if d.HasError() {
		return
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	got, err := srv.Read(ctx, paths)
	if err != nil {
		diags.AddError("Unable to read PXE files of node "+name, pxeDetail(err))
		return
	}
	m.PXEFiles = filesMap(got)
}

func (r *nodeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, nodeReadTimeout)
	defer cancel()
	var c *bmc.Client
	if m.BMC != nil {
		if !m.BMC.PasswordWOVersion.IsNull() && m.BMC.Password.IsNull() && (r.data == nil || r.data.BMC == nil || r.data.BMC.Password.ValueString() == "") {
			logging.Warn(ctx, "write-only BMC password and none in the provider: the BMC is not read", map[string]any{"node": m.Name.ValueString()})
		} else {
			var d diag.Diagnostics
			ctx, c, d = r.bmcClient(ctx, &m, "")
			resp.Diagnostics.Append(d...)
			if d.HasError() {
				return
			}
			defer func() { _ = c.Close(ctx) }()
		}
	}
	r.refresh(ctx, &m, c, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *nodeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.apply(ctx, req.Config, req.Plan, nil, &resp.State, &resp.Diagnostics)
}

func (r *nodeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var state nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, req.Config, req.Plan, &state, &resp.State, &resp.Diagnostics)
}

// apply makes the machine and the netboot server match the plan, then
// reads them back into state. prior is nil on create.
func (r *nodeResource) apply(ctx context.Context, config tfsdk.Config, plan tfsdk.Plan, prior *nodeModel, state *tfsdk.State, diags *diag.Diagnostics) {
	var m, cfgModel nodeModel
	diags.Append(plan.Get(ctx, &m)...)
	diags.Append(config.Get(ctx, &cfgModel)...)
	if diags.HasError() {
		return
	}
	name := m.Name.ValueString()
	var d time.Duration
	var td diag.Diagnostics
	if prior == nil {
		d, td = m.Timeouts.Create(ctx, nodeCreateTimeout)
	} else {
		d, td = m.Timeouts.Update(ctx, nodeUpdateTimeout)
	}
	diags.Append(td...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	// A create that fails once something exists (files written, the
	// machine powered) saves what it knows, so Terraform taints the node
	// instead of forgetting it and creating (reprovisioning) it again. An
	// update that fails after its power cycle saves the new configuration,
	// so the next apply does not power-cycle the machine again mid-install.
	wrote, cycled, saved := false, false, false
	defer func() {
		if saved || !diags.HasError() {
			return
		}
		if prior == nil && wrote {
			saveFailedApply(ctx, &m, state, diags,
				"The create changed the netboot server or the machine before it failed, so the node is in the state and Terraform marks it tainted. "+
					"Replacing a tainted node runs its create again, which with reprovision = true power-cycles the machine into PXE once more. "+
					"If the machine is still installing, or installed fine, do not apply: run `terraform untaint` (or `tofu untaint`) with this node's address, then plan again.")
		} else if prior != nil && cycled {
			saveFailedApply(ctx, &m, state, diags,
				"The machine was power-cycled into its new PXE configuration before the update failed, so the state holds that configuration and the next apply will not reprovision it again. "+
					"If the install did not succeed, change reprovision_trigger to reprovision it once more.")
		}
	}()

	// 1. The netboot files, so that any boot from here on finds them.
	pxeChanged := false
	if m.PXE != nil {
		files, _, fd := renderedFiles(ctx, m.PXE)
		diags.Append(fd...)
		srv, sd := r.pxeServer(m.PXE)
		diags.Append(sd...)
		if diags.HasError() {
			return
		}
		pxeChanged = prior == nil || !m.PXEFiles.Equal(prior.PXEFiles)
		if pxeChanged {
			if err := srv.Write(ctx, files); err != nil {
				// A failed write may have written some files, unless the
				// root was missing.
				wrote = !errors.Is(err, pxe.ErrRootMissing)
				diags.AddError(fmt.Sprintf("Unable to write PXE files of node %s", name), pxeDetail(err))
				return
			}
			wrote = true
			logging.Info(ctx, "wrote PXE files", map[string]any{"node": name, "files": len(files)})
		}
	}
	if prior != nil && prior.PXE != nil {
		r.removeStale(ctx, prior, &m, diags)
		if diags.HasError() {
			return
		}
	}
	if m.BMC == nil {
		r.refresh(ctx, &m, nil, diags)
		if !diags.HasError() {
			diags.Append(state.Set(ctx, &m)...)
			saved = true
		}
		return
	}

	// 2. The BMC: boot override, then power.
	pw := ""
	if cfgModel.BMC != nil {
		pw = cfgModel.BMC.PasswordWO.ValueString()
	}
	ctx, c, cd := r.bmcClient(ctx, &m, pw)
	diags.Append(cd...)
	if diags.HasError() {
		return
	}
	defer func() { _ = c.Close(ctx) }()
	// Only the configuration reprovisions: files found edited or deleted on
	// the netboot server were rewritten above, and that is all drift gets.
	reprovision := m.Reprovision.ValueBool() && m.PXE != nil
	if reprovision && prior != nil {
		reprovision, _ = reprovisionOnUpdate(ctx, &m, prior)
	}
	if b := m.Boot; b != nil && (prior == nil || prior.Boot == nil || !bootEqual(b, prior.Boot)) {
		wrote = true
		if err := c.SetBootDevice(ctx, b.Device.ValueString(), b.Persistent.ValueBool(), b.EFI.ValueBool()); err != nil {
			diags.AddError(fmt.Sprintf("Unable to set boot device of node %s", name), bmcDetail(err))
			return
		}
		logging.Info(ctx, "set boot device", map[string]any{"node": name, "device": b.Device.ValueString(), "persistent": b.Persistent.ValueBool()})
	}
	if reprovision {
		wrote = true
		var ok bool
		if cycled, ok = r.reprovision(ctx, &m, c, diags); !ok {
			return
		}
	} else if want := m.Power.ValueString(); want != "" {
		wrote = true
		if err := r.setPower(ctx, c, want); err != nil {
			diags.AddError(fmt.Sprintf("Unable to power %s node %s", want, name), bmcDetail(err))
			return
		}
	}

	// 3. Read after write, and make sure the BMC did what it accepted.
	want := m
	r.refresh(ctx, &m, c, diags)
	if diags.HasError() {
		return
	}
	if !m.Power.Equal(want.Power) {
		diags.AddError("Unable to power "+want.Power.ValueString()+" node "+name,
			fmt.Sprintf("The BMC accepted the request but reports the machine %s. Check the BMC's event log; the machine may refuse to power on (e.g. a tripped PSU).", m.PowerState.ValueString()))
		return
	}
	if want.Boot != nil && !bootEqual(m.Boot, want.Boot) {
		diags.AddError("Unable to set boot device of node "+name,
			fmt.Sprintf("The BMC accepted %s (persistent %t, EFI %t) but reports %s (persistent %t, EFI %t).",
				want.Boot.Device.ValueString(), want.Boot.Persistent.ValueBool(), want.Boot.EFI.ValueBool(),
				m.Boot.Device.ValueString(), m.Boot.Persistent.ValueBool(), m.Boot.EFI.ValueBool()))
		return
	}
	diags.Append(state.Set(ctx, &m)...)
	saved = true
}

// saveFailedApply stores a node whose create failed after it changed
// something (netboot files, boot device, power), or whose update failed
// after it power-cycled the machine, as planned, with what is not known left
// null for the next refresh to fill in. Terraform marks a failed create
// tainted: the next plan shows its replacement instead of a fresh create.
// why is the warning's detail.
func saveFailedApply(ctx context.Context, m *nodeModel, state *tfsdk.State, diags *diag.Diagnostics, why string) {
	m.ID = m.Name
	for _, v := range []*types.String{&m.PowerState, &m.BMCProtocol, &m.Vendor, &m.Model, &m.Serial, &m.BMCFirmware} {
		if v.IsUnknown() {
			*v = types.StringNull()
		}
	}
	if m.Power.IsUnknown() {
		m.Power = types.StringNull()
	}
	if m.PXEFiles.IsUnknown() {
		m.PXEFiles = types.MapNull(types.StringType)
	}
	d := state.Set(ctx, m)
	diags.Append(d...)
	if d.HasError() {
		return
	}
	name := m.Name.ValueString()
	logging.Warn(ctx, "apply failed after changing the machine: state saved", map[string]any{"node": name})
	diags.AddWarning("Node "+name+" was saved to state after a failed apply", why)
}

func bootEqual(a, b *nodeBootModel) bool {
	return a.Device.Equal(b.Device) && a.Persistent.Equal(b.Persistent) && a.EFI.Equal(b.EFI)
}

// setPower powers the machine on or off unless it already is.
func (r *nodeResource) setPower(ctx context.Context, c *bmc.Client, want string) error {
	got, err := c.PowerState(ctx)
	if err != nil {
		return err
	}
	if got == want {
		return nil
	}
	logging.Info(ctx, "changing power state", map[string]any{"from": got, "to": want})
	return c.SetPower(ctx, want)
}

// reprovision sets a one-shot PXE boot and (re)starts the machine, then
// optionally waits for it to answer SSH. cycled reports whether the machine
// was (re)started; ok whether everything succeeded.
func (r *nodeResource) reprovision(ctx context.Context, m *nodeModel, c *bmc.Client, diags *diag.Diagnostics) (cycled, ok bool) {
	name := m.Name.ValueString()
	efi := m.Boot != nil && m.Boot.EFI.ValueBool()
	if err := c.SetBootDevice(ctx, "pxe", false, efi); err != nil {
		diags.AddError("Unable to set PXE boot to reprovision node "+name, bmcDetail(err))
		return false, false
	}
	state, err := c.PowerState(ctx)
	if err == nil {
		if state == "on" {
			err = c.SetPower(ctx, "cycle")
		} else {
			err = c.SetPower(ctx, "on")
		}
	}
	if err != nil {
		// Counted as not restarted: the prior state stays, and the next
		// plan shows (and warns about) the reprovision again.
		diags.AddError("Unable to restart node "+name+" to reprovision it", bmcDetail(err))
		return false, false
	}
	logging.Info(ctx, "node restarted into PXE to reprovision it", map[string]any{"node": name, "was": state})
	w := m.WaitForSSH
	if w == nil {
		return true, true
	}
	timeout, _ := time.ParseDuration(w.Timeout.ValueString())
	addr := net.JoinHostPort(w.Host.ValueString(), strconv.FormatInt(w.Port.ValueInt64(), 10))
	if err := waitForSSH(ctx, addr, timeout); err != nil {
		diags.AddError("Unable to reach reprovisioned node "+name+" over SSH",
			err.Error()+"\n\nThe machine was restarted into PXE but did not answer SSH in time. Check its console; raise wait_for_ssh.timeout for slow installs. "+
				"The node is kept in the state with its new configuration (tainted after a create): if the install is still running or succeeded, do not reprovision it again (on a tainted node, `terraform untaint`/`tofu untaint` it instead of applying).")
		return true, false
	}
	return true, true
}

// removeStale removes files the prior configuration wrote that the new one
// no longer owns (another MAC, another layout, another server root).
func (r *nodeResource) removeStale(ctx context.Context, prior, next *nodeModel, diags *diag.Diagnostics) {
	old, known, d := renderedFiles(ctx, prior.PXE)
	if !known || d.HasError() {
		return
	}
	keep := map[string]bool{}
	sameServer := next.PXE != nil && serverEqual(prior.PXE.Server, next.PXE.Server)
	if next.PXE != nil && sameServer {
		files, _, _ := renderedFiles(ctx, next.PXE)
		for _, f := range files {
			keep[f.Path] = true
		}
	}
	var stale []string
	for _, f := range old {
		if !keep[f.Path] {
			stale = append(stale, f.Path)
		}
	}
	if len(stale) == 0 {
		return
	}
	srv, sd := r.pxeServer(prior.PXE)
	diags.Append(sd...)
	if sd.HasError() {
		return
	}
	if err := srv.Remove(ctx, stale); err != nil {
		diags.AddError("Unable to remove old PXE files of node "+next.Name.ValueString(), tfhelp.Explain(err))
	}
}

func serverEqual(a, b *pxeServerModel) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !a.LocalDir.Equal(b.LocalDir) || (a.SSH == nil) != (b.SSH == nil) {
		return false
	}
	return a.SSH == nil || (a.SSH.Host.Equal(b.SSH.Host) && a.SSH.Port.Equal(b.SSH.Port))
}

func (r *nodeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := m.Timeouts.Delete(ctx, nodeDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	name := m.Name.ValueString()
	if m.PXE != nil {
		files, known, fd := renderedFiles(ctx, m.PXE)
		resp.Diagnostics.Append(fd...)
		if known && !fd.HasError() {
			srv, sd := r.pxeServer(m.PXE)
			resp.Diagnostics.Append(sd...)
			if sd.HasError() {
				return
			}
			paths := make([]string, len(files))
			for i, f := range files {
				paths[i] = f.Path
			}
			if err := srv.Remove(ctx, paths); err != nil {
				resp.Diagnostics.AddError("Unable to remove PXE files of node "+name, tfhelp.Explain(err))
				return
			}
		}
	}
	if m.BMC != nil && m.PowerOffOnDestroy.ValueBool() {
		ctx, c, cd := r.bmcClient(ctx, &m, "")
		resp.Diagnostics.Append(cd...)
		if cd.HasError() {
			return
		}
		defer func() { _ = c.Close(ctx) }()
		if err := r.setPower(ctx, c, "off"); err != nil {
			resp.Diagnostics.AddError("Unable to power off node "+name, bmcDetail(err))
		}
	}
}

// ImportState takes "name" (adopted as is: the next plan shows the
// configuration to apply) or "name@bmc-address[:port]", which reads power
// and inventory from the BMC with the provider's bmc credentials.
func (r *nodeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, bmcAddr, hasBMC := strings.Cut(req.ID, "@")
	if !nodeNameRe.MatchString(name) {
		resp.Diagnostics.AddError("Unable to import node "+req.ID, "Expected name or name@bmc-address[:port], e.g. node1@10.0.0.21:623.")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("power_off_on_destroy"), false)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("reprovision"), false)...)
	if !hasBMC {
		return
	}
	host, port := bmcAddr, int64(0)
	if h, p, err := net.SplitHostPort(bmcAddr); err == nil {
		n, perr := strconv.ParseInt(p, 10, 32)
		if perr != nil || n < 1 || n > 65535 {
			resp.Diagnostics.AddError("Unable to import node "+req.ID, "The BMC port must be a number from 1 to 65535.")
			return
		}
		host, port = h, n
	}
	b := nodeBMCModel{Address: types.StringValue(host), Port: types.Int64Null(), Username: types.StringNull(), Password: types.StringNull(),
		PasswordWO: types.StringNull(), PasswordWOVersion: types.StringNull(), Protocol: types.StringNull(), InsecureTLS: types.BoolNull()}
	if port != 0 {
		b.Port = types.Int64Value(port)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("bmc"), b)...)
	// Power is imported as managed so that the first plan compares it.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("power"), "on")...)
}
