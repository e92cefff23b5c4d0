package restic

import (
	"context"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/systemd"
)

func backupModel(version types.String, retryLock string) resticBackupModel {
	return resticBackupModel{
		accessModel: accessModel{
			Repository: types.StringValue("/srv/restic"), Password: types.StringValue("pw"), PasswordFile: types.StringNull(),
			Environment: types.MapNull(types.StringType), Options: types.MapNull(types.StringType), ResticPath: types.StringValue("/usr/bin/restic"),
		},
		Name:          types.StringValue("media"),
		Paths:         types.ListValueMust(types.StringType, []attr.Value{types.StringValue("/srv/media")}),
		Exclude:       types.ListNull(types.StringType),
		Tags:          types.ListNull(types.StringType),
		Schedule:      types.StringValue("daily"),
		CheckSchedule: types.StringValue("weekly"),
		Keep:          &resticKeepSpec{Last: types.Int64Value(3), Hourly: types.Int64Null(), Daily: types.Int64Null(), Weekly: types.Int64Null(), Monthly: types.Int64Null(), Yearly: types.Int64Null(), Within: types.StringNull()},
		Prune:         types.BoolValue(true),
		RetryLock:     types.StringValue(retryLock),
		ResticVersion: version,
	}
}

// Every scheduled restic command waits for locks where the host's restic
// can (0.16+), and none passes an option an older restic would refuse.
func TestBackupUnitsRetryLock(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		version   types.String
		retryLock string
		want      bool
	}{
		{types.StringValue("0.18.1"), "10m", true},
		{types.StringValue("0.16.0"), "2h", true},
		{types.StringValue("0.14.0"), "10m", false},
		{types.StringNull(), "10m", false},
		{types.StringValue("0.18.1"), "0", false},
	} {
		m := backupModel(tc.version, tc.retryLock)
		main, check, known, diags := m.units(ctx, "")
		if diags.HasError() || !known || check == nil {
			t.Fatalf("%v: known %v, %v", tc.version, known, diags)
		}
		for _, argv := range append(slices.Clone(main.ExecStart), check.ExecStart...) {
			i := slices.Index(argv, "--retry-lock")
			if got := i > 0 && i+1 < len(argv) && argv[i+1] == tc.retryLock; got != tc.want {
				t.Errorf("restic %v, retry_lock %s: %q", tc.version, tc.retryLock, argv)
			}
		}
		if _, err := systemd.Render(main); err != nil {
			t.Fatal(err)
		}
	}
	// The version is unknown at plan time on create: so are the units.
	m := backupModel(types.StringUnknown(), "10m")
	if _, _, known, _ := m.units(ctx, ""); known {
		t.Fatal("units known without the host's restic version")
	}
}
