package restic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

var (
	_ resource.Resource                     = (*resticRepoResource)(nil)
	_ resource.ResourceWithConfigure        = (*resticRepoResource)(nil)
	_ resource.ResourceWithConfigValidators = (*resticRepoResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*resticRepoResource)(nil)
)

// Default timeouts of homelab_restic_repo: create may run a check that
// reads part of the data.
const (
	resticRepoCreateTimeout = 30 * time.Minute
	resticRepoUpdateTimeout = 30 * time.Minute
	resticRepoDeleteTimeout = 10 * time.Minute
	resticRepoReadTimeout   = 10 * time.Minute
)

// resticRepoResource is the homelab_restic_repo resource.
type resticRepoResource struct {
	data *connection.Data
}

// NewResticRepo returns the homelab_restic_repo resource.
func NewResticRepo() resource.Resource { return &resticRepoResource{} }

// resticRepoModel is the resource's data.
type resticRepoModel struct {
	accessModel
	PasswordWO        types.String     `tfsdk:"password_wo"`
	PasswordWOVersion types.String     `tfsdk:"password_wo_version"`
	ID                types.String     `tfsdk:"id"`
	RepositoryID      types.String     `tfsdk:"repository_id"`
	RepositoryVersion types.Int64      `tfsdk:"repository_version"`
	ResticVersion     types.String     `tfsdk:"restic_version"`
	SnapshotCount     types.Int64      `tfsdk:"snapshot_count"`
	DestroyData       types.Bool       `tfsdk:"destroy_data"`
	Check             *resticCheckSpec `tfsdk:"check"`
	CheckOnRefresh    types.Bool       `tfsdk:"check_on_refresh"`
	CheckResult       types.String     `tfsdk:"check_result"`
	Timeouts          timeouts.Value   `tfsdk:"timeouts"`
}

// resticCheckSpec is the check block.
type resticCheckSpec struct {
	ReadDataSubset types.String `tfsdk:"read_data_subset"`
}

var readDataSubsetRe = regexp.MustCompile(`^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$`)

func (r *resticRepoResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restic_repo"
}

func (r *resticRepoResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := resticAccessAttributes()
	// Replacement is decided in ModifyPlan: another spelling of the same
	// place is not a change, and a replacement never deletes data.
	attrs["repository"] = schema.StringAttribute{Required: true, Description: repositoryDesc + repositorySpellingsDesc,
		Validators: []validator.String{validators.NoPasswordInRepository()}}
	// Null in state after an import, until the first apply reads them
	// with the password: then known after apply, not null.
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc, PlanModifiers: []planmodifier.String{stringplanmodifier.UseNonNullStateForUnknown()}}
	}
	attrs["id"] = computed("The repository ID.")
	attrs["repository_id"] = computed("The repository ID restic reports (`restic cat config`).")
	attrs["repository_version"] = schema.Int64Attribute{Computed: true, Description: "Repository format version (1 or 2)."}
	attrs["restic_version"] = schema.StringAttribute{Computed: true, Description: "Version of the restic binary that manages the repository."}
	attrs["snapshot_count"] = schema.Int64Attribute{Computed: true,
		Description: "Number of snapshots in the repository when it was last read (listing them takes restic's shared lock, so a repository locked by a running prune is reported as locked)."}
	attrs["destroy_data"] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
		Description: "On destroy, delete the repository's data too: only a local path on the host restic runs on, or an `sftp:` repository (removed through the sftp subsystem with the ssh command restic uses, `sftp.command` included; needs OpenSSH's `sftp` client on that host), after checking it is a restic repository. Other backends are refused. By default destroy only forgets the repository. " +
			"A replacement never deletes data: while the state has `destroy_data = true`, a change of `repository` to another place is refused at plan time; set `destroy_data = false` and apply first, then the old repository is only forgotten."}
	attrs["check_on_refresh"] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
		Description: "Run the `check` on every refresh too, not only on create."}
	attrs["check_result"] = schema.StringAttribute{Computed: true,
		Description: "Result of the last `restic check`: `ok`, or `errors: ...` with restic's summary; null when no check ran."}
	resp.Schema = schema.Schema{
		Description: "A restic repository. Create adopts a repository that already opens with the password and runs `restic init` only when restic reports that none exists; " +
			"a repository that exists with another password is an error, never re-initialized. A repository that this resource has read before and that restic no longer finds " +
			"(an unmounted USB disk or NFS share, a missing bucket) is an error that keeps the state: it is never initialized again by itself; remove it from the state " +
			"(`terraform state rm`) to create a new one there. Destroy forgets it unless `destroy_data` is set.",
		Attributes: attrs,
		Blocks: map[string]schema.Block{
			"ssh": connection.OptionalResourceBlock(sshDesc),
			"check": schema.SingleNestedBlock{
				Description: "Run `restic check` on create (and on refresh with `check_on_refresh`).",
				Attributes: map[string]schema.Attribute{
					"read_data_subset": schema.StringAttribute{Optional: true,
						Description: "Also read this part of the data, restic's `--read-data-subset`: `5%`, `1/10` or a size such as `500M`. Unset: structure only.",
						Validators:  []validator.String{stringvalidator.RegexMatches(readDataSubsetRe, "must be a percentage such as 5%, n/t such as 1/10, or a size such as 500M")}},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, resticRepoCreateTimeout, resticRepoUpdateTimeout, resticRepoDeleteTimeout),
		},
	}
}

func (r *resticRepoResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{resourcevalidator.ExactlyOneOf(
		path.MatchRoot("password"), path.MatchRoot("password_wo"), path.MatchRoot("password_file"))}
}

func (r *resticRepoResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

// writeOnlyProbe is a password that cannot be the repository's: with a
// write-only password, refresh opens the repository with it and takes
// "wrong password" as "it is still there".
func writeOnlyProbe() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "homelab-probe-" + hex.EncodeToString(b)
}

// inspect opens the repository and fills the computed attributes.
func (r *resticRepoResource) inspect(ctx context.Context, c *restic.Client, m *resticRepoModel, runCheck bool) error {
	v, err := c.Version(ctx)
	if err != nil {
		return err
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return err
	}
	m.ResticVersion = types.StringValue(v)
	m.ID, m.RepositoryID = types.StringValue(cfg.ID), types.StringValue(cfg.ID)
	m.RepositoryVersion = types.Int64Value(int64(cfg.Version))
	snaps, err := c.Snapshots(ctx, restic.Filter{})
	if err != nil {
		return err
	}
	m.SnapshotCount = types.Int64Value(int64(len(snaps)))
	if runCheck && m.Check != nil {
		res, err := c.Check(ctx, m.Check.ReadDataSubset.ValueString())
		if err != nil {
			return err
		}
		if res.OK {
			m.CheckResult = types.StringValue("ok")
		} else {
			m.CheckResult = types.StringValue("errors: " + strings.TrimSpace(res.Summary))
		}
	} else if m.Check == nil {
		m.CheckResult = types.StringNull()
	}
	return nil
}

func (r *resticRepoResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, &req.Plan, &req.Config, nil, &resp.State, &resp.Diagnostics)
}

func (r *resticRepoResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var prior resticRepoModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.write(ctx, &req.Plan, &req.Config, &prior, &resp.State, &resp.Diagnostics)
}

// write adopts or initializes the repository (create) or re-opens it with
// the new access settings (update), then stores what restic reports.
func (r *resticRepoResource) write(ctx context.Context, plan tfhelp.PlanGetter, config tfhelp.PlanGetter, prior *resticRepoModel, state tfhelp.StateSetter, diags *diag.Diagnostics) {
	var m, cfg resticRepoModel
	diags.Append(plan.Get(ctx, &m)...)
	diags.Append(config.Get(ctx, &cfg)...)
	if diags.HasError() {
		return
	}
	var d time.Duration
	var td diag.Diagnostics
	action := "create"
	if prior == nil {
		d, td = m.Timeouts.Create(ctx, resticRepoCreateTimeout)
	} else {
		action = "update"
		d, td = m.Timeouts.Update(ctx, resticRepoUpdateTimeout)
	}
	diags.Append(td...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ctx, c, cd := client(ctx, r.data, &m.accessModel, cfg.PasswordWO.ValueString())
	diags.Append(cd...)
	if diags.HasError() {
		return
	}
	repo := m.Repository.ValueString()
	summary := fmt.Sprintf("Unable to %s restic repository %s", action, restic.RedactRepository(repo))
	if prior != nil && !restic.SameLocation(prior.Repository.ValueString(), repo) {
		// ModifyPlan plans a replacement for another place; never reached.
		diags.AddAttributeError(path.Root("repository"), summary, "The repository moved to another place without a replacement; nothing was changed.")
		return
	}
	if prior == nil {
		_, err := c.Config(ctx)
		switch {
		case err == nil:
			logging.Info(ctx, "adopting the existing restic repository: it opens with the given password", map[string]any{"repository": restic.RedactRepository(repo)})
		case errors.Is(err, restic.ErrNotFound):
			logging.Info(ctx, "no repository there: initializing it", map[string]any{"repository": restic.RedactRepository(repo)})
			if _, err := c.Init(ctx); err != nil {
				diags.AddError(summary, explain(err, repo))
				return
			}
		default:
			diags.AddError(summary, explain(err, repo))
			return
		}
	}
	runCheck := prior == nil || (m.Check != nil && (prior.Check == nil || !m.Check.ReadDataSubset.Equal(prior.Check.ReadDataSubset)))
	if !runCheck && prior != nil {
		m.CheckResult = prior.CheckResult
	}
	if err := r.inspect(ctx, c, &m, runCheck); err != nil {
		if prior != nil && errors.Is(err, restic.ErrNotFound) {
			diags.AddError(summary, missingRepository(err, repo, c.Runner.String(), prior.RepositoryID.ValueString()))
			return
		}
		diags.AddError(summary, explain(err, repo))
		return
	}
	// An imported repository has no ID until this first read with the
	// password (import verified that a repository is there).
	if prior != nil && prior.RepositoryID.ValueString() != "" && !m.RepositoryID.Equal(prior.RepositoryID) {
		diags.AddError(summary, fmt.Sprintf("The repository at %s now has ID %s, not %s: it is a different repository. "+
			"Remove it from the state (terraform state rm) and import or create it again if that is intended.", restic.RedactRepository(repo), m.RepositoryID.ValueString(), prior.RepositoryID.ValueString()))
		return
	}
	diags.Append(state.Set(ctx, &m)...)
}

func (r *resticRepoResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m resticRepoModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, resticRepoReadTimeout)
	defer cancel()
	repo := m.Repository.ValueString()
	summary := "Unable to read restic repository " + restic.RedactRepository(repo)
	writeOnly := m.Password.IsNull() && m.PasswordFile.IsNull()
	probe := ""
	if writeOnly {
		probe = writeOnlyProbe()
	}
	ctx, c, diags := client(ctx, r.data, &m.accessModel, probe)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	// missing handles restic's definite "no repository there".
	seen, pd := req.Private.GetKey(ctx, repoSeenKey)
	resp.Diagnostics.Append(pd...)
	missing := func(err error) {
		if id := m.RepositoryID.ValueString(); id != "" || len(seen) > 0 {
			if id == "" {
				id = "(found there by the import, before its ID could be read with the password)"
			}
			resp.Diagnostics.AddError(summary, missingRepository(err, repo, c.Runner.String(), id))
			return
		}
		// Nothing was ever read there (an import of a place that holds no
		// repository): there is nothing to keep.
		logging.Warn(ctx, "no restic repository there and none recorded, removing it from state", map[string]any{"repository": restic.RedactRepository(repo)})
		resp.State.RemoveResource(ctx)
	}
	if writeOnly {
		// Without the password only existence can be read: restic tells
		// "no repository" (gone) from "wrong password" (still there).
		_, err := c.Config(ctx)
		switch {
		case errors.Is(err, restic.ErrNotFound):
			missing(err)
		case err == nil || restic.IsWrongPassword(err):
			if m.RepositoryID.IsNull() && len(seen) == 0 {
				// An import found it: from now on, a repository missing
				// there is an error that keeps state, as for one read with
				// its password.
				resp.Diagnostics.Append(resp.Private.SetKey(ctx, repoSeenKey, []byte(`{"seen":true}`))...)
			}
			resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		default:
			detail := explain(err, repo)
			if m.RepositoryID.IsNull() {
				detail += "\n\nAn import opens the repository with neither its password nor environment, to check that it exists " +
					"(restic's default `restic` on the PATH of the host it runs on). A backend that needs credentials to be reached at all " +
					"(a rest-server with authentication, a bucket) cannot be checked that way: set the credentials in the environment of the " +
					"restic that runs (restic 0.17 and later read RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD), or create the resource with its configuration instead: " +
					"create adopts a repository that opens with the password and never initializes over one."
			}
			resp.Diagnostics.AddError(summary, detail)
		}
		return
	}
	err := r.inspect(ctx, c, &m, m.CheckOnRefresh.ValueBool())
	switch {
	case errors.Is(err, restic.ErrNotFound):
		missing(err)
		return
	case err != nil:
		resp.Diagnostics.AddError(summary, explain(err, repo))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// repoSeenKey is the private state key that records that Read found a
// repository there without its password (after an import), so that a
// repository missing later keeps state like one whose ID was read.
const repoSeenKey = "repository_seen"

// missingRepository explains a repository that was read before (it has the
// recorded ID) and that restic no longer finds.
func missingRepository(err error, repo, host, id string) string {
	return fmt.Sprintf("restic finds no repository at %s (restic runs on %s), but this resource read repository %s there before: it existed and is now missing. "+
		"The state was kept and nothing was initialized.\n\n"+
		"Check what holds it: that the disk or share is mounted (a USB disk, an NFS or SMB mount: an unmounted mountpoint is an empty directory), "+
		"that the path is spelled as before, that the sftp or rest server serves the same directory, that the bucket exists and the credentials reach it. "+
		"Once it is back, the next plan finds it again.\n\n"+
		"If it is really gone and a new, empty repository should be created there, remove this resource from the state (terraform state rm) and apply again.\n\n"+
		"restic said: %v", restic.RedactRepository(repo), host, id, err)
}

// ModifyPlan decides replacement: a change of repository to another place
// replaces the resource (another spelling of the same place is an update
// of the state only), and such a replacement is refused while the state
// has destroy_data = true, because Delete cannot tell a replacement from a
// destroy and would delete the old repository's snapshots.
func (r *resticRepoResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var before, after types.String
	var destroyData types.Bool
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("repository"), &before)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("destroy_data"), &destroyData)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("repository"), &after)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if after.IsUnknown() || !restic.SameLocation(before.ValueString(), after.ValueString()) {
		if destroyData.ValueBool() {
			to := "a value known only after apply"
			if !after.IsUnknown() {
				to = restic.RedactRepository(after.ValueString())
			}
			resp.Diagnostics.AddAttributeError(path.Root("repository"), "Unable to plan restic repository "+restic.RedactRepository(before.ValueString()),
				fmt.Sprintf("Changing repository from %s to %s replaces this resource, and its state has destroy_data = true: "+
					"the replacement would delete every snapshot of the repository at %s. A replacement never deletes data, so nothing was planned.\n\n"+
					"To move to the other repository, first set destroy_data = false and apply, then change repository: the old repository is then only forgotten, its data stays. "+
					"To delete the old repository's data, destroy this resource explicitly while destroy_data = true.",
					restic.RedactRepository(before.ValueString()), to, restic.RedactRepository(before.ValueString())))
			return
		}
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("repository"))
	}
}

func (r *resticRepoResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m resticRepoModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !m.DestroyData.ValueBool() {
		return
	}
	d, diags := m.Timeouts.Delete(ctx, resticRepoDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ctx, c, diags := client(ctx, r.data, &m.accessModel, "")
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	repo := m.Repository.ValueString()
	if err := c.RemoveRepository(ctx); err != nil {
		resp.Diagnostics.AddError("Unable to delete restic repository "+restic.RedactRepository(repo),
			err.Error()+"\n\nOnly a local path on the host restic runs on or an sftp repository is deleted, after checking it is a restic repository. Set destroy_data = false to only forget it.")
	}
}
