package host_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// localFacts are this machine's facts, read without the provider: every
// testbed sshd runs here, so the data source must report exactly these.
type localFacts struct {
	hostname, kernel, arch string
	cpus, memBytes         int64
}

func readLocalFacts(t *testing.T) localFacts {
	t.Helper()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	str := func(b [65]int8) string {
		var sb strings.Builder
		for _, c := range b {
			if c == 0 {
				break
			}
			sb.WriteByte(byte(c))
		}
		return sb.String()
	}
	f := localFacts{hostname: str(u.Nodename), kernel: str(u.Release), arch: str(u.Machine), cpus: int64(runtime.NumCPU())}
	mem, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	sc := bufio.NewScanner(mem)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			f.memBytes = kb * 1024
		}
	}
	return f
}

func factChecks(addr string, f localFacts, user string) []statecheck.StateCheck {
	at := func(name string, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue(addr, tfjsonpath.New(name), v)
	}
	return []statecheck.StateCheck{
		at("hostname", knownvalue.StringExact(f.hostname)),
		at("kernel", knownvalue.StringExact(f.kernel)),
		at("architecture", knownvalue.StringExact(f.arch)),
		at("cpu_count", knownvalue.Int64Exact(f.cpus)),
		at("memory_bytes", knownvalue.Int64Exact(f.memBytes)),
		at("os_id", knownvalue.StringExact("debian")),
		at("os_version", knownvalue.StringExact("12")),
		at("effective_user", knownvalue.StringExact(user)),
		// No ZFS (the host kernel has no modules) and no RKE2 on the test machine.
		at("zfs_version", knownvalue.Null()),
		at("rke2_version", knownvalue.Null()),
	}
}

func hostConfig(s *testbed.SSHD, extra ...string) string {
	return fmt.Sprintf(`
data "homelab_host" "this" {
  ssh {
    host = %q
    port = %d
    %s
  }
}
`, s.Addr, s.Port, strings.Join(extra, "\n    "))
}

func TestAccHost_factsMatchTheHost(t *testing.T) {
	s := acctest.SharedSSHD(t)
	f := readLocalFacts(t)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: acctest.ProviderSSH(s, "root") + hostConfig(s),
			ConfigStateChecks: append(factChecks("data.homelab_host.this", f, "root"),
				statecheck.ExpectKnownValue("data.homelab_host.this", tfjsonpath.New("id"),
					knownvalue.StringExact(fmt.Sprintf("root@%s", s.HostPort())))),
		}},
	})
}

func TestAccHost_localRunner(t *testing.T) {
	f := readLocalFacts(t)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
data "homelab_host" "this" {
  ssh {
    host  = "nas.lan"
    local = true
  }
}`,
			ExpectError: regexp.MustCompile(`Local execution needs host = "localhost"`),
		}, {
			Config: `
data "homelab_host" "this" {
  ssh {
    host  = "localhost"
    local = true
  }
}`,
			ConfigStateChecks: append(factChecks("data.homelab_host.this", f, "root"),
				statecheck.ExpectKnownValue("data.homelab_host.this", tfjsonpath.New("id"), knownvalue.StringExact("localhost"))),
		}},
	})
}

func TestAccHost_hostKeyMismatch(t *testing.T) {
	s := acctest.SharedSSHD(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	impostor, _ := ssh.NewPublicKey(pub)
	known := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.HostPort())}, impostor) + "\n"
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`(?s)host key mismatch for %s.*%s.*%s`, regexp.QuoteMeta(s.HostPort()),
		regexp.QuoteMeta(ssh.FingerprintSHA256(impostor)), regexp.QuoteMeta(ssh.FingerprintSHA256(s.HostKey)))
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      acctest.ProviderSSH(s, "root") + hostConfig(s, fmt.Sprintf("known_hosts_file = %q", known)),
			ExpectError: regexp.MustCompile(want),
		}, {
			// A pinned host key is checked the same way, and wins over known_hosts.
			Config:      acctest.ProviderSSH(s, "root") + hostConfig(s, fmt.Sprintf("host_key = %q", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(impostor))))),
			ExpectError: regexp.MustCompile(`(?s)host key mismatch for ` + regexp.QuoteMeta(s.HostPort()) + `.*pinned host_key`),
		}, {
			Config:            acctest.ProviderSSH(s, "root") + hostConfig(s, fmt.Sprintf("host_key = %q", s.HostKeyLine)),
			ConfigStateChecks: factChecks("data.homelab_host.this", readLocalFacts(t), "root"),
		}},
	})
}

func TestAccHost_unreachableFailsWithinTimeout(t *testing.T) {
	s := acctest.SharedSSHD(t)
	hole, stop, err := testbed.StartBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	host, port, _ := strings.Cut(hole, ":")
	closed := freePort(t)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			// Accepts TCP but never speaks SSH: only the timeout can end this.
			Config: acctest.ProviderSSH(s, "root") + fmt.Sprintf(`
data "homelab_host" "this" {
  ssh {
    host    = %q
    port    = %s
    timeout = "2s"
  }
}`, host, port),
			ExpectError: regexp.MustCompile(`(?s)Unable to read facts of host root@` + regexp.QuoteMeta(hole) + `.*no answer within the 2s timeout`),
		}, {
			Config: acctest.ProviderSSH(s, "root") + fmt.Sprintf(`
data "homelab_host" "this" {
  ssh {
    host = "127.0.0.1"
    port = %d
  }
}`, closed),
			ExpectError: regexp.MustCompile(`(?s)Unable to read facts of host.*connection refused.*could not be reached`),
		}},
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAccHost_bastion(t *testing.T) {
	bastion := acctest.StartSSHD(t, testbed.SSHDOptions{LogLevel: "DEBUG1"})
	target := acctest.StartSSHD(t, testbed.SSHDOptions{})
	known := filepath.Join(t.TempDir(), "known_hosts")
	var all []byte
	for _, s := range []*testbed.SSHD{bastion, target} {
		b, err := os.ReadFile(s.KnownHostsPath)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if err := os.WriteFile(known, all, 0o600); err != nil {
		t.Fatal(err)
	}
	f := readLocalFacts(t)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "homelab" {
  ssh {
    private_key      = file(%q)
    known_hosts_file = %q
  }
}
data "homelab_host" "this" {
  ssh {
    host = %q
    port = %d
    bastion {
      host        = %q
      port        = %d
      private_key = file(%q)
    }
  }
}`, target.ClientKeyPath, known, target.Addr, target.Port, bastion.Addr, bastion.Port, bastion.ClientKeyPath),
			ConfigStateChecks: factChecks("data.homelab_host.this", f, "root"),
			Check: func(*terraform.State) error {
				log, err := bastion.LogText()
				if err != nil {
					return err
				}
				forwarded := fmt.Sprintf("target %s port %d", target.Addr, target.Port)
				if !strings.Contains(log, forwarded) {
					return fmt.Errorf("the bastion's log shows no forwarding to %s; the connection did not go through it", forwarded)
				}
				if n, _ := target.AcceptedConnections(); n == 0 {
					return fmt.Errorf("the target accepted no connection")
				}
				return nil
			},
		}},
	})
}

func TestAccHost_sudo(t *testing.T) {
	s := acctest.SharedSSHD(t)
	f := readLocalFacts(t)
	cfg := hostConfig(s)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:            acctest.ProviderSSH(s, testbed.SudoUser) + cfg,
			ConfigStateChecks: factChecks("data.homelab_host.this", f, testbed.SudoUser),
		}, {
			Config:            acctest.ProviderSSH(s, testbed.SudoUser, "sudo = true") + cfg,
			ConfigStateChecks: factChecks("data.homelab_host.this", f, "root"),
		}, {
			// No sudo rights: sudo -n fails at once instead of waiting on a prompt.
			Config:      acctest.ProviderSSH(s, testbed.NoSudoUser, "sudo = true") + cfg,
			ExpectError: regexp.MustCompile(`(?s)sudo on homelab-nosudo@.*passwordless sudo`),
		}, {
			// Password authentication, no key.
			Config: fmt.Sprintf(`
provider "homelab" {
  ssh {
    user             = %q
    password         = %q
    known_hosts_file = %q
  }
}`, testbed.NoSudoUser, testbed.NoSudoPassword, s.KnownHostsPath) + cfg,
			ConfigStateChecks: factChecks("data.homelab_host.this", f, testbed.NoSudoUser),
		}},
	})
}

// Provider values often come from resources that do not exist yet. Planning
// must not fail on them; a data source that depends on such a resource is
// read during apply, once the value is known.
func TestAccHost_unknownProviderValuesDoNotFailPlan(t *testing.T) {
	s := acctest.SharedSSHD(t)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
# Not the key: a secret in terraform_data would sit in its non-sensitive
# output (and the secret sweep would rightly object).
resource "terraform_data" "known_hosts" {
  input = %q
}
provider "homelab" {
  ssh {
    private_key      = file(%q)
    known_hosts_file = terraform_data.known_hosts.output
  }
}
data "homelab_host" "this" {
  depends_on = [terraform_data.known_hosts]
  ssh {
    host = %q
    port = %d
  }
}`, s.KnownHostsPath, s.ClientKeyPath, s.Addr, s.Port),
			ConfigStateChecks: factChecks("data.homelab_host.this", readLocalFacts(t), "root"),
		}},
	})
}

// Twenty data sources on one host share one SSH connection per provider
// process. The provider runs as the real plugin binary under OpenTofu, and
// the connections are counted by sshd itself.
func TestAccHost_twentyDataSourcesOneConnection(t *testing.T) {
	acctest.PreCheck(t)
	s := acctest.StartSSHD(t, testbed.SSHDOptions{})
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := testbed.BuildProvider(ctx, filepath.Join(dir, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	cliConfig := filepath.Join(dir, "tofurc")
	if err := testbed.WriteCLIConfig(cliConfig, filepath.Dir(bin)); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	config := `terraform {
  required_providers {
    homelab = { source = "terraform-homelab/homelab" }
  }
}` + acctest.ProviderSSH(s, "root") + fmt.Sprintf(`
data "homelab_host" "h" {
  count = 20
  ssh {
    host = %q
    port = %d
  }
}
output "hostnames" { value = distinct(data.homelab_host.h[*].hostname) }
output "count" { value = length(data.homelab_host.h) }
`, s.Addr, s.Port)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Getenv("TF_ACC_TERRAFORM_PATH"), "apply", "-auto-approve", "-no-color", "-input=false")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tofu apply: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "count = 20") {
		t.Fatalf("expected 20 data sources read, output:\n%s", out)
	}
	n, err := s.AcceptedConnections()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		log, _ := s.LogText()
		t.Fatalf("20 data sources opened %d SSH connections, want exactly 1\nsshd log:\n%s", n, log)
	}
}
