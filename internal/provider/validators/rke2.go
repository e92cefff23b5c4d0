package validators

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// taintValidator checks key=value:Effect.
type taintValidator struct{}

// Taint accepts a Kubernetes taint written key=value:Effect or key:Effect.
func Taint() validator.String { return taintValidator{} }

func (taintValidator) Description(context.Context) string {
	return "must be a taint written key=value:Effect or key:Effect"
}
func (v taintValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (taintValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := kube.ParseTaint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid taint", err.Error())
	}
}

// manifestNamesValidator checks the manifest names (they become file names).
type manifestNamesValidator struct{}

// ManifestNames checks the keys of an RKE2 manifests map: they become file
// names and must not replace RKE2's own manifests.
func ManifestNames() validator.Map { return manifestNamesValidator{} }

func (manifestNamesValidator) Description(context.Context) string {
	return "names must be lowercase letters, digits, '.', '_' and '-', not starting with rke2-"
}
func (v manifestNamesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (manifestNamesValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for k := range req.ConfigValue.Elements() {
		switch {
		case !rke2.ManifestNameRe.MatchString(k):
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), "Invalid manifest name",
				fmt.Sprintf("%q becomes the file name %q: use lowercase letters, digits, '.', '_' and '-'.", k, k+".yaml"))
		case strings.HasPrefix(k, "rke2-"):
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), "Reserved manifest name",
				fmt.Sprintf("%q would replace one of RKE2's own manifests (rke2-*.yaml); choose another name.", k))
		}
	}
}
