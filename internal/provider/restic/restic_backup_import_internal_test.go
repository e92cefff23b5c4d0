package restic

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/systemd"
)

// readBack renders the units of m as installed on a host and reads them
// into a model that knows only the name and the restic version, as an
// import does.
func readBack(t *testing.T, m resticBackupModel) resticBackupModel {
	t.Helper()
	main, check, known, diags := m.units(context.Background(), "the-password")
	if !known || diags.HasError() {
		t.Fatalf("units: %v", diags)
	}
	parse := func(u systemd.Unit) systemd.Unit {
		f, err := systemd.Render(u)
		if err != nil {
			t.Fatal(err)
		}
		p, err := systemd.Parse(u.Name, f)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pm := parse(main)
	var pc *systemd.Unit
	if check != nil {
		c := parse(*check)
		pc = &c
	}
	got := resticBackupModel{Name: m.Name, ResticVersion: m.ResticVersion}
	got.Repository, got.Password, got.PasswordFile, got.ResticPath = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	got.Options, got.Environment = types.MapNull(types.StringType), types.MapNull(types.StringType)
	got.Schedule, got.CheckSchedule, got.RetryLock = types.StringNull(), types.StringNull(), types.StringNull()
	if err := got.fromUnits(pm, pc); err != nil {
		t.Fatal(err)
	}
	return got
}

// Every setting the units hold reads back from them (what an import and
// every refresh see), and the password never does.
func TestBackupFromUnitsRoundTrip(t *testing.T) {
	list := func(s ...string) types.List { return tfhelp.StrList(s) }
	withAll := backupModel(types.StringValue("0.18.1"), "30m")
	withAll.Exclude, withAll.Tags = list("*.tmp", "/srv/media/cache dir"), list("homelab", "nightly $x")
	withAll.Options = types.MapValueMust(types.StringType, map[string]attr.Value{"sftp.command": types.StringValue("ssh -p 2222 backup@nas -s sftp")})
	withAll.Keep.Daily, withAll.Keep.Within = types.Int64Value(7), types.StringValue("1y6m")
	withAll.Schedule = types.StringValue("*-*-* 02:30:00")
	pruneOnly := backupModel(types.StringValue("0.14.0"), "10m")
	pruneOnly.Keep, pruneOnly.CheckSchedule = nil, types.StringNull()
	pruneOnly.Password, pruneOnly.PasswordFile = types.StringNull(), types.StringValue("/etc/restic.pass")
	pruneOnly.ResticPath = types.StringNull()
	plain := backupModel(types.StringValue("0.18.1"), "0")
	plain.Keep, plain.Prune, plain.CheckSchedule = nil, types.BoolValue(false), types.StringNull()
	plain.Repository = types.StringValue("rest:http://127.0.0.1:8000/repo/")
	for what, m := range map[string]resticBackupModel{"everything": withAll, "prune only, 0.14, password file": pruneOnly, "plain, retry_lock 0": plain} {
		got := readBack(t, m)
		for attr, pair := range map[string][2]attr.Value{
			"repository": {got.Repository, m.Repository}, "password_file": {got.PasswordFile, m.PasswordFile},
			"restic_path": {got.ResticPath, m.ResticPath}, "options": {got.Options, m.Options},
			"paths": {got.Paths, m.Paths}, "exclude": {got.Exclude, m.Exclude}, "tags": {got.Tags, m.Tags},
			"schedule": {got.Schedule, m.Schedule}, "check_schedule": {got.CheckSchedule, m.CheckSchedule},
			"prune": {got.Prune, m.Prune}, "retry_lock": {got.RetryLock, m.RetryLock},
		} {
			if !pair[0].Equal(pair[1]) {
				t.Errorf("%s: %s read back as %v, want %v", what, attr, pair[0], pair[1])
			}
		}
		if (got.Keep == nil) != (m.Keep == nil) || got.Keep != nil && *got.Keep != *m.Keep {
			t.Errorf("%s: keep read back as %+v, want %+v", what, got.Keep, m.Keep)
		}
		if !got.Password.IsNull() || !got.Environment.IsNull() {
			t.Errorf("%s: a secret was read back: password %v, environment %v", what, got.Password, got.Environment)
		}
		// The units of what was read are the units installed.
		got.Password = m.Password
		a, ac, _, _ := m.units(context.Background(), "")
		b, bc, _, _ := got.units(context.Background(), "")
		ha, _ := unitHashes(&a, ac)
		hb, _ := unitHashes(&b, bc)
		if len(ha) != len(hb) {
			t.Errorf("%s: units differ: %v %v", what, ha, hb)
		}
		for k := range ha {
			if ha[k] != hb[k] {
				t.Errorf("%s: %s differs after reading back", what, k)
			}
		}
	}
}

// Units that are not ones units() writes are refused, not half read.
func TestBackupFromUnitsRefuses(t *testing.T) {
	base := func() systemd.Unit {
		return systemd.Unit{Name: "homelab-restic-x", OnCalendar: []string{"daily"},
			Environment: map[string]string{"RESTIC_REPOSITORY": "/srv/r"},
			ExecStart:   [][]string{{"restic", "backup", "--", "/srv"}}}
	}
	for what, edit := range map[string]func(*systemd.Unit){
		"other program": func(u *systemd.Unit) { u.ExecStart[0] = []string{"/bin/tar", "cf", "/x", "/srv"} },
		"unknown flag": func(u *systemd.Unit) {
			u.ExecStart[0] = []string{"restic", "backup", "--one-file-system", "--", "/srv"}
		},
		"no paths":      func(u *systemd.Unit) { u.ExecStart[0] = []string{"restic", "backup", "--"} },
		"no repository": func(u *systemd.Unit) { u.Environment = map[string]string{} },
		"two schedules": func(u *systemd.Unit) { u.OnCalendar = []string{"daily", "weekly"} },
		"third command": func(u *systemd.Unit) {
			u.ExecStart = append(u.ExecStart, []string{"restic", "prune"}, []string{"restic", "check"})
		},
		"forget of another": func(u *systemd.Unit) {
			u.ExecStart = append(u.ExecStart, []string{"/opt/restic", "forget", "--keep-last", "1"})
		},
		"bad keep": func(u *systemd.Unit) {
			u.ExecStart = append(u.ExecStart, []string{"restic", "forget", "--keep-last", "x"})
		},
	} {
		u := base()
		edit(&u)
		m := resticBackupModel{accessModel: accessModel{Repository: types.StringNull()}}
		if err := m.fromUnits(u, nil); !errors.Is(err, errNotOurUnits) {
			t.Errorf("%s: fromUnits = %v, want errNotOurUnits", what, err)
		}
	}
	u := base()
	m := resticBackupModel{accessModel: accessModel{Repository: types.StringNull()}}
	if err := m.fromUnits(u, nil); err != nil {
		t.Errorf("base: %v", err)
	}
}
