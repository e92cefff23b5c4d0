// The Terraform side shared by the restic resources and data source: how a
// repository is reached (where restic runs, the repository string and its
// secrets) and how restic's errors are explained.

package restic

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

// Descriptions of the access attributes, shared by every schema flavour.
const (
	RepositoryDesc = "The repository in restic's own syntax: a path, `sftp:user@host:/path`, `rest:http(s)://host/path/`, `s3:...`, `b2:...`. " +
		"It is stored in state and shown in plans in clear text, so a password in the URL is refused: put rest-server credentials in `environment` as `RESTIC_REST_USERNAME` and `RESTIC_REST_PASSWORD` (for restic older than 0.17, which cannot read them, the provider puts them into the URL restic gets in its environment, never into state or the command line)."
	SSHDesc          = "Where restic runs, over SSH. Omit to run restic on the provider's default `ssh.host`, or on the machine running Terraform when the provider names none. Unset attributes fall back to the provider's `ssh` block."
	PasswordDesc     = "Repository password. Passed to restic on its standard input, never on the command line."
	PasswordFileDesc = "A file holding the repository password, on the host where restic runs (restic's `--password-file`)."
	EnvironmentDesc  = "Environment for restic, for backend credentials (`AWS_ACCESS_KEY_ID`, `B2_ACCOUNT_KEY`, ...). Secret: passed on standard input like the password."
	OptionsDesc      = "Extended options, restic's `-o key=value`, e.g. `sftp.command`."
	ResticPathDesc   = "Path of the restic binary on the host where it runs. Defaults to `restic` on the PATH."
)

// AccessModel is how a repository is reached.
type AccessModel struct {
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
func (m *AccessModel) Repo(ctx context.Context, password string) (restic.Repo, diag.Diagnostics) {
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

// Client connects to where restic runs and returns a client for the
// repository. Secrets are masked in the provider's logs.
func Client(ctx context.Context, d *connection.Data, m *AccessModel, password string) (context.Context, *restic.Client, diag.Diagnostics) {
	repo, diags := m.Repo(ctx, password)
	if diags.HasError() {
		return ctx, nil, diags
	}
	runner, _, cd := d.Runner(m.SSH, path.Root("ssh"), connection.LocalWhenNoHost)
	diags.Append(cd...)
	if diags.HasError() {
		return ctx, nil, diags
	}
	ctx = Mask(ctx, repo)
	c := &restic.Client{Runner: runner, Repo: repo,
		Logger: func(msg string, fields map[string]any) { logging.Debug(ctx, msg, fields) }}
	return ctx, c, diags
}

// Mask hides the repository's secrets from every log line of ctx.
func Mask(ctx context.Context, r restic.Repo) context.Context {
	secrets := []string{r.Password}
	for _, v := range r.Env {
		if len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	return connection.MaskSecrets(ctx, secrets...)
}

// Explain adds what the user can do to a restic error. The repository is
// quoted with any URL password masked (RedactRepository).
func Explain(err error, repository string) string {
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
