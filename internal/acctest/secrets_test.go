package acctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func resetSweep() {
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	sweep.secrets, sweep.findings, sweep.places = nil, nil, nil
}

func totalFound(place string) int {
	sweep.mu.Lock()
	defer sweep.mu.Unlock()
	n := 0
	for _, c := range sweep.findings[place] {
		n += c
	}
	return n
}

// The state and plan walk: a secret in a non-sensitive attribute is a
// leak; values under a sensitive mark are registered, not reported.
func TestSweepValue(t *testing.T) {
	resetSweep()
	Secret("BMC password", "pw-0123456789")
	v := map[string]any{
		"name":  "node1",
		"notes": "login with pw-0123456789",
		"bmc":   map[string]any{"password": "pw-0123456789"},
		"token": "tok-abcdefghijkl",
		"list":  []any{"x", "the tok-abcdefghijkl"},
	}
	sens := map[string]any{"bmc": map[string]any{"password": true}, "token": true}
	leaks := sweepValue("state", "homelab_node.n1", v, sens)
	if len(leaks) != 2 || !strings.Contains(strings.Join(leaks, ";"), "homelab_node.n1.notes: a BMC password") ||
		!strings.Contains(strings.Join(leaks, ";"), "homelab_node.n1.list[1]: a sensitive value of homelab_node") {
		t.Fatalf("leaks = %q", leaks)
	}
	if strings.Contains(strings.Join(leaks, ";"), "pw-0123") {
		t.Fatal("a finding prints the secret")
	}
	if leaks := sweepValue("state", "homelab_node.n1", v, true); len(leaks) != 0 {
		t.Fatalf("a wholly sensitive value leaked: %q", leaks)
	}
}

// The trace log: the test framework's echo of the configuration is left
// out, a provider line (also a multi-line one) is not.
func TestScanLog(t *testing.T) {
	resetSweep()
	Secret("restic password", "correct-horse-9")
	log := strings.Join([]string{
		"2026-12-07T00:03:19.748Z [TRACE] sdk.helper_resource: Setting Terraform configuration: test_name=TestX",
		"  test_terraform_configuration=",
		"  | password = \"correct-horse-9\"",
		"2026-12-07T00:03:20.001Z [DEBUG] provider.terraform-provider-homelab: running restic: tf_rpc=ReadResource",
		"2026-12-07T00:03:20.002Z [ERROR] provider.terraform-provider-homelab: Response contains error diagnostic: diagnostic_detail=",
		"  | wrong password correct-horse-9",
		"",
	}, "\n")
	p := filepath.Join(t.TempDir(), "trace.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	size, skipped, err := scanLog(p)
	if err != nil || size != int64(len(log)) || skipped == 0 {
		t.Fatalf("size %d skipped %d err %v", size, skipped, err)
	}
	if n := totalFound("trace log"); n != 1 {
		t.Fatalf("found %d occurrences, want 1 (the provider's diagnostic)", n)
	}
}

// Terraform 1.5 marks a schema-sensitive attribute in after_sensitive but
// not in planned_values' sensitive_values: the union of both masks counts.
func TestUnionMarks(t *testing.T) {
	got := unionMarks(map[string]any{}, map[string]any{"password": true, "tags": []any{false, true}})
	m, ok := got.(map[string]any)
	if !ok || m["password"] != true {
		t.Fatalf("union lost a mark: %#v", got)
	}
	if l, ok := m["tags"].([]any); !ok || l[1] != true {
		t.Fatalf("union lost a list mark: %#v", got)
	}
	if unionMarks(true, map[string]any{}) != true || unionMarks(nil, false) != false {
		t.Fatal("a whole-value mark must win, and no marks stay none")
	}
}
