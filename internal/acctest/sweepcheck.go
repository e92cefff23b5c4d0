package acctest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
)

// Test is resource.Test with the secret sweep's checks added to every
// step that has a configuration (import and refresh-only steps excepted):
//
//   - the state after the step (NoSecretsInState);
//   - the plan before apply and the plans after it (NoSecretsInPlan), which
//     is what the CLI renders: a value it prints unmasked is a value the
//     plan does not mark sensitive;
//   - the error of a failing step (its text is the CLI's rendered
//     diagnostics), through ErrorCheck, before ExpectError is matched.
//
// Values of sensitive attributes met on the way are registered as secrets,
// so the end-of-run sweep also looks for them in the trace log and argv.
func Test(t *testing.T, tc resource.TestCase) {
	t.Helper()
	resource.Test(t, withSweep(t, tc))
}

func withSweep(t *testing.T, tc resource.TestCase) resource.TestCase {
	steps := make([]resource.TestStep, len(tc.Steps))
	for i, s := range tc.Steps {
		if (s.Config != "" || s.ConfigDirectory != nil || s.ConfigFile != nil) && !s.ImportState && !s.RefreshState {
			s.ConfigStateChecks = append(append([]statecheck.StateCheck(nil), s.ConfigStateChecks...), NoSecretsInState())
			if !s.PlanOnly {
				s.ConfigPlanChecks.PreApply = append(append([]plancheck.PlanCheck(nil), s.ConfigPlanChecks.PreApply...), NoSecretsInPlan())
			}
			s.ConfigPlanChecks.PostApplyPostRefresh = append(append([]plancheck.PlanCheck(nil), s.ConfigPlanChecks.PostApplyPostRefresh...), NoSecretsInPlan())
		}
		steps[i] = s
	}
	tc.Steps = steps
	prev := tc.ErrorCheck
	tc.ErrorCheck = func(err error) error {
		if kinds := scanText("diagnostics", err.Error()); len(kinds) > 0 {
			t.Errorf("secret sweep: the CLI's diagnostics contain a %s", strings.Join(kinds, ", a "))
		}
		if prev != nil {
			return prev(err)
		}
		return err
	}
	return tc
}

// NoSecretsInState fails when a registered secret appears in a value of
// the state that is not marked sensitive (attributes of every resource and
// data source, outputs), and registers every sensitive value it meets.
func NoSecretsInState() statecheck.StateCheck { return stateSweep{} }

type stateSweep struct{}

func (stateSweep) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if req.State == nil || req.State.Values == nil {
		return
	}
	var leaks []string
	visit := func(where string, v any, sens any) {
		leaks = append(leaks, sweepValue("state", where, v, sens)...)
	}
	for name, o := range req.State.Values.Outputs {
		visit("output."+name, o.Value, o.Sensitive)
	}
	walkModules(req.State.Values.RootModule, func(r *tfjson.StateResource) {
		visit(r.Address, r.AttributeValues, rawSensitive(r.SensitiveValues))
	})
	if len(leaks) > 0 {
		resp.Error = fmt.Errorf("secret sweep: non-sensitive state holds a secret: %s", strings.Join(leaks, "; "))
	}
}

// NoSecretsInPlan fails when a registered secret appears in a value of the
// plan that is not marked sensitive (before and after of every resource
// change, planned and prior values, outputs), and registers every
// sensitive value it meets.
func NoSecretsInPlan() plancheck.PlanCheck { return planSweep{} }

type planSweep struct{}

func (planSweep) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	if req.Plan == nil {
		return
	}
	var leaks []string
	visit := func(where string, v any, sens any) {
		leaks = append(leaks, sweepValue("plan", where, v, sens)...)
	}
	for _, rc := range append(append([]*tfjson.ResourceChange(nil), req.Plan.ResourceChanges...), req.Plan.ResourceDrift...) {
		if rc.Change == nil {
			continue
		}
		visit(rc.Address+" (before)", rc.Change.Before, rc.Change.BeforeSensitive)
		visit(rc.Address+" (after)", rc.Change.After, rc.Change.AfterSensitive)
	}
	for name, oc := range req.Plan.OutputChanges {
		visit("output."+name+" (before)", oc.Before, oc.BeforeSensitive)
		visit("output."+name+" (after)", oc.After, oc.AfterSensitive)
	}
	// Terraform 1.5 leaves the provider schema's sensitive attributes out
	// of planned_values' sensitive_values (it marks them in after_sensitive
	// and in its rendered plan), so the resource change's marks count too.
	changeMarks := map[string]any{}
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Change != nil {
			changeMarks[rc.Address] = unionMarks(rc.Change.BeforeSensitive, rc.Change.AfterSensitive)
		}
	}
	for _, sv := range []*tfjson.StateValues{req.Plan.PlannedValues, priorValues(req.Plan)} {
		if sv == nil {
			continue
		}
		for name, o := range sv.Outputs {
			visit("output."+name, o.Value, o.Sensitive)
		}
		walkModules(sv.RootModule, func(r *tfjson.StateResource) {
			visit(r.Address, r.AttributeValues, unionMarks(rawSensitive(r.SensitiveValues), changeMarks[r.Address]))
		})
	}
	if len(leaks) > 0 {
		resp.Error = fmt.Errorf("secret sweep: the plan shows a secret unmasked: %s", strings.Join(leaks, "; "))
	}
}

func priorValues(p *tfjson.Plan) *tfjson.StateValues {
	if p.PriorState == nil {
		return nil
	}
	return p.PriorState.Values
}

func walkModules(m *tfjson.StateModule, f func(*tfjson.StateResource)) {
	if m == nil {
		return
	}
	for _, r := range m.Resources {
		f(r)
	}
	for _, c := range m.ChildModules {
		walkModules(c, f)
	}
}

func rawSensitive(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return true // unreadable mask: treat all as sensitive rather than guess
	}
	return v
}

// sweepValue walks a value next to its sensitivity mask (true, or a
// map/list mirroring the value): strings under a sensitive mark are
// registered as secrets, the others are searched for registered secrets.
// It records and returns the leaks ("<where>.<path>: a <kind>").
func sweepValue(place, where string, v any, sens any) []string {
	searched(place)
	type item struct {
		path string
		v    any
		sens any
	}
	var strs []item
	var walk func(path string, v any, sens any)
	walk = func(path string, v any, sens any) {
		if b, ok := sens.(bool); ok && b {
			collectStrings(v, func(s string) { autoSecret("sensitive value of "+resourceType(where), s) })
			return
		}
		switch x := v.(type) {
		case map[string]any:
			m, _ := sens.(map[string]any)
			for k, c := range x {
				walk(path+"."+k, c, m[k])
			}
		case []any:
			l, _ := sens.([]any)
			for i, c := range x {
				var s any
				if i < len(l) {
					s = l[i]
				}
				walk(path+"["+strconv.Itoa(i)+"]", c, s)
			}
		case string:
			strs = append(strs, item{path, x, nil})
		}
	}
	walk("", v, sens)
	values, kinds := secretsSnapshot()
	var leaks []string
	for _, it := range strs {
		s := it.v.(string)
		for _, sec := range values {
			if strings.Contains(s, sec) {
				found(place, kinds[sec])
				leaks = append(leaks, fmt.Sprintf("%s%s: a %s", where, it.path, kinds[sec]))
			}
		}
	}
	return leaks
}

func collectStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case map[string]any:
		for _, c := range x {
			collectStrings(c, f)
		}
	case []any:
		for _, c := range x {
			collectStrings(c, f)
		}
	}
}

// resourceType is "homelab_node" for "homelab_node.n1 (after)".
func resourceType(address string) string {
	a := address
	for strings.HasPrefix(a, "module.") {
		parts := strings.SplitN(a, ".", 3)
		if len(parts) < 3 {
			break
		}
		a = parts[2]
	}
	if strings.HasPrefix(a, "data.") {
		a = a[len("data."):]
	}
	t, _, _ := strings.Cut(a, ".")
	return t
}

// unionMarks merges two sensitivity masks (true, or a map/list mirroring
// the value): a value is sensitive when either marks it.
func unionMarks(a, b any) any {
	if a == nil || a == false {
		return b
	}
	if b == nil || b == false || a == true {
		return a
	}
	if b == true {
		return b
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return a
		}
		out := map[string]any{}
		for k, v := range av {
			out[k] = v
		}
		for k, v := range bv {
			out[k] = unionMarks(out[k], v)
		}
		return out
	case []any:
		bv, ok := b.([]any)
		if !ok {
			return a
		}
		out := make([]any, max(len(av), len(bv)))
		for i := range out {
			var x, y any
			if i < len(av) {
				x = av[i]
			}
			if i < len(bv) {
				y = bv[i]
			}
			out[i] = unionMarks(x, y)
		}
		return out
	}
	return a
}
