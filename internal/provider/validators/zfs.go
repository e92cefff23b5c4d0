package validators

import (
	"context"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// sizeValidator checks that a value is a size zfs understands.
type sizeValidator struct{}

// Size accepts a size zfs understands, such as 16K, 10G or none.
func Size() validator.String { return sizeValidator{} }

func (sizeValidator) Description(context.Context) string {
	return "must be a size such as 512, 16K, 10G or 1.5T, or none"
}
func (v sizeValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (sizeValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := zfs.ParseSize(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid size", err.Error())
	}
}

var (
	poolNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]*$`)
	diskRe     = regexp.MustCompile(`^/\S+$`)
	draidRe    = regexp.MustCompile(`^draid[123]?(:\d+[dcs])*$`)
)

// PoolName accepts a ZFS pool name.
func PoolName() validator.String {
	return stringvalidator.RegexMatches(poolNameRe, "must start with a letter and hold only letters, digits, _ - . :")
}

// DiskPath accepts an absolute device path.
func DiskPath() validator.String {
	return stringvalidator.RegexMatches(diskRe, "must be an absolute device path such as /dev/disk/by-id/...")
}

// DRAID accepts a dRAID vdev spec such as draid1:2d:1s.
func DRAID() validator.String {
	return stringvalidator.RegexMatches(draidRe, "a dRAID spec such as draid1:2d:1s")
}
