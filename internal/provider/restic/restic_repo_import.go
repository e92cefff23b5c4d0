package restic

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/restic"
)

var _ resource.ResourceWithImportState = (*resticRepoResource)(nil)

// resticBackends are the prefixes of restic's repository strings: an
// import ID that starts with one is a repository on the default host, not
// host:name.
var resticBackends = []string{"local:", "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"}

// parseRepoImportID reads a repository import ID: "REPOSITORY" (restic
// runs on the provider's default host, or here when it names none),
// "host:REPOSITORY" or "host:port:REPOSITORY". A local path starts with "/"
// and a backend with its prefix, so "rest:http://..." and "sftp:u@h:/p"
// are repositories, not hosts named rest and sftp.
func parseRepoImportID(id string) (connection.ImportID, error) {
	out, err := connection.ImportID{Name: id}, error(nil)
	if !strings.HasPrefix(id, "/") && !slices.ContainsFunc(resticBackends, func(b string) bool { return strings.HasPrefix(id, b) }) {
		out, err = connection.ParseImportID(id)
		if err != nil {
			return out, err
		}
	}
	if restic.RedactRepository(out.Name) != out.Name {
		return out, fmt.Errorf("the repository %s holds a password, which would be stored in state in clear text: import it without the password (rest-server credentials go in environment)",
			restic.RedactRepository(out.Name))
	}
	return out, nil
}

// ImportState records the repository and where restic runs, and nothing
// else: no secret is known at import. Read then checks that a repository
// is there without its password (restic tells "no repository" from "wrong
// password"); the attributes only the password can read stay null until
// the first apply, which opens it with the configured password.
func (r *resticRepoResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := parseRepoImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import restic repository "+restic.RedactRepository(req.ID),
			err.Error()+"\n\nExamples: terraform import homelab_restic_repo.r /srv/restic (restic on the provider's default host, or here), "+
				"nas.lan:/srv/restic, nas.lan:2222:rest:https://backup.lan:8000/nas/")
		return
	}
	var m resticRepoModel
	m.SSH = id.SSHForImport()
	m.Repository = types.StringValue(id.Name)
	m.Password, m.PasswordFile, m.ResticPath = types.StringNull(), types.StringNull(), types.StringNull()
	m.Environment, m.Options = types.MapNull(types.StringType), types.MapNull(types.StringType)
	m.PasswordWO, m.PasswordWOVersion = types.StringNull(), types.StringNull()
	m.ID, m.RepositoryID, m.ResticVersion, m.CheckResult = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	m.RepositoryVersion, m.SnapshotCount = types.Int64Null(), types.Int64Null()
	m.DestroyData, m.CheckOnRefresh = types.BoolValue(false), types.BoolValue(false)
	m.Timeouts = timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
