// Package acctest is the acceptance-test harness: provider factories, a
// TestMain that prepares OpenTofu (built from source by the testbed, cached
// by version), and the peers that tests in one package share.
//
// Acceptance tests run only with TF_ACC=1. When they run, every peer they
// need is started here; a peer that cannot start fails the test run, it is
// never skipped.
package acctest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// ProtoV6ProviderFactories serves the provider in-process to the CLI.
var ProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	provider.TypeName: providerserver.NewProtocol6WithError(provider.New("acctest")()),
}

// Enabled reports whether acceptance tests were asked for.
func Enabled() bool { return os.Getenv("TF_ACC") != "" }

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run after all tests of the package.
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// cli is the CLI the acceptance tests of this process run (see Main).
var cli testbed.CLI

// CLI is the command line the acceptance tests drive: OpenTofu by default,
// Terraform with HOMELAB_ACC_CLI=terraform.
func CLI() testbed.CLI { return cli }

// RequireWriteOnly marks a test that uses write-only attributes (`_wo`),
// which need a 1.11+ CLI. Such tests are left out of the Terraform 1.5.7
// pass (see the GNUmakefile); run under a CLI without them, the test fails
// and says so, it is never skipped.
func RequireWriteOnly(t *testing.T) {
	t.Helper()
	if Enabled() && !cli.SupportsWriteOnly() {
		t.Fatalf("this test uses write-only attributes, which %s does not support (they need a 1.11+ CLI); "+
			"it belongs to the OpenTofu pass only", cli.Label())
	}
}

// Main is the TestMain of packages with acceptance tests. With TF_ACC set,
// it makes sure the CLI (OpenTofu, or Terraform with
// HOMELAB_ACC_CLI=terraform) is built and points terraform-plugin-testing at
// it, then runs the tests and stops the shared peers.
func Main(m *testing.M) {
	if Enabled() {
		isolateCLIConfig()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		var err error
		cli, err = testbed.EnsureCLI(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "testbed: "+f+"\n", a...) })
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "acceptance tests need %s and it could not be built: %v\n", cli.Label(), err)
			os.Exit(1)
		}
		for _, kv := range cli.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	}
	var stopSweep func()
	if Enabled() {
		stopSweep = startSweep()
	}
	code := m.Run()
	if stopSweep != nil && !finishSweep(stopSweep) && code == 0 {
		code = 1
	}
	cleanupMu.Lock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanupMu.Unlock()
	os.Exit(code)
}

// isolateCLIConfig points OpenTofu at an empty CLI configuration of the
// test run's own, so neither the user's ~/.tofurc nor a TF_CLI_CONFIG_FILE
// naming a missing file changes what the tests do.
func isolateCLIConfig() {
	dir, err := os.MkdirTemp("", "homelab-acc-cli-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a CLI config dir: %v\n", err)
		os.Exit(1)
	}
	p := filepath.Join(dir, "tofurc")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "writing %s: %v\n", p, err)
		os.Exit(1)
	}
	os.Setenv("TF_CLI_CONFIG_FILE", p)
	atExit(func() { _ = os.RemoveAll(dir) })
}

// skipUnlessAcceptance skips an acceptance test before it starts peers when
// TF_ACC is not set, as resource.Test would skip it anyway. With TF_ACC set,
// nothing is ever skipped: a peer that cannot start fails the test.
func skipUnlessAcceptance(t *testing.T) {
	t.Helper()
	if !Enabled() {
		t.Skip("acceptance test: set TF_ACC=1 to run it against real peers")
	}
}

// PreCheck fails the test when acceptance prerequisites are missing.
func PreCheck(t *testing.T) {
	t.Helper()
	skipUnlessAcceptance(t)
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set: run acceptance tests through a TestMain that calls acctest.Main")
	}
}

var shared struct {
	once sync.Once
	sshd *testbed.SSHD
	err  error
}

// SharedSSHD returns the package's shared sshd host, starting it on first use.
// Tests that count connections or break the server start their own with StartSSHD.
func SharedSSHD(t *testing.T) *testbed.SSHD {
	t.Helper()
	skipUnlessAcceptance(t)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "homelab-acc-sshd-")
		if err != nil {
			shared.err = err
			return
		}
		shared.sshd, shared.err = testbed.StartSSHD(context.Background(), dir, testbed.SSHDOptions{})
		if shared.err == nil {
			atExit(func() { _ = shared.sshd.Stop(); _ = os.RemoveAll(dir) })
		}
	})
	if shared.err != nil {
		t.Fatalf("starting the shared sshd: %v", shared.err)
	}
	return shared.sshd
}

// StartSSHD starts an sshd of the test's own, stopped when the test ends.
func StartSSHD(t *testing.T, opts testbed.SSHDOptions) *testbed.SSHD {
	t.Helper()
	skipUnlessAcceptance(t)
	s, err := testbed.StartSSHD(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// ProviderSSH renders a provider block whose ssh defaults log in to s as user
// with the testbed client key and verify its host key through known_hosts.
func ProviderSSH(s *testbed.SSHD, user string, extra ...string) string {
	return fmt.Sprintf(`
provider "homelab" {
  ssh {
    user             = %q
    private_key      = file(%q)
    known_hosts_file = %q
    %s
  }
}
`, user, s.ClientKeyPath, s.KnownHostsPath, strings.Join(extra, "\n    "))
}
