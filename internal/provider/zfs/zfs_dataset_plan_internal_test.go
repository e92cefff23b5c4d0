package zfs

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// adoptedVolume is a sparse zvol made by hand and imported, as Read leaves
// it in state: volblocksize is the one ZFS chose.
func adoptedVolume() zfsDatasetModel {
	return zfsDatasetModel{
		ID: types.StringValue("123"), Name: types.StringValue("tank/vmdisk"), Type: types.StringValue("volume"),
		VolumeSize: types.StringValue("64M"), VolBlockSize: types.StringValue("16K"), Sparse: types.BoolValue(true),
		Properties: types.MapNull(types.StringType), Mountpoint: types.StringNull(), Quota: types.StringNull(), Reservation: types.StringNull(),
		RecursiveDestroy: types.BoolValue(false), AllowReplace: types.BoolValue(false), GUID: types.StringValue("123"),
		Used: types.Int64Value(1), Available: types.Int64Value(1), Referenced: types.Int64Value(1), Mounted: types.BoolValue(false),
		Creation: types.StringValue("2026-01-01T00:00:00Z"), EncryptionRoot: types.StringNull(), KeyStatus: types.StringNull(),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
	}
}

type datasetPlanResult struct {
	plan     zfsDatasetModel
	replace  []string
	errors   []string // "path: summary: detail"
	warnings []string
}

// modifyDatasetPlan runs homelab_zfs_dataset's ModifyPlan; state nil is a
// create. The configuration is the plan (what Terraform passes when every
// value is known).
func modifyDatasetPlan(t *testing.T, state *zfsDatasetModel, plan zfsDatasetModel) datasetPlanResult {
	t.Helper()
	ctx := context.Background()
	r := &zfsDatasetResource{}
	var sr resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx)
	req := resource.ModifyPlanRequest{
		State:  tfsdk.State{Schema: sr.Schema, Raw: tftypes.NewValue(typ, nil)},
		Plan:   tfsdk.Plan{Schema: sr.Schema, Raw: tftypes.NewValue(typ, nil)},
		Config: tfsdk.Config{Schema: sr.Schema},
	}
	if state != nil {
		if d := req.State.Set(ctx, state); d.HasError() {
			t.Fatal(d)
		}
	}
	if d := req.Plan.Set(ctx, &plan); d.HasError() {
		t.Fatal(d)
	}
	req.Config.Raw = req.Plan.Raw
	resp := resource.ModifyPlanResponse{Plan: req.Plan}
	r.ModifyPlan(ctx, req, &resp)
	var res datasetPlanResult
	for _, p := range resp.RequiresReplace {
		res.replace = append(res.replace, p.String())
	}
	for _, d := range resp.Diagnostics {
		if d.Severity().String() == "Error" {
			where := ""
			if wp, ok := d.(interface{ Path() path.Path }); ok {
				where = wp.Path().String()
			}
			res.errors = append(res.errors, where+": "+d.Summary()+": "+d.Detail())
		} else {
			res.warnings = append(res.warnings, d.Summary())
		}
	}
	if d := resp.Plan.Get(ctx, &res.plan); d.HasError() {
		t.Fatal(d)
	}
	return res
}

// Issue 21: an adopted zvol whose configuration leaves volblocksize out
// plans its real volblocksize (UseStateForUnknown), which is no change; one
// that names a different volblocksize, type or pool is refused at plan time,
// with the attribute named, unless allow_replace is set.
func TestDatasetReplacementIsRefusedWithoutAllowReplace(t *testing.T) {
	state := adoptedVolume()

	same := adoptedVolume()
	same.VolBlockSize = types.StringValue("16384") // the same size, spelled in bytes
	same.Name = types.StringValue("tank/vm-disk")  // a rename within the pool is in place
	same.Sparse = types.BoolValue(false)           // refreservation, changed in place
	if res := modifyDatasetPlan(t, &state, same); len(res.replace) > 0 || len(res.errors) > 0 {
		t.Fatalf("no replacement expected, got replace %v errors %v", res.replace, res.errors)
	}

	cases := []struct {
		attr   string
		change func(*zfsDatasetModel)
		want   string
	}{
		{"volblocksize", func(m *zfsDatasetModel) { m.VolBlockSize = types.StringValue("8K") }, "volblocksize 8K is fixed when the volume is created (it is 16K)"},
		{"type", func(m *zfsDatasetModel) { m.Type = types.StringValue("filesystem") }, "type filesystem is fixed"},
		{"name", func(m *zfsDatasetModel) { m.Name = types.StringValue("backup/vmdisk") }, "moving tank/vmdisk to pool backup"},
	}
	for _, c := range cases {
		plan := adoptedVolume()
		c.change(&plan)
		res := modifyDatasetPlan(t, &state, plan)
		if len(res.replace) > 0 {
			t.Errorf("%s: replacement planned without allow_replace: %v", c.attr, res.replace)
		}
		if len(res.errors) != 1 || !strings.HasPrefix(res.errors[0], c.attr+": Change needs a new ZFS dataset tank/vmdisk") ||
			!strings.Contains(res.errors[0], c.want) || !strings.Contains(res.errors[0], "allow_replace = true") {
			t.Errorf("%s: want one error at %s saying %q, got %q", c.attr, c.attr, c.want, res.errors)
		}

		plan.AllowReplace = types.BoolValue(true)
		res = modifyDatasetPlan(t, &state, plan)
		if len(res.errors) > 0 || len(res.replace) != 1 || res.replace[0] != c.attr {
			t.Errorf("%s with allow_replace: want a replacement on %s, got replace %v errors %v", c.attr, c.attr, res.replace, res.errors)
		}
		if len(res.warnings) != 1 || !strings.Contains(res.warnings[0], "will be destroyed and created again") {
			t.Errorf("%s with allow_replace: want a warning, got %v", c.attr, res.warnings)
		}
	}
}

// A new dataset whose configuration leaves type, volblocksize and sparse
// out plans what ZFS will make: a filesystem, not sparse, no volblocksize.
func TestDatasetCreatePlansZFSDefaults(t *testing.T) {
	plan := adoptedVolume()
	plan.ID, plan.GUID, plan.Creation = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	plan.Name = types.StringValue("tank/media")
	plan.Type, plan.VolumeSize, plan.VolBlockSize, plan.Sparse = types.StringNull(), types.StringNull(), types.StringNull(), types.BoolNull()
	res := modifyDatasetPlan(t, nil, plan)
	if len(res.errors) > 0 {
		t.Fatal(res.errors)
	}
	if res.plan.Type.ValueString() != "filesystem" || !res.plan.VolBlockSize.IsNull() || res.plan.Sparse.IsNull() || res.plan.Sparse.ValueBool() {
		t.Errorf("create plan: type %s volblocksize %s sparse %s", res.plan.Type, res.plan.VolBlockSize, res.plan.Sparse)
	}
}
