package restic

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/systemd"
)

var (
	_ resource.Resource                     = (*resticBackupResource)(nil)
	_ resource.ResourceWithConfigure        = (*resticBackupResource)(nil)
	_ resource.ResourceWithConfigValidators = (*resticBackupResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*resticBackupResource)(nil)
)

// Default timeouts of homelab_restic_backup: run_now runs a whole backup.
const (
	resticBackupCreateTimeout = 2 * time.Hour
	resticBackupUpdateTimeout = 2 * time.Hour
	resticBackupDeleteTimeout = 5 * time.Minute
	resticBackupReadTimeout   = 2 * time.Minute
)

// unitPrefix names the systemd units the provider installs.
const unitPrefix = "homelab-restic-"

// resticBackupResource is the homelab_restic_backup resource.
type resticBackupResource struct {
	data *connection.Data
}

// NewResticBackup returns the homelab_restic_backup resource.
func NewResticBackup() resource.Resource { return &resticBackupResource{} }

// resticBackupModel is the resource's data.
type resticBackupModel struct {
	accessModel
	// host is the host the units are on (the ssh block's, or the
	// provider's default), resolved when connecting.
	host              string
	PasswordWO        types.String    `tfsdk:"password_wo"`
	PasswordWOVersion types.String    `tfsdk:"password_wo_version"`
	ID                types.String    `tfsdk:"id"`
	Name              types.String    `tfsdk:"name"`
	Paths             types.List      `tfsdk:"paths"`
	Exclude           types.List      `tfsdk:"exclude"`
	Tags              types.List      `tfsdk:"tags"`
	Schedule          types.String    `tfsdk:"schedule"`
	CheckSchedule     types.String    `tfsdk:"check_schedule"`
	Keep              *resticKeepSpec `tfsdk:"keep"`
	Prune             types.Bool      `tfsdk:"prune"`
	RetryLock         types.String    `tfsdk:"retry_lock"`
	ResticVersion     types.String    `tfsdk:"restic_version"`
	RunNow            types.Bool      `tfsdk:"run_now"`
	UnitName          types.String    `tfsdk:"unit_name"`
	Units             types.Map       `tfsdk:"units"`
	LastRun           types.String    `tfsdk:"last_run"`
	LastResult        types.String    `tfsdk:"last_result"`
	NextRun           types.String    `tfsdk:"next_run"`
	Timeouts          timeouts.Value  `tfsdk:"timeouts"`
}

// resticKeepSpec is the keep block: restic forget's policy.
type resticKeepSpec struct {
	Last    types.Int64  `tfsdk:"last"`
	Hourly  types.Int64  `tfsdk:"hourly"`
	Daily   types.Int64  `tfsdk:"daily"`
	Weekly  types.Int64  `tfsdk:"weekly"`
	Monthly types.Int64  `tfsdk:"monthly"`
	Yearly  types.Int64  `tfsdk:"yearly"`
	Within  types.String `tfsdk:"within"`
}

var (
	backupNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	retryLockRe  = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`)
	withinRe     = regexp.MustCompile(`^(\d+y)?(\d+m)?(\d+d)?(\d+h)?$`)
)

func (r *resticBackupResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restic_backup"
}

func (r *resticBackupResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := resticAccessAttributes()
	// The units can point at another repository in place.
	attrs["repository"] = schema.StringAttribute{Required: true, Description: repositoryDesc + " Typically `homelab_restic_repo.x.repository`."}
	strs := func(desc string, required bool) schema.ListAttribute {
		a := schema.ListAttribute{ElementType: types.StringType, Optional: !required, Required: required, Description: desc,
			Validators: []validator.List{listvalidator.SizeAtLeast(1)}}
		return a
	}
	keep := func(what string) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, Description: "Keep the last n " + what + " snapshots.",
			Validators: []validator.Int64{int64validator.AtLeast(1)}}
	}
	attrs["id"] = schema.StringAttribute{Computed: true, Description: "`host:name`.", PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	attrs["name"] = schema.StringAttribute{Required: true, Description: "Name of the backup job; the units are `" + unitPrefix + "<name>.service` and `.timer`.",
		Validators:    []validator.String{stringvalidator.RegexMatches(backupNameRe, "must be lowercase letters, digits, '.', '_' and '-'")},
		PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}}
	attrs["paths"] = strs("Paths to back up.", true)
	attrs["exclude"] = strs("Exclude patterns, restic's `--exclude`.", false)
	attrs["tags"] = strs("Tags put on every snapshot.", false)
	attrs["schedule"] = schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("daily"),
		Description: "When to back up: a systemd `OnCalendar` expression such as `daily`, `*-*-* 02:30` or `hourly`. Checked with `systemd-analyze calendar` on the host."}
	attrs["check_schedule"] = schema.StringAttribute{Optional: true,
		Description: "When to run `restic check`, as `OnCalendar`; it gets units of its own (`" + unitPrefix + "<name>-check`). Unset: no scheduled check."}
	attrs["prune"] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
		Description: "Prune unreferenced data after applying `keep` (restic `forget --prune`)."}
	attrs["run_now"] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
		Description: "Run one backup during apply when the units are installed or changed, and fail the apply if it fails."}
	attrs["unit_name"] = schema.StringAttribute{Computed: true, Description: "The systemd service that runs the backup.",
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	attrs["units"] = schema.MapAttribute{Computed: true, ElementType: types.StringType,
		Description: "The installed unit files, path to `sha256:` of the content, as found on the host: a unit edited or removed out of band shows as a change in the plan."}
	attrs["last_run"] = schema.StringAttribute{Computed: true, Description: "When the backup last ran (RFC 3339); null if never."}
	attrs["retry_lock"] = schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("10m"),
		Description: "How long each scheduled restic command waits for a lock held by another restic process (a refresh, a backup or prune still running) before it fails: restic's `--retry-lock`, " +
			"a duration such as `30s`, `10m` or `1h`; `0` fails at once. Used when the host's restic supports it (0.16 and later, see `restic_version`); older restic fails at once on a lock."}
	attrs["restic_version"] = schema.StringAttribute{Computed: true,
		Description: "Version of restic (`restic_path`) on the host, read when the units are written and on refresh; it decides whether the units pass `--retry-lock`. A restic upgraded on the host shows as a change of the units."}
	attrs["last_result"] = schema.StringAttribute{Computed: true, Description: "Result of the last run: `success`, `running`, or `failed: RESULT/STATUS: MESSAGE`, where RESULT is systemd's (`exit-code`, `signal`, `timeout`, ...), " +
		"STATUS the exit status of the command that failed (restic 0.17 and later: 1 fatal error, 3 some files could not be read, 10 no repository, 11 locked, 12 wrong password) and MESSAGE restic's error message from that run's journal; null if never."}
	attrs["next_run"] = schema.StringAttribute{Computed: true, Description: "When the timer fires next (RFC 3339)."}
	resp.Schema = schema.Schema{
		Description: "A scheduled restic backup on a host: a systemd service and timer (and a root-only environment file holding the repository password), " +
			"installed, enabled and read back over SSH: refresh and import read every setting back from the installed units (never the password or the values of `environment`, which stay as configured). " +
			"Destroy disables and removes them, never the repository.",
		Attributes: attrs,
		Blocks: map[string]schema.Block{
			"ssh": connection.ResourceBlock(),
			"keep": schema.SingleNestedBlock{
				Description: "Retention: after each backup, `restic forget` with these `--keep-*` options.",
				Attributes: map[string]schema.Attribute{
					"last": keep("n"), "hourly": keep("hourly"), "daily": keep("daily"), "weekly": keep("weekly"),
					"monthly": keep("monthly"), "yearly": keep("yearly"),
					"within": schema.StringAttribute{Optional: true, Description: "Keep every snapshot within this duration of the newest, e.g. `14d` or `1y6m`.",
						Validators: []validator.String{stringvalidator.RegexMatches(withinRe, "must be a restic duration such as 14d, 2y5m7d3h")}},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, resticBackupCreateTimeout, resticBackupUpdateTimeout, resticBackupDeleteTimeout),
		},
	}
}

func (r *resticBackupResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{resourcevalidator.ExactlyOneOf(
		path.MatchRoot("password"), path.MatchRoot("password_wo"), path.MatchRoot("password_file"))}
}

func (r *resticBackupResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

func listStrings(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	var out []string
	if !l.IsNull() && !l.IsUnknown() {
		diags.Append(l.ElementsAs(ctx, &out, false)...)
	}
	return out
}

// units renders the backup's systemd units; password is the write-only
// value during apply ("" otherwise: the environment file is then rendered
// without it and must not be written). known is false while the plan has
// unknown values.
func (m *resticBackupModel) units(ctx context.Context, password string) (main systemd.Unit, check *systemd.Unit, known bool, diags diag.Diagnostics) {
	for _, v := range []attr.Value{m.Repository, m.Paths, m.Exclude, m.Tags, m.Schedule, m.CheckSchedule, m.ResticPath, m.Options,
		m.Environment, m.Password, m.PasswordFile, m.Prune, m.Name, m.RetryLock, m.ResticVersion} {
		if v.IsUnknown() {
			return main, nil, false, nil
		}
	}
	repo, d := m.accessModel.Repo(ctx, password)
	diags.Append(d...)
	bin := repo.ResticPath
	if bin == "" {
		bin = "restic"
	}
	env := map[string]string{"RESTIC_REPOSITORY": repo.Repository}
	for k, v := range repo.Env {
		env[k] = v
	}
	if repo.PasswordFile != "" {
		env["RESTIC_PASSWORD_FILE"] = repo.PasswordFile
	} else {
		env["RESTIC_PASSWORD"] = repo.Password
	}
	var opts []string
	keys := make([]string, 0, len(repo.Options))
	for k := range repo.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, "-o", k+"="+repo.Options[k])
	}
	// Wait for a lock held by another restic (a refresh, another run)
	// instead of failing with exit 11, where the host's restic can.
	if rl := m.RetryLock.ValueString(); rl != "" && rl != "0" && restic.SupportsRetryLock(m.ResticVersion.ValueString()) {
		opts = append(opts, "--retry-lock", rl)
	}
	backup := append([]string{bin, "backup"}, opts...)
	for _, t := range listStrings(ctx, m.Tags, &diags) {
		backup = append(backup, "--tag", t)
	}
	for _, e := range listStrings(ctx, m.Exclude, &diags) {
		backup = append(backup, "--exclude", e)
	}
	backup = append(backup, "--")
	backup = append(backup, listStrings(ctx, m.Paths, &diags)...)
	name := unitPrefix + m.Name.ValueString()
	main = systemd.Unit{Name: name, Description: "restic backup " + m.Name.ValueString() + " (homelab provider)",
		ExecStart: [][]string{backup}, Environment: env, OnCalendar: []string{m.Schedule.ValueString()}}
	if k := m.Keep; k != nil {
		forget := append([]string{bin, "forget"}, opts...)
		for _, p := range []struct {
			flag string
			v    types.Int64
		}{{"--keep-last", k.Last}, {"--keep-hourly", k.Hourly}, {"--keep-daily", k.Daily}, {"--keep-weekly", k.Weekly},
			{"--keep-monthly", k.Monthly}, {"--keep-yearly", k.Yearly}} {
			if !p.v.IsNull() {
				forget = append(forget, p.flag, strconv.FormatInt(p.v.ValueInt64(), 10))
			}
		}
		if !k.Within.IsNull() {
			forget = append(forget, "--keep-within", k.Within.ValueString())
		}
		if m.Prune.ValueBool() {
			forget = append(forget, "--prune")
		}
		main.ExecStart = append(main.ExecStart, forget)
	} else if m.Prune.ValueBool() {
		main.ExecStart = append(main.ExecStart, append([]string{bin, "prune"}, opts...))
	}
	if s := m.CheckSchedule.ValueString(); s != "" {
		check = &systemd.Unit{Name: name + "-check", Description: "restic check " + m.Name.ValueString() + " (homelab provider)",
			ExecStart: [][]string{append([]string{bin, "check"}, opts...)}, Environment: env, OnCalendar: []string{s}}
	}
	return main, check, true, diags
}

// unitHashes hashes the service and timer files of the units (not the
// environment file: it holds the password, which plan may not know).
func unitHashes(units ...*systemd.Unit) (map[string]string, error) {
	out := map[string]string{}
	for _, u := range units {
		if u == nil {
			continue
		}
		f, err := systemd.Render(*u)
		if err != nil {
			return nil, err
		}
		out[u.Name+".service"] = tfhelp.FileHash(f.Service)
		out[u.Name+".timer"] = tfhelp.FileHash(f.Timer)
	}
	return out, nil
}

// ModifyPlan plans the hashes of the unit files to install, so that an
// out-of-band edit (recorded by Read) is a diff.
func (r *resticBackupResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, state resticBackupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	// The units depend on the host's restic version, which Read records:
	// known while restic is the same program on the same host.
	plan.ResticVersion = types.StringUnknown()
	if !req.State.Raw.IsNull() && plan.ResticPath.Equal(state.ResticPath) && sameSSHHost(plan.SSH, state.SSH) {
		plan.ResticVersion = state.ResticVersion
	}
	main, check, known, diags := plan.units(ctx, "")
	resp.Diagnostics.Append(diags...)
	if !known || diags.HasError() {
		plan.Units = types.MapUnknown(types.StringType)
	} else {
		h, err := unitHashes(&main, check)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Invalid backup unit", err.Error())
			return
		}
		plan.Units = tfhelp.StringMap(h)
	}
	if !req.State.Raw.IsNull() {
		if plan.Units.Equal(state.Units) && !plan.RunNow.ValueBool() {
			plan.LastRun, plan.LastResult, plan.NextRun = state.LastRun, state.LastResult, state.NextRun
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// sameSSHHost reports whether two ssh blocks reach the same host and port.
func sameSSHHost(a, b *connection.SSHModel) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Host.Equal(b.Host) && a.Port.Equal(b.Port)
}

func (r *resticBackupResource) manager(m *resticBackupModel) (systemd.Manager, diag.Diagnostics) {
	runner, target, diags := r.data.Runner(m.SSH, path.Root("ssh"), connection.HostRequired)
	m.host = target.Config.Host
	return systemd.Manager{Runner: runner}, diags
}

func rfc3339(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// refresh reads the installed units into m: every setting they hold
// (fromUnits), their hashes and what systemd says of the runs; gone
// reports that the main units are not installed. Units that are not ones
// this resource writes (edited by hand beyond its settings) keep the
// settings of m, and their hashes show the difference; on import (m has
// no paths yet) they are an error.
func (r *resticBackupResource) refresh(ctx context.Context, mgr systemd.Manager, m *resticBackupModel) (gone bool, err error) {
	name := unitPrefix + m.Name.ValueString()
	importing := m.Paths.IsNull()
	st, err := mgr.Read(ctx, name)
	if errors.Is(err, systemd.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	h := map[string]string{name + ".service": tfhelp.FileHash(st.Service), name + ".timer": tfhelp.FileHash(st.Timer)}
	if !st.TimerEnabled {
		h[name+".timer"] = "disabled"
	}
	// The check units are read whether or not the state has a
	// check_schedule: units installed out of band are found too.
	cst, err := mgr.Read(ctx, name+"-check")
	if err != nil && !errors.Is(err, systemd.ErrNotFound) {
		return false, err
	}
	checkInstalled := err == nil
	if checkInstalled {
		h[name+"-check.service"], h[name+"-check.timer"] = tfhelp.FileHash(cst.Service), tfhelp.FileHash(cst.Timer)
	}
	v, err := resticVersion(ctx, mgr, m)
	if err != nil {
		return false, err
	}
	m.ResticVersion = v
	perr := func() error {
		main, err := systemd.Parse(name, systemd.Files{Service: st.Service, Timer: st.Timer, Env: st.Env})
		if err != nil {
			return err
		}
		var check *systemd.Unit
		if checkInstalled {
			c, err := systemd.Parse(name+"-check", systemd.Files{Service: cst.Service, Timer: cst.Timer, Env: cst.Env})
			if err != nil {
				return err
			}
			check = &c
		}
		return m.fromUnits(main, check)
	}()
	if perr != nil {
		if importing {
			return false, fmt.Errorf("the units %s.* on %s cannot be read back: %w. Only units this resource installed (or written the same way) can be imported", name, mgr.Runner.String(), perr)
		}
		logging.Warn(ctx, "the installed units cannot be read back; their hashes show the change", map[string]any{"unit": name, "error": perr.Error()})
	}
	m.ID = types.StringValue(m.host + ":" + m.Name.ValueString())
	m.UnitName = types.StringValue(name + ".service")
	m.Units = tfhelp.StringMap(h)
	m.LastRun, m.NextRun = rfc3339(st.LastRun), rfc3339(st.NextRun)
	m.LastResult = types.StringNull()
	if st.LastResult != "" {
		m.LastResult = types.StringValue(lastResult(st, m.Repository.ValueString()))
	}
	return false, nil
}

// lastResult is systemd's result of the latest run, followed for a failed
// run by restic's error message from that run's output.
func lastResult(st systemd.State, repository string) string {
	if !strings.HasPrefix(st.LastResult, "failed") || st.LastOutput == "" {
		return st.LastResult
	}
	msg := restic.RunFailureMessage(st.LastOutput)
	if repository != "" {
		// restic masks URL passwords itself; this covers other spellings.
		msg = strings.ReplaceAll(msg, repository, restic.RedactRepository(repository))
	}
	return st.LastResult + ": " + msg
}

// resticVersion reads the version of the restic the units run; a restic
// that is not installed gives null (the units are written without
// --retry-lock, and a run fails saying so).
func resticVersion(ctx context.Context, mgr systemd.Manager, m *resticBackupModel) (types.String, error) {
	c := &restic.Client{Runner: mgr.Runner, Repo: restic.Repo{ResticPath: m.ResticPath.ValueString()}}
	v, err := c.Version(ctx)
	switch {
	case restic.IsNotInstalled(err):
		logging.Warn(ctx, "restic is not installed on the host", map[string]any{"restic_path": m.ResticPath.ValueString()})
		return types.StringNull(), nil
	case err != nil:
		return types.StringNull(), fmt.Errorf("reading the restic version: %w", err)
	}
	return types.StringValue(v), nil
}

func (r *resticBackupResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, &req.Plan, &req.Config, nil, &resp.State, &resp.Diagnostics)
}

func (r *resticBackupResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var prior resticBackupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.write(ctx, &req.Plan, &req.Config, &prior, &resp.State, &resp.Diagnostics)
}

func (r *resticBackupResource) write(ctx context.Context, plan, config tfhelp.PlanGetter, prior *resticBackupModel, state tfhelp.StateSetter, diags *diag.Diagnostics) {
	var m, cfg resticBackupModel
	diags.Append(plan.Get(ctx, &m)...)
	diags.Append(config.Get(ctx, &cfg)...)
	if diags.HasError() {
		return
	}
	d, td := m.Timeouts.Create(ctx, resticBackupCreateTimeout)
	action := "create"
	if prior != nil {
		d, td = m.Timeouts.Update(ctx, resticBackupUpdateTimeout)
		action = "update"
	}
	diags.Append(td...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	name := m.Name.ValueString()
	summary := fmt.Sprintf("Unable to %s restic backup %s", action, name)
	mgr, cd := r.manager(&m)
	diags.Append(cd...)
	if diags.HasError() {
		return
	}
	pw := cfg.PasswordWO.ValueString()
	v, err := resticVersion(ctx, mgr, &m)
	if err != nil {
		diags.AddError(summary, tfhelp.Explain(err))
		return
	}
	m.ResticVersion = v
	main, check, _, ud := m.units(ctx, pw)
	diags.Append(ud...)
	if diags.HasError() {
		return
	}
	repo, _ := m.accessModel.Repo(ctx, pw)
	ctx = mask(ctx, repo)
	for attr, spec := range map[string]string{"schedule": m.Schedule.ValueString(), "check_schedule": m.CheckSchedule.ValueString()} {
		if spec == "" {
			continue
		}
		if err := systemd.ValidateCalendar(ctx, mgr.Runner, spec); err != nil {
			diags.AddAttributeError(path.Root(attr), summary, fmt.Sprintf("%q is not a systemd calendar expression on this host: %v", spec, err))
			return
		}
	}
	for _, u := range []*systemd.Unit{&main, check} {
		if u == nil {
			continue
		}
		if err := mgr.Install(ctx, *u); err != nil {
			diags.AddError(summary, tfhelp.Explain(err))
			return
		}
	}
	// Check units without a check_schedule are removed: those of a prior
	// schedule, and on create any left on the host (refresh reads them
	// back, so they would contradict the plan).
	if check == nil && (prior == nil || prior.CheckSchedule.ValueString() != "") {
		if err := mgr.Remove(ctx, unitPrefix+name+"-check"); err != nil {
			diags.AddError(summary, tfhelp.Explain(err))
			return
		}
	}
	logging.Info(ctx, "installed restic backup units", map[string]any{"unit": main.Name})
	if m.RunNow.ValueBool() {
		logging.Info(ctx, "running the backup now", map[string]any{"unit": main.Name})
		if err := mgr.RunNow(ctx, main.Name); err != nil {
			diags.AddError(fmt.Sprintf("Backup %s failed when run during apply", name),
				err.Error()+"\n\nThe units are installed; the state records them. Fix the cause and apply again, or set run_now = false.")
		}
	}
	if _, err := r.refresh(ctx, mgr, &m); err != nil {
		diags.AddError(summary, tfhelp.Explain(err))
		return
	}
	diags.Append(state.Set(ctx, &m)...)
}

func (r *resticBackupResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m resticBackupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, resticBackupReadTimeout)
	defer cancel()
	mgr, diags := r.manager(&m)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	gone, err := r.refresh(ctx, mgr, &m)
	switch {
	case err != nil:
		resp.Diagnostics.AddError("Unable to read restic backup "+m.Name.ValueString(), tfhelp.Explain(err))
	case gone:
		logging.Warn(ctx, "restic backup units are gone, removing them from state", map[string]any{"name": m.Name.ValueString()})
		resp.State.RemoveResource(ctx)
	default:
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	}
}

func (r *resticBackupResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m resticBackupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := m.Timeouts.Delete(ctx, resticBackupDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	mgr, diags := r.manager(&m)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	for _, n := range []string{unitPrefix + m.Name.ValueString() + "-check", unitPrefix + m.Name.ValueString()} {
		if err := mgr.Remove(ctx, n); err != nil {
			resp.Diagnostics.AddError("Unable to remove restic backup "+m.Name.ValueString(), tfhelp.Explain(err))
			return
		}
	}
}
