// The Terraform side shared by the restic resources and data source: how a
// repository is reached (where restic runs, the repository string and its
// secrets) and how restic's errors are explained.

package restic

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

// Descriptions of the access attributes, shared by every schema flavour.

// accessModel is how a repository is reached.
type accessModel struct {
	Repository   types.String         `tfsdk:"repository"`
	SSH          *connection.SSHModel `tfsdk:"ssh"`
	Password     types.String         `tfsdk:"password"`
	PasswordFile types.String         `tfsdk:"password_file"`
	Environment  types.Map            `tfsdk:"environment"`
	Options      types.Map            `tfsdk:"options"`
	ResticPath   types.String         `tfsdk:"restic_path"`
}

// Repo turns the access model into the restic client's repository; a
// non-empty password overrides the model's (the write-only value).
func (m *accessModel) Repo(ctx context.Context, password string) (restic.Repo, diag.Diagnostics) {
	var diags diag.Diagnostics
	r := restic.Repo{Repository: m.Repository.ValueString(), Password: m.Password.ValueString(),
		PasswordFile: m.PasswordFile.ValueString(), ResticPath: m.ResticPath.ValueString()}
	if password != "" {
		r.Password = password
	}
	if !m.Environment.IsNull() && !m.Environment.IsUnknown() {
		diags.Append(m.Environment.ElementsAs(ctx, &r.Env, false)...)
	}
	if !m.Options.IsNull() && !m.Options.IsUnknown() {
		diags.Append(m.Options.ElementsAs(ctx, &r.Options, false)...)
	}
	return r, diags
}

// client connects to where restic runs and returns a client for the
// repository. Secrets are masked in the provider's logs.
func client(ctx context.Context, d *connection.Data, m *accessModel, password string) (context.Context, *restic.Client, diag.Diagnostics) {
	repo, diags := m.Repo(ctx, password)
	if diags.HasError() {
		return ctx, nil, diags
	}
	runner, _, cd := d.Runner(m.SSH, path.Root("ssh"), connection.LocalWhenNoHost)
	diags.Append(cd...)
	if diags.HasError() {
		return ctx, nil, diags
	}
	ctx = mask(ctx, repo)
	c := &restic.Client{Runner: runner, Repo: repo,
		Logger: func(msg string, fields map[string]any) { logging.Debug(ctx, msg, fields) }}
	return ctx, c, diags
}

// mask hides the repository's secrets from every log line of ctx.
func mask(ctx context.Context, r restic.Repo) context.Context {
	secrets := []string{r.Password}
	for _, v := range r.Env {
		if len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	return connection.MaskSecrets(ctx, secrets...)
}

// explain adds what the user can do to a restic error. The repository is
// quoted with any URL password masked (RedactRepository).
func explain(err error, repository string) string {
	repository = restic.RedactRepository(repository)
	switch {
	case restic.IsWrongPassword(err):
		return fmt.Sprintf("%v\n\nA repository exists at %s but does not open with this password. Nothing was initialized or changed. "+
			"Check the password (or password_file); to manage a different repository, use another location.", err, repository)
	case restic.IsLocked(err):
		return fmt.Sprintf("%v\n\nThe repository is locked by another restic process (a backup, prune or check still running, or a stale lock). "+
			"The state was kept. Wait for it, or run `restic unlock` if the lock is stale.", err)
	case restic.IsUnreachable(err):
		return fmt.Sprintf("%v\n\nThe repository or the host restic runs on could not be reached; nothing was changed and the state was kept.", err)
	}
	return err.Error()
}

// resticAccessAttributes are the attributes that say how a repository is
// reached, shared by the repository and backup resources.
func resticAccessAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		// Each resource sets its own plan behaviour for repository.
		"repository": schema.StringAttribute{Required: true, Description: repositoryDesc,
			Validators: []validator.String{validators.NoPasswordInRepository()}},
		"password": schema.StringAttribute{Optional: true, Sensitive: true, Description: passwordDesc + passwordStoredDesc},
		"password_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
			Description: passwordDesc + passwordWODesc,
			Validators:  []validator.String{stringvalidator.AlsoRequires(path.MatchRoot("password_wo_version"))}},
		"password_wo_version": schema.StringAttribute{Optional: true, Description: passwordWOVersionDesc},
		"password_file":       schema.StringAttribute{Optional: true, Description: passwordFileDesc},
		"environment":         schema.MapAttribute{Optional: true, Sensitive: true, ElementType: types.StringType, Description: environmentDesc},
		"options":             schema.MapAttribute{Optional: true, ElementType: types.StringType, Description: optionsDesc},
		"restic_path":         schema.StringAttribute{Optional: true, Description: resticPathDesc},
	}
}
