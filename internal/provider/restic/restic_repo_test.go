package restic_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// resticBinaries is the test matrix: the current restic and Debian 12's.
func resticBinaries(t *testing.T) map[string]string {
	t.Helper()
	acctest.PreCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	current, err := testbed.EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatalf("building restic %s: %v", testbed.ResticVersion, err)
	}
	debian, err := testbed.DebianRestic()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{testbed.ResticVersion: current, "debian": debian}
}

// repoID opens a repository directly with restic and returns its ID.
func repoID(t *testing.T, bin string, repo restic.Repo) (string, error) {
	repo.ResticPath = bin
	c := &restic.Client{Runner: remote.NewLocal(false), Repo: repo}
	cfg, err := c.Config(acctest.Ctx(t))
	return cfg.ID, err
}

func resticRepoConfig(label, bin, repository, password, extra string) string {
	return fmt.Sprintf(`
resource "homelab_restic_repo" %q {
  repository  = %q
  password    = %q
  restic_path = %q
%s
}
`, label, repository, password, bin, extra)
}

// TestAccResticRepo_localLifecycle, for restic 0.18 and Debian's 0.14:
// init, adopt, wrong password refused without re-init, locked repository
// is an error that keeps state, a repository gone out of band is an error
// that keeps state (never re-initialized) until it is back.
func TestAccResticRepo_localLifecycle(t *testing.T) {
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "main")
			existing := filepath.Join(dir, "existing")
			pw := acctest.Password(t)
			addr := "homelab_restic_repo.main"
			base := resticRepoConfig("main", bin, main, pw, `  check {}`)
			var mainID, existingID string
			acctest.Test(t, resource.TestCase{
				PreCheck:                 func() { acctest.PreCheck(t) },
				ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
				CheckDestroy: func(*terraform.State) error {
					// destroy forgets, the data stays.
					if _, err := os.Stat(filepath.Join(existing, "config")); err != nil {
						return fmt.Errorf("destroy removed the adopted repository's data: %v", err)
					}
					return nil
				},
				Steps: []resource.TestStep{{
					Config: base,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("check_result"), knownvalue.StringExact("ok")),
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("repository_version"), knownvalue.NotNull()),
						statecheck.ExpectSensitiveValue(addr, tfjsonpath.New("password")),
					},
					Check: func(s *terraform.State) error {
						id, err := repoID(t, bin, restic.Repo{Repository: main, Password: pw})
						if err != nil {
							return fmt.Errorf("the repository does not open with restic: %v", err)
						}
						mainID = id
						if got := s.RootModule().Resources[addr].Primary.Attributes["repository_id"]; got != id {
							return fmt.Errorf("repository_id = %q, restic says %q", got, id)
						}
						if v := s.RootModule().Resources[addr].Primary.Attributes["restic_version"]; version != "debian" && v != version {
							return fmt.Errorf("restic_version = %q, want %s", v, version)
						}
						return nil
					},
				}, {
					// A repository already there with another password: refused,
					// and nothing is initialized over it.
					Config:      base + resticRepoConfig("other", bin, main, "not-the-password", ""),
					ExpectError: acctest.ErrorRe("Unable to create restic repository", "does not open with this password", "Nothing was initialized"),
				}, {
					// An existing repository that opens with the password is adopted.
					PreConfig: func() {
						c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: existing, Password: pw, ResticPath: bin}}
						cfg, err := c.Init(acctest.Ctx(t))
						if err != nil {
							t.Fatal(err)
						}
						existingID = cfg.ID
						if id, err := repoID(t, bin, restic.Repo{Repository: main, Password: pw}); err != nil || id != mainID {
							t.Fatalf("the wrong-password apply changed the repository: id %q (was %q), %v", id, mainID, err)
						}
					},
					Config: base + resticRepoConfig("existing", bin, existing, pw, ""),
					Check: func(s *terraform.State) error {
						if got := s.RootModule().Resources["homelab_restic_repo.existing"].Primary.Attributes["repository_id"]; got != existingID {
							return fmt.Errorf("adopted repository_id = %q, want the existing %q", got, existingID)
						}
						return nil
					},
				}, {
					// Locked by another restic: an error that keeps the state.
					PreConfig: func() { lockRepository(t, bin, main, pw) },
					Config:    base + resticRepoConfig("existing", bin, existing, pw, "  check_on_refresh = false"),
					// Debian's 0.14 needs an exclusive lock to report it; the
					// lock taken is exclusive.
					ExpectError: acctest.ErrorRe("Unable to read restic repository "+main, "locked"),
				}, {
					PreConfig: func() { unlockRepository(t, bin, main, pw) },
					Config:    base + resticRepoConfig("existing", bin, existing, pw, ""),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
				}, {
					// Gone out of band (moved away): an error that keeps the
					// state, never a new repository initialized in its place.
					PreConfig: func() {
						if err := os.Rename(main, main+".away"); err != nil {
							t.Fatal(err)
						}
					},
					Config:      base + resticRepoConfig("existing", bin, existing, pw, ""),
					ExpectError: acctest.ErrorRe("Unable to read restic repository "+main, "existed and is now missing", "The state was kept"),
				}, {
					// Back in place: the same repository, nothing to do.
					PreConfig: func() {
						if _, err := os.Stat(main); !os.IsNotExist(err) {
							t.Fatalf("something was created at %s while the repository was away: %v", main, err)
						}
						if err := os.Rename(main+".away", main); err != nil {
							t.Fatal(err)
						}
					},
					Config: base + resticRepoConfig("existing", bin, existing, pw, ""),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
					Check: func(*terraform.State) error {
						if id, err := repoID(t, bin, restic.Repo{Repository: main, Password: pw}); err != nil || id != mainID {
							return fmt.Errorf("repository at %s: id %q (was %q), %v", main, id, mainID, err)
						}
						return nil
					},
				}, {
					Config: base + resticRepoConfig("existing", bin, existing, pw, ""),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
				}},
			})
		})
	}
}

// lockHolders are restic processes holding a repository's exclusive lock,
// by repository.
var lockHolders = map[string]*exec.Cmd{}

// lockRepository makes a real restic hold the repository's exclusive lock:
// `restic key passwd` takes it, then waits for the new password on its
// standard input, which stays open.
func lockRepository(t *testing.T, bin, repo, password string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "key", "passwd")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD="+password)
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	lockHolders[repo] = cmd
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); w.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if entries, _ := os.ReadDir(filepath.Join(repo, "locks")); len(entries) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("restic key passwd took no lock")
}

// unlockRepository kills the lock holder, as a crash would, and removes
// the stale lock it leaves with `restic unlock`, as a user would.
func unlockRepository(t *testing.T, bin, repo, password string) {
	t.Helper()
	if cmd := lockHolders[repo]; cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		delete(lockHolders, repo)
	}
	c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repo, Password: password, ResticPath: bin}}
	if err := c.Unlock(acctest.Ctx(t)); err != nil {
		t.Fatalf("restic unlock: %v", err)
	}
}

// TestAccResticRepo_remoteBackends creates repositories on the sftp and
// rest-server backends through OpenTofu, for restic 0.18 and Debian's 0.14:
// sftp through the testbed's sshd with restic's sftp.command (host key
// verified), destroy_data removing the sftp repository through the sftp
// subsystem; rest-server with authentication, its credentials in the
// sensitive environment (0.18) or, for 0.14 which cannot read them from the
// environment, in the URL.
func TestAccResticRepo_remoteBackends(t *testing.T) {
	sshd := acctest.SharedSSHD(t)
	rest := startRestServerT(t)
	sftpCmd := fmt.Sprintf("ssh -F /dev/null -i %s -p %d -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes root@%s -s sftp",
		sshd.ClientKeyPath, sshd.Port, sshd.KnownHostsPath, sshd.Addr)
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			pw := acctest.Password(t)
			repoPath := filepath.Join(t.TempDir(), "sftp-repo")
			sftpRepo := "sftp:root@" + sshd.Addr + ":" + repoPath
			restName := "tf-" + strings.NewReplacer(".", "-").Replace(version)
			restRepo, restEnv := strings.Replace(rest.RepoURL(restName), rest.User+":"+rest.Password+"@", "", 1), fmt.Sprintf(
				"  environment = { RESTIC_REST_USERNAME = %q, RESTIC_REST_PASSWORD = %q }\n", rest.User, rest.Password)

			config := resticRepoConfig("sftp", bin, sftpRepo, pw, fmt.Sprintf("  options = { \"sftp.command\" = %q }\n  destroy_data = true\n  check {}", sftpCmd)) +
				resticRepoConfig("rest", bin, restRepo, pw, restEnv+"  check {}")
			ids := func(s *terraform.State) error {
				for label, repo := range map[string]restic.Repo{
					"sftp": {Repository: sftpRepo, Password: pw, Options: map[string]string{"sftp.command": sftpCmd}},
					"rest": {Repository: rest.RepoURL(restName), Password: pw},
				} {
					id, err := repoID(t, bin, repo)
					if err != nil {
						return fmt.Errorf("the %s repository does not open with restic: %v", label, err)
					}
					if got := s.RootModule().Resources["homelab_restic_repo."+label].Primary.Attributes["repository_id"]; got != id {
						return fmt.Errorf("%s repository_id = %q, restic says %q", label, got, id)
					}
				}
				return nil
			}
			acctest.Test(t, resource.TestCase{
				PreCheck:                 func() { acctest.PreCheck(t) },
				ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
				CheckDestroy: func(*terraform.State) error {
					// destroy_data removed the sftp repository on the server;
					// the rest repository was only forgotten.
					if _, err := os.Stat(repoPath); !os.IsNotExist(err) {
						return fmt.Errorf("the sftp repository is still there after destroy (destroy_data = true): %v", err)
					}
					if _, err := os.Stat(filepath.Join(rest.DataDir(), restName, "config")); err != nil {
						return fmt.Errorf("destroy removed the rest repository's data: %v", err)
					}
					return nil
				},
				Steps: []resource.TestStep{{
					Config: config,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("homelab_restic_repo.sftp", tfjsonpath.New("check_result"), knownvalue.StringExact("ok")),
						statecheck.ExpectKnownValue("homelab_restic_repo.rest", tfjsonpath.New("check_result"), knownvalue.StringExact("ok")),
						statecheck.ExpectKnownValue("homelab_restic_repo.rest", tfjsonpath.New("snapshot_count"), knownvalue.Int64Exact(0)),
					},
					Check: ids,
				}, {
					Config: config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
				}},
			})
		})
	}
}

// startRestServerT starts a rest-server with authentication for the test.
func startRestServerT(t *testing.T) *testbed.RestServer {
	t.Helper()
	acctest.PreCheck(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := testbed.StartRestServer(ctx, t.TempDir(), testbed.RestServerOptions{User: "backup", Password: acctest.Password(t), Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting rest-server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}
