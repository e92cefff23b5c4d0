package resources_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
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
			if u, _ := unknown[k].(bool); u {
				if before[k] == nil {
					continue
				}
				changed = append(changed, k+" (known after apply)")
				continue
			}
			if reflect.DeepEqual(before[k], after[k]) {
				continue
			}
			ok := false
			for _, a := range c.allowed {
				ok = ok || a == k
			}
			if !ok {
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
			pw := secret(t)
			c := &restic.Client{Runner: remote.NewLocal(false), Repo: restic.Repo{Repository: repo, Password: pw, ResticPath: bin}}
			cfg, err := c.Init(ctxT(t))
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
					ExpectError: errorRe("Cannot import non-existent remote object"),
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
