package restic

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/systemd"
)

var _ resource.ResourceWithImportState = (*resticBackupResource)(nil)

// errNotOurUnits says that installed units are not ones units() writes.
var errNotOurUnits = errors.New("not units this resource writes")

// ImportState takes "name", "host:name" or "host:port:name"; Read then
// reads every setting back from the installed units.
func (r *resticBackupResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := connection.ParseImportID(req.ID)
	if err == nil && !backupNameRe.MatchString(id.Name) {
		err = fmt.Errorf("%q is not a backup name (lowercase letters, digits, '.', '_' and '-'; the units are %s<name>.service and .timer)", id.Name, unitPrefix)
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to import restic backup "+req.ID,
			err.Error()+"\n\nExample: terraform import homelab_restic_backup.data nas.lan:data (the units homelab-restic-data.* on nas.lan)")
		return
	}
	m := resticBackupModel{Name: types.StringValue(id.Name), RunNow: types.BoolValue(false),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})}}
	m.SSH = id.SSHForImport()
	m.Paths, m.Exclude, m.Tags = types.ListNull(types.StringType), types.ListNull(types.StringType), types.ListNull(types.StringType)
	m.Environment, m.Options = types.MapNull(types.StringType), types.MapNull(types.StringType)
	m.Units = types.MapNull(types.StringType)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// fromUnits sets the settings of m from the installed units (check is nil
// when the check units are not installed): what the host runs, so that
// the plan shows any difference from the configuration. m holds the state
// before: secrets the units hold (the password, environment values) are
// never read into state, and spellings that mean what the units say are
// kept. An error wrapping errNotOurUnits says the units are not ones this
// resource writes.
func (m *resticBackupModel) fromUnits(main systemd.Unit, check *systemd.Unit) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errNotOurUnits, fmt.Sprintf(format, args...))
	}
	if len(main.ExecStart) == 0 || len(main.ExecStart) > 2 {
		return bad("%d commands in %s.service, want the backup and at most one forget or prune", len(main.ExecStart), main.Name)
	}
	if len(main.OnCalendar) != 1 {
		return bad("%d OnCalendar= lines in %s.timer, want one", len(main.OnCalendar), main.Name)
	}
	backup := main.ExecStart[0]
	if len(backup) < 2 || backup[1] != "backup" {
		return bad("the first command of %s.service is not restic backup", main.Name)
	}
	bin := backup[0]
	// opts reads the options units() puts after every subcommand.
	var options map[string]string
	retryLock := ""
	opts := func(argv []string, i int, first bool) (int, bool, error) {
		if i+1 >= len(argv) {
			return i, false, nil
		}
		switch argv[i] {
		case "-o":
			k, v, ok := strings.Cut(argv[i+1], "=")
			if !ok {
				return i, false, bad("option %q is not key=value", argv[i+1])
			}
			if first {
				if options == nil {
					options = map[string]string{}
				}
				options[k] = v
			} else if options[k] != v {
				return i, false, bad("the commands of %s.service have different options", main.Name)
			}
			return i + 2, true, nil
		case "--retry-lock":
			if first {
				retryLock = argv[i+1]
			} else if retryLock != argv[i+1] {
				return i, false, bad("the commands of %s.service have different --retry-lock", main.Name)
			}
			return i + 2, true, nil
		}
		return i, false, nil
	}
	var paths, exclude, tags []string
	i := 2
	for i < len(backup) {
		n, ok, err := opts(backup, i, true)
		if err != nil {
			return err
		}
		if ok {
			i = n
			continue
		}
		switch {
		case backup[i] == "--":
			paths = backup[i+1:]
			i = len(backup)
		case backup[i] == "--tag" && i+1 < len(backup):
			tags = append(tags, backup[i+1])
			i += 2
		case backup[i] == "--exclude" && i+1 < len(backup):
			exclude = append(exclude, backup[i+1])
			i += 2
		default:
			return bad("restic backup argument %q is not one this resource writes", backup[i])
		}
	}
	if len(paths) == 0 {
		return bad("restic backup in %s.service names no paths after \"--\"", main.Name)
	}
	var keep *resticKeepSpec
	prune := false
	if len(main.ExecStart) == 2 {
		after := main.ExecStart[1]
		if len(after) < 2 || after[0] != bin || (after[1] != "forget" && after[1] != "prune") {
			return bad("the second command of %s.service is not %s forget or prune", main.Name, bin)
		}
		i := 2
		for i < len(after) {
			n, ok, err := opts(after, i, false)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			i = n
		}
		if after[1] == "prune" {
			if i != len(after) {
				return bad("restic prune argument %q is not one this resource writes", after[i])
			}
			prune = true
		} else {
			keep = &resticKeepSpec{Last: types.Int64Null(), Hourly: types.Int64Null(), Daily: types.Int64Null(), Weekly: types.Int64Null(),
				Monthly: types.Int64Null(), Yearly: types.Int64Null(), Within: types.StringNull()}
			counts := map[string]*types.Int64{"--keep-last": &keep.Last, "--keep-hourly": &keep.Hourly, "--keep-daily": &keep.Daily,
				"--keep-weekly": &keep.Weekly, "--keep-monthly": &keep.Monthly, "--keep-yearly": &keep.Yearly}
			for i < len(after) {
				a := after[i]
				switch {
				case a == "--prune":
					prune = true
					i++
				case a == "--keep-within" && i+1 < len(after):
					keep.Within = types.StringValue(after[i+1])
					i += 2
				case counts[a] != nil && i+1 < len(after):
					n, err := strconv.ParseInt(after[i+1], 10, 64)
					if err != nil {
						return bad("%s %q is not a number", a, after[i+1])
					}
					*counts[a] = types.Int64Value(n)
					i += 2
				default:
					return bad("restic forget argument %q is not one this resource writes", a)
				}
			}
		}
	}
	repo, ok := main.Environment["RESTIC_REPOSITORY"]
	if !ok {
		return bad("the environment of %s names no RESTIC_REPOSITORY", main.Name)
	}
	checkSchedule := types.StringNull()
	if check != nil {
		if len(check.ExecStart) != 1 || len(check.OnCalendar) != 1 {
			return bad("%s.service is not one restic check on one schedule", check.Name)
		}
		c := check.ExecStart[0]
		if len(c) < 2 || c[0] != bin || c[1] != "check" {
			return bad("%s.service does not run %s check", check.Name, bin)
		}
		for i := 2; i < len(c); {
			n, ok, err := opts(c, i, false)
			if err != nil {
				return err
			}
			if !ok {
				return bad("restic check argument %q is not one this resource writes", c[i])
			}
			i = n
		}
		checkSchedule = types.StringValue(check.OnCalendar[0])
	}

	// Everything parsed: set the model.
	if m.Repository.IsNull() || !restic.SameLocation(m.Repository.ValueString(), repo) {
		m.Repository = types.StringValue(repo)
	}
	if bin != "restic" || !m.ResticPath.IsNull() {
		m.ResticPath = types.StringValue(bin)
	}
	if pf, ok := main.Environment["RESTIC_PASSWORD_FILE"]; ok {
		m.PasswordFile, m.Password = types.StringValue(pf), types.StringNull()
	} else {
		m.PasswordFile = types.StringNull()
	}
	if options != nil {
		m.Options = tfhelp.StringMap(options)
	} else if len(m.Options.Elements()) > 0 {
		m.Options = types.MapNull(types.StringType)
	}
	switch {
	case retryLock != "":
		m.RetryLock = types.StringValue(retryLock)
	case m.RetryLock.IsNull() && restic.SupportsRetryLock(m.ResticVersion.ValueString()):
		// Imported units of a restic that can wait for locks, without
		// --retry-lock: they fail at once.
		m.RetryLock = types.StringValue("0")
	case m.RetryLock.IsNull():
		// An older restic cannot wait: the units are the same whatever
		// the setting; take the default.
		m.RetryLock = types.StringValue("10m")
	}
	m.Paths = tfhelp.StrList(paths)
	m.Exclude, m.Tags = tfhelp.StrList(exclude), tfhelp.StrList(tags)
	// Render trims the schedules: a configured " daily" is "daily".
	if strings.TrimSpace(m.Schedule.ValueString()) != main.OnCalendar[0] {
		m.Schedule = types.StringValue(main.OnCalendar[0])
	}
	if checkSchedule.IsNull() || strings.TrimSpace(m.CheckSchedule.ValueString()) != checkSchedule.ValueString() {
		m.CheckSchedule = checkSchedule
	}
	m.Keep = keep
	m.Prune = types.BoolValue(prune)
	return nil
}
