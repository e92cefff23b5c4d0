package restic_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

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

// treeSums returns the SHA-256 of every regular file under dir, by path
// relative to dir: the proof that a repository's data was not touched.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatalf("checksumming %s: %v", dir, err)
	}
	return sums
}

// sameSums compares two treeSums results, ignoring restic's lock files
// (a refresh takes and drops locks).
func sameSums(want, got map[string]string) error {
	var diffs []string
	for p, w := range want {
		if strings.HasPrefix(p, "locks/") {
			continue
		}
		if g, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, "changed "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && !strings.HasPrefix(p, "locks/") {
			diffs = append(diffs, "new "+p)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("repository files differ (%d): %s", len(diffs), strings.Join(diffs[:min(8, len(diffs))], ", "))
	}
	return nil
}

// backupInto puts one snapshot of a small directory into the repository,
// with restic run directly (not through the provider).
func backupInto(t *testing.T, bin string, repo restic.Repo) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "family.jpg"), []byte("family photos "+acctest.Password(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	repo.ResticPath = bin
	c := &restic.Client{Runner: remote.NewLocal(false), Repo: repo}
	if _, err := c.Backup(acctest.Ctx(t), []string{src}, nil, nil, "test"); err != nil {
		t.Fatalf("restic backup: %v", err)
	}
}

func sshRepoConfig(sshd *testbed.SSHD, label, bin, repository, password, extra string) string {
	return resticRepoConfig(label, bin, repository, password, fmt.Sprintf("  ssh {\n    host = %q\n    port = %d\n  }\n%s", sshd.Addr, sshd.Port, extra))
}

func isEmptyDir(t *testing.T, dir string) error {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return fmt.Errorf("%s is not empty: %v", dir, names)
	}
	return nil
}

// TestAccResticRepo_unmountedDiskKeepsState (issue 12, item 6): a
// repository on a USB backup disk, reached over SSH. The disk is a bind
// mount on the sshd host; unmounting it leaves the bare mountpoint. A
// refresh must then fail with an error that says what to check and keep
// the state; restic init must never run on the mountpoint; once the disk
// is back, the plan is empty and the data is byte for byte what it was.
func TestAccResticRepo_unmountedDiskKeepsState(t *testing.T) {
	sshd := acctest.SharedSSHD(t)
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			disk, mnt := filepath.Join(dir, "usb-disk"), filepath.Join(dir, "mnt", "usb")
			for _, d := range []string{disk, mnt} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			mounted := false
			mount := func() {
				t.Helper()
				if out, err := exec.Command("mount", "--bind", disk, mnt).CombinedOutput(); err != nil {
					t.Fatalf("mount --bind: %v: %s", err, out)
				}
				mounted = true
			}
			umount := func() {
				t.Helper()
				if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
					t.Fatalf("umount: %v: %s", err, out)
				}
				mounted = false
			}
			mount()
			t.Cleanup(func() {
				if mounted {
					_ = exec.Command("umount", mnt).Run()
				}
			})
			repoPath := filepath.Join(mnt, "restic")
			pw := acctest.Password(t)
			addr := "homelab_restic_repo.usb"
			// The backup disk already holds a repository with a snapshot.
			c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repoPath, Password: pw, ResticPath: bin}}
			cfg, err := c.Init(acctest.Ctx(t))
			if err != nil {
				t.Fatalf("restic init: %v", err)
			}
			id := cfg.ID
			backupInto(t, bin, restic.Repo{Repository: repoPath, Password: pw})
			sums := treeSums(t, filepath.Join(disk, "restic"))
			// The same repository again with a write-only password, whose
			// refresh can only tell "there" from "not there".
			config := acctest.ProviderSSH(sshd, "root") + sshRepoConfig(sshd, "usb", bin, repoPath, pw, "") + fmt.Sprintf(`
resource "homelab_restic_repo" "usb_wo" {
  repository          = %q
  password_wo         = %q
  password_wo_version = "1"
  restic_path         = %q
  ssh {
    host = %q
    port = %d
  }
}
`, repoPath, pw, bin, sshd.Addr, sshd.Port)
			acctest.Test(t, resource.TestCase{
				PreCheck:                 func() { acctest.PreCheck(t) },
				ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
				CheckDestroy: func(*terraform.State) error {
					// destroy_data is false: the disk keeps its repository.
					return sameSums(sums, treeSums(t, filepath.Join(disk, "restic")))
				},
				Steps: []resource.TestStep{{
					// Adopted, not initialized.
					Config: config,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("repository_id"), knownvalue.StringExact(id)),
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("snapshot_count"), knownvalue.Int64Exact(1)),
						statecheck.ExpectKnownValue(addr+"_wo", tfjsonpath.New("repository_id"), knownvalue.StringExact(id)),
					},
				}, {
					// The disk is unplugged: the mountpoint is an empty
					// directory. Refresh fails and says what to check; apply
					// never gets to run restic init there.
					PreConfig: umount,
					Config:    config,
					ExpectError: regexp.MustCompile(acctest.ErrorRe("Unable to read restic repository "+repoPath, id, "state was kept", "mounted").String() +
						".*" + acctest.ErrorRe("Unable to read restic repository "+repoPath, id, "state was kept").String()[len("(?s)"):]),
				}, {
					// Still unplugged: a plan fails the same way, and nothing
					// was written on the bare mountpoint.
					PreConfig: func() {
						if err := isEmptyDir(t, mnt); err != nil {
							t.Fatalf("something was written on the bare mountpoint: %v", err)
						}
					},
					Config:      config,
					PlanOnly:    true,
					ExpectError: acctest.ErrorRe("Unable to read restic repository "+repoPath, "state was kept"),
				}, {
					// The disk is back: nothing to do, the data is intact.
					PreConfig: func() {
						if err := isEmptyDir(t, mnt); err != nil {
							t.Fatalf("something was written on the bare mountpoint: %v", err)
						}
						mount()
					},
					Config: config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("snapshot_count"), knownvalue.Int64Exact(1)),
					},
					Check: func(s *terraform.State) error {
						if got := s.RootModule().Resources[addr].Primary.Attributes["repository_id"]; got != id {
							return fmt.Errorf("repository_id = %q, was %q", got, id)
						}
						return sameSums(sums, treeSums(t, filepath.Join(disk, "restic")))
					},
				}},
			})
		})
	}
}

// TestAccResticRepo_respellingKeepsData (issue 12, item 7): with
// destroy_data = true, writing the same place another way (local: prefix,
// trailing slash) must not replace the repository, and a real change of
// location must never delete the old repository's snapshots: it is refused
// at plan time while destroy_data is set, and with destroy_data = false the
// old repository is only forgotten.
func TestAccResticRepo_respellingKeepsData(t *testing.T) {
	sshd := acctest.SharedSSHD(t)
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			repoPath, otherPath := filepath.Join(dir, "srv", "r"), filepath.Join(dir, "srv", "r2")
			pw := acctest.Password(t)
			addr := "homelab_restic_repo.r"
			config := func(repository string, destroyData bool) string {
				return acctest.ProviderSSH(sshd, "root") + sshRepoConfig(sshd, "r", bin, repository, pw, fmt.Sprintf("  destroy_data = %t\n", destroyData))
			}
			var sums map[string]string
			var id string
			intact := func(s *terraform.State) error {
				if _, err := os.Stat(repoPath); err != nil {
					return fmt.Errorf("the repository's data is gone: %v", err)
				}
				if err := sameSums(sums, treeSums(t, repoPath)); err != nil {
					return err
				}
				if got, err := repoID(t, bin, restic.Repo{Repository: repoPath, Password: pw}); err != nil || got != id {
					return fmt.Errorf("the repository at %s has ID %q (%v), was %q", repoPath, got, err, id)
				}
				return nil
			}
			acctest.Test(t, resource.TestCase{
				PreCheck:                 func() { acctest.PreCheck(t) },
				ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
				CheckDestroy: func(*terraform.State) error {
					// The last state has destroy_data = false: destroy forgets.
					if _, err := os.Stat(filepath.Join(otherPath, "config")); err != nil {
						return fmt.Errorf("destroy with destroy_data = false removed data: %v", err)
					}
					return nil
				},
				Steps: []resource.TestStep{{
					Config: config(repoPath, true),
					Check: func(s *terraform.State) error {
						id = s.RootModule().Resources[addr].Primary.Attributes["repository_id"]
						backupInto(t, bin, restic.Repo{Repository: repoPath, Password: pw})
						sums = treeSums(t, repoPath)
						return nil
					},
				}, {
					// The same place, spelled as restic also accepts it.
					Config: config("local:"+repoPath+"/", true),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
					Check: intact,
				}, {
					Config: config(filepath.Dir(repoPath)+"//r", true),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
					Check: intact,
				}, {
					Config: config(filepath.Dir(repoPath)+"//r", true),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan()}},
				}, {
					// Another place while destroy_data is set: refused at plan
					// time, nothing deleted, nothing created.
					Config:      config(otherPath, true),
					ExpectError: acctest.ErrorRe("Unable to plan restic repository", "destroy_data", "would delete"),
				}, {
					PreConfig: func() {
						if err := intact(nil); err != nil {
							t.Fatal(err)
						}
						if _, err := os.Stat(otherPath); !os.IsNotExist(err) {
							t.Fatalf("the refused plan created %s: %v", otherPath, err)
						}
					},
					Config: config(repoPath, false),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
				}, {
					// With destroy_data = false the move replaces the resource
					// and only forgets the old repository.
					Config: config(otherPath, false),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace)}},
					Check: intact,
				}},
			})
		})
	}
}

// TestAccResticRepo_restCredentialsRedacted (issue 12, item 8): the
// rest-server password never shows in an error. A URL that holds it is
// refused at plan time (it would be stored and shown in clear text), with
// the URL redacted in the error; given in the sensitive environment, the
// credentials reach restic (0.14 too, through the URL in its environment)
// and an error about the repository (here: it does not open with the given
// password) shows neither them nor the URL restic was given.
func TestAccResticRepo_restCredentialsRedacted(t *testing.T) {
	rest := startRestServerT(t)
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			name := "redact-" + strings.NewReplacer(".", "-").Replace(version)
			withCreds := rest.RepoURL(name)
			if !strings.Contains(withCreds, rest.Password) {
				t.Fatalf("the rest-server URL %q does not hold the server password: the test would prove nothing", restic.RedactRepository(withCreds))
			}
			bare := strings.Replace(withCreds, rest.User+":"+rest.Password+"@", "", 1)
			c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: withCreds, Password: acctest.Password(t), ResticPath: bin}}
			if _, err := c.Init(acctest.Ctx(t)); err != nil {
				t.Fatalf("restic init: %v", err)
			}
			env := fmt.Sprintf("  environment = { RESTIC_REST_USERNAME = %q, RESTIC_REST_PASSWORD = %q }\n", rest.User, rest.Password)
			for _, tc := range []struct {
				what, config string
				want         *regexp.Regexp
			}{
				// Read from a file, as from a secret store: the CLI quotes
				// the configuration's source line in its errors.
				{"a password in the URL", strings.Replace(resticRepoConfig("rest", bin, "URL", acctest.Password(t), ""),
					`"URL"`, fmt.Sprintf("trimspace(file(%q))", writeSecretFile(t, withCreds)), 1),
					acctest.ErrorRe("Password in the repository URL", rest.User+":***@")},
				{"the wrong repository password", resticRepoConfig("rest", bin, bare, acctest.Password(t), env),
					acctest.ErrorRe("Unable to create restic repository rest:", "does not open with this password")},
			} {
				sawError := false
				acctest.Test(t, resource.TestCase{
					PreCheck:                 func() { acctest.PreCheck(t) },
					ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
					// Called with the step's error (ExpectError can only
					// match, not prove an absence).
					ErrorCheck: func(err error) error {
						msg := err.Error()
						switch {
						case strings.Contains(msg, rest.Password):
							i := strings.Index(msg, rest.Password)
							return fmt.Errorf("%s: the error shows the rest-server password: ...%s...", tc.what,
								strings.ReplaceAll(msg[max(0, i-120):min(len(msg), i+60)], rest.Password, "<PASSWORD>"))
						case !tc.want.MatchString(msg):
							return fmt.Errorf("%s: not the expected error: %v", tc.what, err)
						}
						sawError = true
						return nil
					},
					Steps: []resource.TestStep{{Config: tc.config}},
				})
				if !sawError {
					t.Fatalf("%s: the apply did not fail", tc.what)
				}
			}
		})
	}
}

// writeSecretFile writes value to a private file of the test and returns its path.
func writeSecretFile(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
