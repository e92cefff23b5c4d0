package node

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// planNode returns a node with reprovision = true, a BMC and a PXE layout
// whose command line is cmdline, as Terraform would plan it.
func planNode(name, cmdline string) nodeModel {
	nullStr := types.StringNull()
	return nodeModel{
		ID: types.StringUnknown(), Name: types.StringValue(name), Power: nullStr, PowerState: types.StringUnknown(),
		PowerOffOnDestroy: types.BoolValue(false), Reprovision: types.BoolValue(true), ReprovisionTrigger: nullStr,
		BMCProtocol: types.StringUnknown(), Vendor: types.StringUnknown(), Model: types.StringUnknown(),
		Serial: types.StringUnknown(), BMCFirmware: types.StringUnknown(), PXEFiles: types.MapUnknown(types.StringType),
		BMC: &nodeBMCModel{Address: types.StringValue("10.0.0.21"), Port: types.Int64Null(), Username: nullStr, Password: nullStr,
			PasswordWO: nullStr, PasswordWOVersion: nullStr, Protocol: types.StringValue("ipmi"), InsecureTLS: types.BoolNull()},
		PXE: &nodePXEModel{MAC: types.StringValue("52:54:00:00:00:01"), Root: nullStr, Kernel: types.StringValue("vmlinuz"),
			Initrd: types.ListValueMust(types.StringType, []attr.Value{types.StringValue("initrd.img")}), Cmdline: types.StringValue(cmdline),
			IPXEScript: nullStr, Server: &pxeServerModel{LocalDir: types.StringValue("/srv/tftp")}},
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
			"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
	}
}

func withTrigger(m nodeModel, trigger string) nodeModel {
	m.ReprovisionTrigger = types.StringValue(trigger)
	return m
}

// stored is a node as Read leaves it in state after an apply of planned.
func stored(t *testing.T, planned nodeModel) nodeModel {
	t.Helper()
	m := planned
	m.ID, m.PowerState, m.BMCProtocol = m.Name, types.StringValue("on"), types.StringValue("ipmi")
	m.Vendor, m.Model, m.Serial, m.BMCFirmware = types.StringValue(""), types.StringValue(""), types.StringValue(""), types.StringValue("")
	files, _, d := renderedFiles(context.Background(), m.PXE)
	if d.HasError() {
		t.Fatal(d)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = f.Content
	}
	m.PXEFiles = filesMap(got)
	return m
}

// modifyPlan runs the resource's ModifyPlan; state nil is a create.
func modifyPlan(t *testing.T, state *nodeModel, plan nodeModel) (nodeModel, []string) {
	t.Helper()
	ctx := context.Background()
	r := &nodeResource{}
	var sr resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx)
	req := resource.ModifyPlanRequest{
		State: tfsdk.State{Schema: sr.Schema, Raw: tftypes.NewValue(typ, nil)},
		Plan:  tfsdk.Plan{Schema: sr.Schema, Raw: tftypes.NewValue(typ, nil)},
	}
	if state != nil {
		if d := req.State.Set(ctx, state); d.HasError() {
			t.Fatal(d)
		}
	}
	if d := req.Plan.Set(ctx, &plan); d.HasError() {
		t.Fatal(d)
	}
	resp := resource.ModifyPlanResponse{Plan: req.Plan}
	r.ModifyPlan(ctx, req, &resp)
	var warnings []string
	for _, d := range resp.Diagnostics {
		if d.Severity().String() == "Error" {
			t.Fatalf("ModifyPlan: %s: %s", d.Summary(), d.Detail())
		}
		warnings = append(warnings, d.Summary())
	}
	var out nodeModel
	if d := resp.Plan.Get(ctx, &out); d.HasError() {
		t.Fatal(d)
	}
	return out, warnings
}

// The plan warns exactly when apply will power-cycle the machine: on create
// (also the replacement of a tainted node, which Terraform plans as a
// create) and on a change of the configured PXE files; not on a rename, not
// on files drifted on the netboot server, not when a pxe block is added to
// a node that had none (an import).
func TestNodePlanWarnsWhenApplyPowerCycles(t *testing.T) {
	base := stored(t, planNode("node1", "console=ttyS0"))
	drifted := base
	drifted.PXEFiles = filesMap(map[string]string{}) // every file deleted on the server
	imported := base
	imported.PXE, imported.PXEFiles = nil, types.MapNull(types.StringType)
	for _, tc := range []struct {
		name     string
		state    *nodeModel
		plan     nodeModel
		warning  string // "" for none
		wantID   string
		wantSame bool // power_state planned as in state
	}{
		{"create", nil, planNode("node1", "console=ttyS0"), "Node node1 will be provisioned: apply power-cycles it into PXE", "node1", false},
		{"rename", &base, planNode("node2", "console=ttyS0"), "", "node2", true},
		{"files drifted", &drifted, planNode("node1", "console=ttyS0"), "", "node1", true},
		{"pxe added to an imported node", &imported, planNode("node1", "console=ttyS0"), "", "node1", true},
		{"pxe and a trigger added to an imported node", &imported, withTrigger(planNode("node1", "console=ttyS0"), "v1"), "", "node1", true},
		{"trigger changed", &base, withTrigger(planNode("node1", "console=ttyS0"), "v2"), "Node node1 will be reprovisioned: apply power-cycles it into PXE", "node1", false},
		{"cmdline changed", &base, planNode("node1", "console=ttyS0 auto=true"), "Node node1 will be reprovisioned: apply power-cycles it into PXE", "node1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings := modifyPlan(t, tc.state, tc.plan)
			switch {
			case tc.warning == "" && len(warnings) > 0:
				t.Errorf("warnings %q, want none", warnings)
			case tc.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning)):
				t.Errorf("warnings %q, want %q", warnings, tc.warning)
			}
			if got.ID.ValueString() != tc.wantID {
				t.Errorf("planned id %s, want %q", got.ID, tc.wantID)
			}
			if tc.wantSame && !got.PowerState.Equal(tc.state.PowerState) {
				t.Errorf("planned power_state %s, want the state's %s", got.PowerState, tc.state.PowerState)
			}
		})
	}
}
