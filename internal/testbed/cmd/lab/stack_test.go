package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// The lab stack (examples/lab: every resource type of the provider against
// the lab's real peers) applies, plans empty and destroys under both CLIs
// the provider supports: OpenTofu, and Terraform 1.5.7, the last MPL
// release. Each CLI gets its own state (Terraform 1.5 refuses state written
// by a newer CLI). The lab's peers are started as `make demo` starts them,
// in a directory of the test's own, and stopped at the end.
func TestLabStackBothCLIs(t *testing.T) {
	// It belongs to the Terraform pass of `make test` (test-terraform),
	// which runs after the OpenTofu pass, so that the lab's VM does not
	// boot beside the OpenTofu pass's VMs on a two-core machine.
	if os.Getenv("TF_ACC") == "" || os.Getenv(testbed.CLIEnv) != "terraform" {
		t.Skip("part of the Terraform pass: run with TF_ACC=1 HOMELAB_ACC_CLI=terraform (make test-terraform)")
	}
	ctx := context.Background()
	l := &lab{dir: filepath.Join(t.TempDir(), "lab"), startTimeout: peerStartTimeout}
	t.Cleanup(func() {
		if err := l.down(); err != nil {
			t.Errorf("stopping the lab: %v", err)
		}
	})
	if err := l.up(ctx); err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	st, err := l.load()
	if err != nil || st == nil {
		t.Fatalf("reading the lab's state: %v", err)
	}
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"opentofu", "terraform"} {
		t.Setenv(testbed.CLIEnv, name)
		cli, err := testbed.EnsureCLI(ctx, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		run := *st
		run.Tofu = cli.Path
		work := l.path("work-" + name)
		if err := copyConfig(filepath.Join(root, "examples", "lab"), work); err != nil {
			t.Fatal(err)
		}
		vars := "-var-file=" + st.TFVars
		if err := tofu(ctx, &run, work, "apply", "-auto-approve", "-input=false", vars); err != nil {
			t.Fatalf("%s: %v", cli.Label(), err)
		}
		// The plan after apply changes nothing. Outputs may move on: the
		// lab's hourly backup can run in between and add a snapshot.
		if err := tofu(ctx, &run, work, "plan", "-input=false", "-out=second.plan", vars); err != nil {
			t.Fatalf("%s: %v", cli.Label(), err)
		}
		if changes := plannedChanges(t, &run, work, "second.plan"); len(changes) > 0 {
			t.Errorf("%s: the plan after apply is not empty: %v", cli.Label(), changes)
		}
		if err := tofu(ctx, &run, work, "destroy", "-auto-approve", "-input=false", vars); err != nil {
			t.Fatalf("%s: %v", cli.Label(), err)
		}
	}
}

// plannedChanges lists the resource changes of a saved plan other than
// no-ops and reads, from the CLI's JSON rendering of it.
func plannedChanges(t *testing.T, st *labState, dir, planFile string) []string {
	t.Helper()
	cmd := exec.Command(st.Tofu, "show", "-json", planFile)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+st.CLIConfig, "TF_IN_AUTOMATION=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("show -json %s: %v", planFile, err)
	}
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatalf("parsing the plan: %v", err)
	}
	var changes []string
	for _, rc := range plan.ResourceChanges {
		if a := strings.Join(rc.Change.Actions, ","); a != "no-op" && a != "read" {
			changes = append(changes, rc.Address+": "+a)
		}
	}
	return changes
}
