package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// workDirName is where the demo configuration is copied and applied, so its
// state stays in .lab/ and never lands in examples/.
const workDirName = "work"

// demo brings the lab up and applies the configuration in dir (default
// examples/lab) against it; apply prints the outputs.
func (l *lab) demo(ctx context.Context, dir string) error {
	if err := l.up(ctx); err != nil {
		return err
	}
	st, err := l.load()
	if err != nil {
		return err
	}
	if dir == "" {
		root, err := testbed.RepoRoot()
		if err != nil {
			return err
		}
		dir = filepath.Join(root, "examples", "lab")
	}
	work := l.path(workDirName)
	if err := copyConfig(dir, work); err != nil {
		return err
	}
	fmt.Printf("\napplying %s against the lab\n", rel(dir))
	if err := tofu(ctx, st, work, "apply", "-auto-approve", "-input=false", "-var-file="+st.TFVars); err != nil {
		return err
	}
	fmt.Printf("\nThe lab stays up: inspect it with `make lab-status`, stop it with `make demo-down`.\n")
	return nil
}

// destroyDemo destroys what the demo created, if it applied anything.
func (l *lab) destroyDemo(ctx context.Context) error {
	st, err := l.load()
	if err != nil || st == nil {
		return err
	}
	work := l.path(workDirName)
	if _, err := os.Stat(filepath.Join(work, "terraform.tfstate")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := tofu(ctx, st, work, "destroy", "-auto-approve", "-input=false", "-var-file="+st.TFVars); err != nil {
		return fmt.Errorf("destroying the demo stack (peers are stopped anyway): %w", err)
	}
	return os.RemoveAll(work)
}

// copyConfig replaces the .tf files of work with those of src, keeping state.
func copyConfig(src, work string) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(work, "*.tf"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	files, err := filepath.Glob(filepath.Join(src, "*.tf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no .tf files in %s", src)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tofu runs the lab's OpenTofu in dir with the lab's CLI configuration.
func tofu(ctx context.Context, st *labState, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, st.Tofu, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+st.CLIConfig, "TF_IN_AUTOMATION=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tofu %s: %w", args[0], err)
	}
	return nil
}

// schema writes the provider's schema as `tofu providers schema -json`
// prints it, keyed by the provider's short name as tfplugindocs looks it up.
func schema(ctx context.Context, out string) error {
	if out == "" {
		return errors.New("schema needs an output file")
	}
	tmp, err := os.MkdirTemp("", "homelab-schema-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tofuPath, err := testbed.EnsureOpenTofu(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "schema: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	plugins := filepath.Join(tmp, "plugins")
	if _, err := testbed.BuildProvider(ctx, plugins); err != nil {
		return err
	}
	st := &labState{Tofu: tofuPath, CLIConfig: filepath.Join(tmp, "tofurc")}
	if err := testbed.WriteCLIConfig(st.CLIConfig, plugins); err != nil {
		return err
	}
	config := fmt.Sprintf("terraform {\n  required_providers {\n    %s = { source = %q }\n  }\n}\n",
		testbed.ProviderType, testbed.ProviderNamespace+"/"+testbed.ProviderType)
	if err := os.WriteFile(filepath.Join(tmp, "main.tf"), []byte(config), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, tofuPath, "providers", "schema", "-json")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+st.CLIConfig, "TF_IN_AUTOMATION=1")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("tofu providers schema -json: %w", err)
	}
	var doc struct {
		FormatVersion   string                     `json:"format_version"`
		ProviderSchemas map[string]json.RawMessage `json:"provider_schemas"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing the schema: %w", err)
	}
	ours, ok := doc.ProviderSchemas[testbed.ProviderSource]
	if !ok {
		keys := make([]string, 0, len(doc.ProviderSchemas))
		for k := range doc.ProviderSchemas {
			keys = append(keys, k)
		}
		return fmt.Errorf("the schema has no %s (it has %s)", testbed.ProviderSource, strings.Join(keys, ", "))
	}
	doc.ProviderSchemas = map[string]json.RawMessage{testbed.ProviderType: ours}
	return writeJSON(out, doc)
}
