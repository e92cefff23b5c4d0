package validators

import (
	"context"
	"fmt"
	"net"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// hostValidator accepts a host name or an IP address.
type hostValidator struct{}

// Host accepts a host name or an IP address, without scheme or port.
func Host() validator.String { return hostValidator{} }

var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

func (hostValidator) Description(context.Context) string {
	return "must be a host name or an IP address"
}
func (v hostValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (hostValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if net.ParseIP(s) != nil || (len(s) <= 253 && hostNameRe.MatchString(s)) {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Invalid address",
		fmt.Sprintf("%q is neither an IP address nor a host name. Give the address only, without scheme or port (the port has its own attribute).", s))
}

// Port accepts a TCP or UDP port number.
func Port() []validator.Int64 { return []validator.Int64{int64validator.Between(1, 65535)} }
