package validators

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

// noPasswordInRepository refuses a repository URL that holds a password.
type noPasswordInRepository struct{}

// NoPasswordInRepository refuses a repository URL that holds a password:
// the repository is stored in state and shown in plans in clear text.
func NoPasswordInRepository() validator.String { return noPasswordInRepository{} }

func (noPasswordInRepository) Description(context.Context) string {
	return "must not hold a password; rest-server credentials go in environment"
}

func (v noPasswordInRepository) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (noPasswordInRepository) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	repo := req.ConfigValue.ValueString()
	if restic.RedactRepository(repo) == repo {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Password in the repository URL",
		fmt.Sprintf("The repository %s holds a password, which would be stored in the state and shown in plans in clear text. "+
			"Remove it from the URL and set environment = { RESTIC_REST_USERNAME = ..., RESTIC_REST_PASSWORD = ... } instead "+
			"(the environment is sensitive; it works with every restic version).", restic.RedactRepository(repo)))
}
