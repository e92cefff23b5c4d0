package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// TerraformVersion is the Terraform release of the acceptance tests'
// Terraform pass: the last one under the MPL, and the newest whose module
// builds from the Go module proxy as it is (newer releases replace nested
// modules with directories their module zip does not contain; see
// DESIGN.md).
const TerraformVersion = "1.5.7"

// terraformModule is the Go module Terraform is built from.
const terraformModule = "github.com/hashicorp/terraform"

// CLIEnv names the environment variable that picks the CLI of the
// acceptance tests: "opentofu" (the default) or "terraform".
const CLIEnv = "HOMELAB_ACC_CLI"

// CLI is a command line that drives the provider: OpenTofu or Terraform.
type CLI struct {
	// Name is "opentofu" or "terraform".
	Name string
	// Version is the release, e.g. "1.12.6".
	Version string
	// Path is the binary.
	Path string
	// RegistryHost is the registry host the CLI resolves the provider under
	// (the host part of its default provider source addresses).
	RegistryHost string
}

// Label names the CLI in messages, e.g. "Terraform 1.5.7".
func (c CLI) Label() string {
	if c.Name == "terraform" {
		return "Terraform " + c.Version
	}
	return "OpenTofu " + c.Version
}

// SupportsWriteOnly reports whether the CLI knows write-only attributes
// (the `_wo` arguments): Terraform and OpenTofu 1.11 and later.
func (c CLI) SupportsWriteOnly() bool {
	var major, minor int
	if _, err := fmt.Sscanf(c.Version, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 1 || (major == 1 && minor >= 11)
}

// Env returns the environment variables that make terraform-plugin-testing
// run acceptance tests with this CLI and address the provider under its
// registry host.
func (c CLI) Env() []string {
	return []string{
		"TF_ACC_TERRAFORM_PATH=" + c.Path,
		"TF_ACC_PROVIDER_HOST=" + c.RegistryHost,
		"TF_ACC_PROVIDER_NAMESPACE=" + ProviderNamespace,
	}
}

// EnsureCLI returns the CLI named by $HOMELAB_ACC_CLI ("opentofu" when
// unset), built and cached like every other peer.
func EnsureCLI(ctx context.Context, logf func(string, ...any)) (CLI, error) {
	switch name := os.Getenv(CLIEnv); name {
	case "", "opentofu", "tofu":
		p, err := EnsureOpenTofu(ctx, logf)
		return CLI{Name: "opentofu", Version: OpenTofuVersion, Path: p, RegistryHost: ProviderHost}, err
	case "terraform":
		p, err := EnsureTerraform(ctx, logf)
		return CLI{Name: "terraform", Version: TerraformVersion, Path: p, RegistryHost: TerraformRegistryHost}, err
	default:
		return CLI{}, fmt.Errorf("%s=%q: want opentofu or terraform", CLIEnv, name)
	}
}

// TerraformRegistryHost is the registry host Terraform resolves providers under.
const TerraformRegistryHost = "registry.terraform.io"

// EnsureTerraform returns the path of a cached `terraform` binary of
// TerraformVersion at <CacheDir>/terraform-<version>/terraform, building it
// from the Go module proxy first (about four minutes on two cores; its
// go.mod has no replace directives, so the wrapper module repeats none).
func EnsureTerraform(ctx context.Context, logf func(string, ...any)) (string, error) {
	return ensureGoBinary(ctx, goBinary{
		label:   "Terraform " + TerraformVersion,
		dirName: "terraform-" + TerraformVersion,
		file:    "terraform",
		pkg:     terraformModule,
		ldflags: "-s -w",
		writeWrapper: func(ctx context.Context, goBin, dir string, _ func(string, ...any)) error {
			return writeModuleWrapper(ctx, goBin, dir, "terraformwrap", terraformModule, TerraformVersion, terraformModule, nil)
		},
		verify: func(ctx context.Context, bin string) error {
			return verifyCLIVersion(ctx, bin, "Terraform v"+TerraformVersion)
		},
	}, logf)
}

// cliVersionTimeout bounds `<cli> version` when verifying a binary.
const cliVersionTimeout = 30 * time.Second

// verifyCLIVersion runs `bin version` and checks that its first line is
// want. The user's CLI configuration is ignored: a broken or missing
// TF_CLI_CONFIG_FILE makes the CLI print diagnostics first.
func verifyCLIVersion(ctx context.Context, bin, want string) error {
	ctx, cancel := context.WithTimeout(ctx, cliVersionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE="+os.DevNull)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s version: %w: %s", bin, err, tail(stderr.Bytes(), maxOutputInError))
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), "\n")
	if strings.TrimSpace(first) != want {
		return fmt.Errorf("%s version printed %q, want %q (stderr: %s)",
			bin, strings.TrimSpace(first), want, tail(stderr.Bytes(), maxOutputInError))
	}
	return nil
}
