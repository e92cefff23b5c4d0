package restic_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/systemd"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// providerAddress is the terraform block naming the address the test
// framework serves the provider under: import steps run the configuration
// as written, without the block the framework adds to other steps.
func providerAddress() string {
	return fmt.Sprintf(`
terraform {
  required_providers {
    homelab = { source = "%s/%s/homelab" }
  }
}
`, os.Getenv("TF_ACC_PROVIDER_HOST"), os.Getenv("TF_ACC_PROVIDER_NAMESPACE"))
}

// planCheckFunc is a plan check written as a function.
type planCheckFunc func(*tfjson.Plan) error

func (f planCheckFunc) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	resp.Error = f(req.Plan)
}

// onlyChanges checks that the plan neither replaces nor destroys addr and
// changes no attribute but the allowed ones; a computed attribute that was
// null and is known only after apply (what the password reads) is allowed.
type onlyChanges struct {
	addr    string
	allowed []string
}

func (c onlyChanges) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.addr {
			continue
		}
		for _, a := range rc.Change.Actions {
			if a != tfjson.ActionUpdate && a != tfjson.ActionNoop {
				resp.Error = fmt.Errorf("%s: planned %v, want an update or nothing", c.addr, rc.Change.Actions)
				return
			}
		}
		before, _ := rc.Change.Before.(map[string]any)
		after, _ := rc.Change.After.(map[string]any)
		unknown, _ := rc.Change.AfterUnknown.(map[string]any)
		var changed []string
		keys := map[string]bool{}
		for k := range before {
			keys[k] = true
		}
		for k := range after {
			keys[k] = true
		}
		for k := range keys {
			ok := false
			for _, a := range c.allowed {
				ok = ok || a == k
			}
			if u, _ := unknown[k].(bool); u {
				if before[k] != nil && !ok {
					changed = append(changed, k+" (known after apply)")
				}
				continue
			}
			if !ok && !reflect.DeepEqual(before[k], after[k]) {
				changed = append(changed, fmt.Sprintf("%s: %v -> %v", k, before[k], after[k]))
			}
		}
		if len(changed) > 0 {
			sort.Strings(changed)
			resp.Error = fmt.Errorf("%s: the plan changes more than %v: %s", c.addr, c.allowed, strings.Join(changed, "; "))
		}
		return
	}
	resp.Error = fmt.Errorf("%s is not in the plan", c.addr)
}

// TestAccResticRepo_importMadeByHand: a repository made with `restic init`
// outside Terraform, for restic 0.18 and Debian's 0.14 (the restic on the
// PATH, as an import knows no restic_path), is imported with an import {}
// block and with terraform import: the plan after importing shows only
// the password (and a respelled repository, as an update), the apply opens
// it with the password and reads its ID, and the next plan is empty. A
// directory that holds no repository cannot be imported, and nothing is
// created there. Destroy forgets the repository; its data stays.
func TestAccResticRepo_importMadeByHand(t *testing.T) {
	for version, bin := range resticBinaries(t) {
		t.Run(version, func(t *testing.T) {
			t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			dir := t.TempDir()
			repo := filepath.Join(dir, "repo")
			empty := filepath.Join(dir, "empty")
			if err := os.Mkdir(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			pw := acctest.Password(t)
			c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repo, Password: pw, ResticPath: bin}}
			cfg, err := c.Init(acctest.Ctx(t))
			if err != nil {
				t.Fatalf("restic init: %v", err)
			}
			addr := "homelab_restic_repo.r"
			// The configuration spells the repository otherwise than the
			// import ID of the import {} block: the same place, no replacement.
			config := providerAddress() + fmt.Sprintf(`
resource "homelab_restic_repo" "r" {
  repository = %q
  password   = %q
}
`, "local:"+repo+"/", pw)
			acctest.Test(t, resource.TestCase{
				PreCheck:                 func() { acctest.PreCheck(t) },
				ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
				CheckDestroy: func(*terraform.State) error {
					id, err := repoID(t, bin, restic.Repo{Repository: repo, Password: pw})
					if err != nil || id != cfg.ID {
						return fmt.Errorf("after destroy the repository has ID %q, %v; want the one made by hand, %s", id, err, cfg.ID)
					}
					return nil
				},
				Steps: []resource.TestStep{{
					Config: config, ResourceName: addr, ImportState: true,
					ImportStateKind: resource.ImportBlockWithID, ImportStateId: repo,
					ExpectNonEmptyPlan: true,
					ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						onlyChanges{addr, []string{"password", "repository"}},
					}},
				}, {
					Config: config, ResourceName: addr, ImportState: true,
					ImportStateId: "local:" + repo + "/", ImportStatePersist: true,
				}, {
					Config: config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						onlyChanges{addr, []string{"password"}},
					}},
					Check: resource.ComposeAggregateTestCheckFunc(
						resource.TestCheckResourceAttr(addr, "repository_id", cfg.ID),
						resource.TestCheckResourceAttr(addr, "snapshot_count", "0"),
					),
				}, {
					// Nothing there: the import fails, and creates nothing.
					Config: config + fmt.Sprintf(`
resource "homelab_restic_repo" "none" {
  repository = %q
  password   = %q
}
`, empty, pw),
					ResourceName: "homelab_restic_repo.none", ImportState: true, ImportStateId: empty,
					ExpectError: acctest.ErrorRe("Cannot import non-existent remote object"),
				}, {
					Config: config,
					Check: func(*terraform.State) error {
						if entries, err := os.ReadDir(empty); err != nil || len(entries) > 0 {
							return fmt.Errorf("the failed import wrote into %s: %d entries, %v", empty, len(entries), err)
						}
						return nil
					},
				}},
			})
		})
	}
}

// TestAccResticBackup_importMadeByHand, on the VM's systemd: a backup
// schedule installed outside Terraform (the service, timer and
// environment files written onto the host and enabled with systemctl, a
// repository made with restic init) is imported with an import {} block
// and with terraform import, by host:port:name. Every setting is read back
// from the units, so the plan after importing is empty (the password is a
// file on the host, which the units name). A unit edited on the host shows
// the setting that changed; apply restores it. Destroy removes the units,
// never the repository.
func TestAccResticBackup_importMadeByHand(t *testing.T) {
	vm := acctest.ZFSVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := testbed.EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	pw := acctest.Password(t)
	acctest.Secret("restic password", pw)
	local := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(local, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	acctest.VMUpload(t, vm, bin, "/usr/local/bin/restic", 0o755)
	acctest.VMUpload(t, vm, write("pass", pw), "/root/restic-imported.pass", 0o600)
	acctest.VMRun(t, vm, `set -e
mkdir -p '/srv/data' '/srv/my photos' && echo 'family photos' > '/srv/my photos/photo.txt'
rm -rf /var/backups/imported
RESTIC_PASSWORD_FILE=/root/restic-imported.pass /usr/local/bin/restic init -q -r /var/backups/imported
mkdir -p -m 0700 /etc/homelab`)
	// The units as a user would have installed them by hand, in the form
	// the provider writes.
	rb := "/usr/local/bin/restic"
	env := map[string]string{"RESTIC_REPOSITORY": "/var/backups/imported", "RESTIC_PASSWORD_FILE": "/root/restic-imported.pass"}
	unit := "homelab-restic-imported"
	for _, u := range []systemd.Unit{{
		Name: unit, Description: "restic backup imported (homelab provider)", Environment: env, OnCalendar: []string{"*-*-* 03:00:00"},
		ExecStart: [][]string{
			{rb, "backup", "--retry-lock", "10m", "--tag", "homelab", "--exclude", "*.tmp", "--", "/srv/data", "/srv/my photos"},
			{rb, "forget", "--retry-lock", "10m", "--keep-last", "3", "--keep-daily", "7", "--prune"},
		},
	}, {
		Name: unit + "-check", Description: "restic check imported (homelab provider)", Environment: env, OnCalendar: []string{"Sun *-*-* 04:00:00"},
		ExecStart: [][]string{{rb, "check", "--retry-lock", "10m"}},
	}} {
		f, err := systemd.Render(u)
		if err != nil {
			t.Fatal(err)
		}
		acctest.VMUpload(t, vm, write(u.Name+".service", f.Service), systemd.ServicePath(u.Name), 0o644)
		acctest.VMUpload(t, vm, write(u.Name+".timer", f.Timer), systemd.TimerPath(u.Name), 0o644)
		acctest.VMUpload(t, vm, write(u.Name+".env", f.Env), systemd.EnvPath(u.Name), 0o600)
	}
	acctest.VMRun(t, vm, "systemctl daemon-reload && systemctl enable --now "+unit+".timer "+unit+"-check.timer")
	sums := "sha256sum /etc/systemd/system/" + unit + ".* /etc/systemd/system/" + unit + "-check.* /etc/homelab/" + unit + "*.env"
	before := acctest.VMRun(t, vm, sums)

	addr := "homelab_restic_backup.imported"
	id := fmt.Sprintf("%s:%d:imported", vm.SSHHost, vm.SSHPort)
	config := providerAddress() + acctest.VMProvider(vm) + fmt.Sprintf(`
resource "homelab_restic_backup" "imported" {
  name           = "imported"
  repository     = "/var/backups/imported"
  password_file  = "/root/restic-imported.pass"
  restic_path    = "/usr/local/bin/restic"
  paths          = ["/srv/data", "/srv/my photos"]
  exclude        = ["*.tmp"]
  tags           = ["homelab"]
  schedule       = "*-*-* 03:00:00"
  check_schedule = "Sun *-*-* 04:00:00"
  prune          = true
  keep {
    last  = 3
    daily = 7
  }
  %s
}
`, acctest.VMSSH(vm))
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			out := acctest.VMRun(t, vm, "ls /etc/systemd/system/"+unit+"* /etc/homelab/"+unit+"* 2>&1 || true; ls /var/backups/imported/config")
			if strings.Contains(out, ".service\n") || strings.Contains(out, ".timer\n") || strings.Contains(out, ".env\n") ||
				!strings.HasSuffix(out, "/var/backups/imported/config") {
				return fmt.Errorf("after destroy:\n%s", out)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			// import {}: nothing to change.
			Config: config, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
		}, {
			Config: config, ResourceName: addr, ImportState: true, ImportStateId: id, ImportStatePersist: true,
		}, {
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
			Check: func(*terraform.State) error {
				if after := acctest.VMRun(t, vm, sums); after != before {
					return fmt.Errorf("the units changed:\n%s\nwere:\n%s", after, before)
				}
				return nil
			},
		}, {
			// A path edited on the host is read back: the plan shows it.
			PreConfig: func() {
				acctest.VMRun(t, vm, "sed -i 's#/srv/data#/srv/other#' /etc/systemd/system/"+unit+".service && systemctl daemon-reload")
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("paths").AtSliceIndex(0), knownvalue.StringExact("/srv/data")),
				planCheckFunc(func(p *tfjson.Plan) error {
					for _, rc := range p.ResourceChanges {
						if b, _ := rc.Change.Before.(map[string]any); rc.Address == addr {
							if got := fmt.Sprint(b["paths"]); got != "[/srv/other /srv/my photos]" {
								return fmt.Errorf("paths before the apply (as read from the host) = %s, want the edited [/srv/other /srv/my photos]", got)
							}
							return nil
						}
					}
					return fmt.Errorf("%s is not in the plan", addr)
				}),
				onlyChanges{addr, []string{"paths", "units", "last_run", "last_result", "next_run"}},
			}},
			Check: func(*terraform.State) error {
				if after := acctest.VMRun(t, vm, sums); after != before {
					return fmt.Errorf("the units were not restored:\n%s\nwere:\n%s", after, before)
				}
				return nil
			},
		}, {
			Config: config, ResourceName: addr, ImportState: true, ImportStateId: id,
			ImportStateVerify: true, ImportStateVerifyIgnore: []string{"timeouts"},
		}},
	})
}

// TestAccResticRepo_importThenUnmounted: a repository on a backup disk
// (a bind mount on the sshd host), made by hand with Debian's restic (the
// restic on that host's PATH), is imported by host:port:path. Its disk is
// unmounted before the first apply: the refresh finds no repository at the
// bare mountpoint, and since the import found one there, that is an error
// that keeps the state; nothing is initialized. Mounted again, the apply
// opens it with the password, and its data is untouched.
func TestAccResticRepo_importThenUnmounted(t *testing.T) {
	sshd := acctest.SharedSSHD(t)
	acctest.PreCheck(t)
	bin, err := testbed.DebianRestic()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk, mnt := filepath.Join(dir, "usb-disk"), filepath.Join(dir, "mnt", "usb")
	for _, d := range []string{disk, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mounted := false
	mount := func(do bool) {
		t.Helper()
		args := []string{"umount", mnt}
		if do {
			args = []string{"mount", "--bind", disk, mnt}
		}
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		mounted = do
	}
	mount(true)
	t.Cleanup(func() {
		if mounted {
			_ = exec.Command("umount", mnt).Run()
		}
	})
	repoPath := filepath.Join(mnt, "restic")
	pw := acctest.Password(t)
	c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repoPath, Password: pw, ResticPath: bin}}
	cfg, err := c.Init(acctest.Ctx(t))
	if err != nil {
		t.Fatalf("restic init: %v", err)
	}
	backupInto(t, bin, restic.Repo{Repository: repoPath, Password: pw})
	sums := treeSums(t, filepath.Join(disk, "restic"))
	addr := "homelab_restic_repo.usb"
	config := providerAddress() + acctest.ProviderSSH(sshd, "root") + fmt.Sprintf(`
resource "homelab_restic_repo" "usb" {
  repository = %q
  password   = %q
  ssh {
    host = %q
    port = %d
  }
}
`, repoPath, pw, sshd.Addr, sshd.Port)
	intact := func(*terraform.State) error {
		if err := sameSums(sums, treeSums(t, filepath.Join(disk, "restic"))); err != nil {
			return fmt.Errorf("the repository on the disk changed: %v", err)
		}
		return nil
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             intact,
		Steps: []resource.TestStep{{
			Config: config, ResourceName: addr, ImportState: true, ImportStatePersist: true,
			ImportStateId: fmt.Sprintf("%s:%d:%s", sshd.Addr, sshd.Port, repoPath),
		}, {
			PreConfig:    func() { mount(false) },
			RefreshState: true,
			ExpectError:  acctest.ErrorRe("Unable to read restic repository", "finds no repository", "found there by the import", "The state was kept and nothing was initialized"),
		}, {
			PreConfig: func() {
				if err := isEmptyDir(t, mnt); err != nil {
					t.Fatalf("the refresh of the unmounted disk wrote to the mountpoint: %v", err)
				}
				mount(true)
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				onlyChanges{addr, []string{"password"}},
			}},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr(addr, "repository_id", cfg.ID),
				resource.TestCheckResourceAttr(addr, "snapshot_count", "1"),
				intact,
			),
		}},
	})
}

// TestAccResticRepo_importWriteOnly: with a write-only password the plan
// after importing a repository made by hand shows only
// password_wo_version; the apply reads the repository with the password,
// and the refresh after it (which cannot know the password) keeps it.
func TestAccResticRepo_importWriteOnly(t *testing.T) {
	acctest.RequireWriteOnly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := testbed.EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	repo := filepath.Join(t.TempDir(), "repo")
	pw := acctest.Password(t)
	acctest.Secret("restic password", pw)
	c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repo, Password: pw, ResticPath: bin}}
	cfg, err := c.Init(acctest.Ctx(t))
	if err != nil {
		t.Fatalf("restic init: %v", err)
	}
	// The password comes from a file, as from a secret store: the test
	// harness logs configurations verbatim.
	pwFile := filepath.Join(t.TempDir(), "restic.pass")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "homelab_restic_repo.r"
	config := providerAddress() + fmt.Sprintf(`
resource "homelab_restic_repo" "r" {
  repository          = %q
  password_wo         = file(%q)
  password_wo_version = "1"
}
`, repo, pwFile)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if id, err := repoID(t, bin, restic.Repo{Repository: repo, Password: pw}); err != nil || id != cfg.ID {
				return fmt.Errorf("after destroy the repository has ID %q, %v; want %s", id, err, cfg.ID)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config, ResourceName: addr, ImportState: true, ImportStateId: repo, ImportStatePersist: true,
		}, {
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				onlyChanges{addr, []string{"password_wo_version"}},
			}},
			Check: resource.TestCheckResourceAttr(addr, "repository_id", cfg.ID),
		}},
	})
}
