package restic_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// TestAccResticBackup_timerFiresSnapshotAppears installs a backup schedule
// on the VM (systemd), lets its timer fire on its own, and reads the
// snapshot it made through the data source. The trace log and the state
// never hold the repository password.
func TestAccResticBackup_timerFiresSnapshotAppears(t *testing.T) {
	acctest.RequireWriteOnly(t)
	vm := acctest.ZFSVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := testbed.EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	acctest.VMUpload(t, vm, bin, "/usr/local/bin/restic", 0o755)
	acctest.VMRun(t, vm, "mkdir -p /srv/data && echo 'family photos' > /srv/data/photo.txt && rm -rf /var/backups/restic")
	logPath := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "trace")
	t.Setenv("TF_ACC_LOG_PATH", logPath)
	pw := acctest.Password(t)
	// The configuration reads the password from a file, as a user's would
	// from a secret store: the test harness logs configurations verbatim.
	pwFile := filepath.Join(t.TempDir(), "restic.pass")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := acctest.VMSSH(vm)
	config := func(schedule string) string {
		return acctest.VMProvider(vm) + fmt.Sprintf(`
resource "homelab_restic_repo" "vm" {
  repository          = "/var/backups/restic"
  password_wo         = trimspace(file(%[1]q))
  password_wo_version = "1"
  restic_path         = "/usr/local/bin/restic"
  %[2]s
}

resource "homelab_restic_backup" "data" {
  name                = "data"
  repository          = homelab_restic_repo.vm.repository
  password_wo         = trimspace(file(%[1]q))
  password_wo_version = "1"
  restic_path         = "/usr/local/bin/restic"
  paths               = ["/srv/data"]
  exclude             = ["*.tmp"]
  tags                = ["homelab", "test"]
  schedule            = %[3]q
  keep {
    last = 3
  }
  %[2]s
}
`, pwFile, ssh, schedule)
	}
	snapshots := func() string {
		return fmt.Sprintf(`
data "homelab_restic_snapshots" "data" {
  repository    = homelab_restic_repo.vm.repository
  password_file = "/etc/homelab/restic-test.pass"
  restic_path   = "/usr/local/bin/restic"
  tags          = ["homelab"]
  %s
}

check "backup_fresh" {
  assert {
    condition     = data.homelab_restic_snapshots.data.latest_age_seconds != null && data.homelab_restic_snapshots.data.latest_age_seconds < 86400
    error_message = "The newest snapshot of /srv/data is older than a day."
  }
}
`, ssh)
	}
	// One firing, soon: the timer runs the backup once on its own, and no
	// second run races the steps that read its result. The first apply
	// (init, check, units) must finish before it: on the emulated VM under
	// load it has taken over a minute, and a timer started after its only
	// time never fires.
	once := time.Now().Add(150*time.Second).UTC().Format("2006-01-02 15:04:05") + " UTC"
	unit := "homelab-restic-data"
	waitFired := func() {
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			// Ran (left inactive once), finished (inactive again), succeeded.
			out := acctest.VMRun(t, vm, "systemctl show -p Result -p ActiveState -p InactiveExitTimestampMonotonic "+unit+".service")
			if strings.Contains(out, "Result=success") && strings.Contains(out, "ActiveState=inactive") &&
				!strings.Contains(out, "InactiveExitTimestampMonotonic=0") {
				return
			}
			time.Sleep(3 * time.Second)
		}
		t.Fatalf("the timer did not run the backup within 3 minutes:\n%s", acctest.VMRun(t, vm, "systemctl status "+unit+".timer "+unit+".service 2>&1 || true"))
	}
	addr := "homelab_restic_backup.data"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			out := acctest.VMRun(t, vm, "ls /etc/systemd/system/"+unit+".* /etc/homelab/"+unit+".env 2>&1 || true; ls /var/backups/restic/config")
			if !strings.Contains(out, "No such file") || strings.Contains(out, unit+".service\n") {
				return fmt.Errorf("units left after destroy:\n%s", out)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config(once),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("unit_name"), knownvalue.StringExact(unit+".service")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(vm.SSHHost+":data")),
			},
			Check: func(*terraform.State) error {
				mode := acctest.VMRun(t, vm, "stat -c '%a %U' /etc/homelab/"+unit+".env; grep -c "+pw+" /etc/systemd/system/"+unit+".service || true")
				if !strings.HasPrefix(mode, "600 root") || !strings.HasSuffix(mode, "0") {
					return fmt.Errorf("environment file or unit: %s", mode)
				}
				return nil
			},
		}, {
			// The timer fires on its own; a refresh records the run and the
			// data source sees the snapshot.
			PreConfig: func() {
				waitFired()
				acctest.VMRun(t, vm, fmt.Sprintf("umask 077; printf '%%s' %s > /etc/homelab/restic-test.pass", pw))
			},
			Config: config(once) + snapshots(),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_result"), knownvalue.StringExact("success")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_run"), knownvalue.NotNull()),
				statecheck.ExpectKnownValue("data.homelab_restic_snapshots.data", tfjsonpath.New("latest_time"), knownvalue.NotNull()),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttrWith("data.homelab_restic_snapshots.data", "snapshot_count", func(v string) error {
					if v == "0" || v == "" {
						return fmt.Errorf("no snapshot in the repository after the timer fired")
					}
					return nil
				}),
				resource.TestCheckResourceAttr("data.homelab_restic_snapshots.data", "snapshots.0.paths.0", "/srv/data"),
			),
		}, {
			// The unit edited out of band is drift, corrected by apply.
			PreConfig: func() {
				acctest.VMRun(t, vm, "sed -i 's#/srv/data#/srv/other#' /etc/systemd/system/"+unit+".service && systemctl daemon-reload")
			},
			Config: config(once) + snapshots(),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "grep -c /srv/data /etc/systemd/system/"+unit+".service"); out == "0" {
					return fmt.Errorf("the unit was not restored")
				}
				return nil
			},
		}, {
			// A schedule change is in place; nothing else moves.
			Config: config("hourly") + snapshots(),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("homelab_restic_repo.vm", plancheck.ResourceActionNoop),
			}},
			Check: func(st *terraform.State) error {
				for name, rs := range st.RootModule().Resources {
					for k, v := range rs.Primary.Attributes {
						if strings.Contains(v, pw) {
							return fmt.Errorf("state attribute %s.%s holds the password", name, k)
						}
					}
				}
				return nil
			},
		}},
	})
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("reading the trace log: %v", err)
	}
	if len(log) < 1000 {
		t.Fatalf("the trace log is nearly empty (%d bytes): the grep below would prove nothing", len(log))
	}
	var leaks []string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, pw) {
			if len(line) > 300 {
				i := strings.Index(line, pw)
				line = line[max(0, i-200):min(len(line), i+100)]
			}
			leaks = append(leaks, strings.ReplaceAll(line, pw, "<PASSWORD>"))
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("the TF_LOG=trace output holds the repository password in %d lines, e.g.:\n%s", len(leaks), strings.Join(leaks[:min(3, len(leaks))], "\n"))
	}
}

// TestAccResticBackup_lockedRepository (issue 12, item 9) on the VM's
// systemd: a scheduled backup + forget --prune meets a lock held by
// another restic (a refresh, a long prune). With restic 0.18 the units pass
// --retry-lock, so a run that starts while the lock is held waits for it
// and succeeds; a lock held longer than retry_lock, and Debian's 0.14
// (no --retry-lock), fail the run, and last_result carries restic's exit
// status and its own message. The backed-up data restores byte for byte.
func TestAccResticBackup_lockedRepository(t *testing.T) {
	vm := acctest.ZFSVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := testbed.EnsureRestic(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	acctest.VMUpload(t, vm, bin, "/usr/local/bin/restic", 0o755)
	const (
		repo   = "/var/backups/restic-lock"
		pwFile = "/etc/homelab/lock-test.pass"
		unit   = "homelab-restic-locked"
	)
	pw := acctest.Password(t)
	acctest.VMRun(t, vm, fmt.Sprintf(`set -e
rm -rf %[1]s /srv/lockdata /tmp/lock-restore
mkdir -p /srv/lockdata /etc/homelab
head -c 300000 /dev/urandom > /srv/lockdata/photo.jpg
echo 'family photos' > /srv/lockdata/notes.txt
umask 077; printf '%%s' %[3]s > %[2]s
RESTIC_REPOSITORY=%[1]s RESTIC_PASSWORD_FILE=%[2]s /usr/local/bin/restic init -q`, repo, pwFile, pw))
	config := func(resticPath, extra string) string {
		return acctest.VMProvider(vm) + fmt.Sprintf(`
resource "homelab_restic_backup" "locked" {
  name          = "locked"
  repository    = %q
  password_file = %q
  restic_path   = %q
  paths         = ["/srv/lockdata"]
  schedule      = "*-01-01 00:00:00"
  keep {
    last = 5
  }
  prune = true
  %s
  %s
}
`, repo, pwFile, resticPath, extra, acctest.VMSSH(vm))
	}
	// holdLock makes a real restic hold the repository's exclusive lock for
	// secs seconds: `key passwd` takes it, then waits for the new password
	// on a stdin that stays open until sleep ends.
	holdLock := func(resticPath string, secs int) {
		acctest.VMRun(t, vm, fmt.Sprintf(`export RESTIC_REPOSITORY=%s RESTIC_PASSWORD_FILE=%s
setsid sh -c 'sleep %d | %s key passwd' >/dev/null 2>&1 < /dev/null &
for i in $(seq 100); do [ -n "$(ls %[1]s/locks 2>/dev/null)" ] && exit 0; sleep 0.2; done
echo "no lock taken" >&2; exit 1`, repo, pwFile, secs, resticPath))
	}
	// run starts the service as the timer would and waits for its end.
	run := func() string {
		return acctest.VMRun(t, vm, "systemctl start "+unit+".service 2>&1 || true; systemctl show -p Result -p ExecMainStatus "+unit+".service")
	}
	release := func() {
		acctest.VMRun(t, vm, fmt.Sprintf(`pkill -f '[k]ey passwd' || true; sleep 1
RESTIC_REPOSITORY=%s RESTIC_PASSWORD_FILE=%s /usr/local/bin/restic unlock -q`, repo, pwFile))
	}
	addr := "homelab_restic_backup.locked"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			out := acctest.VMRun(t, vm, "ls /etc/systemd/system/"+unit+".service 2>&1 || true; ls "+repo+"/config")
			if !strings.Contains(out, "No such file") {
				return fmt.Errorf("units left after destroy:\n%s", out)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: config("/usr/local/bin/restic", ""),
		}, {
			// A run that starts while another restic holds the lock for 20 s
			// waits for it instead of failing.
			PreConfig: func() {
				holdLock("/usr/local/bin/restic", 20)
				if out := run(); !strings.Contains(out, "Result=success") {
					t.Fatalf("the run did not wait for the lock:\n%s\njournal:\n%s", out,
						acctest.VMRun(t, vm, "journalctl -u "+unit+".service -n 12 --no-pager -o cat || true"))
				}
			},
			Config: config("/usr/local/bin/restic", ""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_result"), knownvalue.StringExact("success")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("restic_version"), knownvalue.StringExact(testbed.ResticVersion)),
			},
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "grep -c -- '--retry-lock 10m' /etc/systemd/system/"+unit+".service || true"); out != "2" {
					return fmt.Errorf("backup and forget should both pass --retry-lock 10m (found on %s lines)", out)
				}
				return nil
			},
		}, {
			// A lock held longer than retry_lock: restic gives up with its
			// exit status 11, and last_result says why.
			Config: config("/usr/local/bin/restic", `retry_lock = "3s"`),
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "grep -c -- '--retry-lock 3s' /etc/systemd/system/"+unit+".service || true"); out != "2" {
					return fmt.Errorf("the units were not rewritten with --retry-lock 3s (%s lines)", out)
				}
				holdLock("/usr/local/bin/restic", 60)
				run()
				return nil
			},
		}, {
			Config: config("/usr/local/bin/restic", `retry_lock = "3s"`),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_result"), knownvalue.StringRegexp(regexp.MustCompile(
					`^failed: exit-code/11: unable to create lock in backend: repository is already locked exclusively by PID \d+`))),
			},
		}, {
			// Debian's restic 0.14 has no --retry-lock: the units are
			// written without it, and its failure (exit 1) is explained too.
			PreConfig: release,
			Config:    config("/usr/bin/restic", ""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("restic_version"), knownvalue.StringRegexp(regexp.MustCompile(`^0\.14\.`))),
			},
			Check: func(*terraform.State) error {
				if out := acctest.VMRun(t, vm, "grep -c -- '--retry-lock' /etc/systemd/system/"+unit+".service || true"); out != "0" {
					return fmt.Errorf("restic 0.14 cannot take --retry-lock, the unit has it on %s lines", out)
				}
				holdLock("/usr/bin/restic", 60)
				run()
				return nil
			},
		}, {
			Config: config("/usr/bin/restic", ""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("last_result"), knownvalue.StringRegexp(regexp.MustCompile(
					`^failed: exit-code/1: unable to create lock in backend: repository is already locked exclusively by PID \d+.*unlock`))),
			},
			Check: func(*terraform.State) error {
				release()
				// The data is intact: the repository checks clean and the
				// snapshot restores byte for byte.
				out := acctest.VMRun(t, vm, fmt.Sprintf(`set -e
export RESTIC_REPOSITORY=%s RESTIC_PASSWORD_FILE=%s
/usr/local/bin/restic check -q
/usr/local/bin/restic restore latest -q --target /tmp/lock-restore
cd /srv/lockdata && sha256sum photo.jpg notes.txt > /tmp/lock-sums
cd /tmp/lock-restore/srv/lockdata && sha256sum -c /tmp/lock-sums`, repo, pwFile))
				if strings.Count(out, ": OK") != 2 {
					return fmt.Errorf("restored data differs:\n%s", out)
				}
				return nil
			},
		}},
	})
}
