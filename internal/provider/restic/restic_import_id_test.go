package restic

import (
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
)

func TestParseRepoImportID(t *testing.T) {
	for in, want := range map[string]connection.ImportID{
		// Repositories on the provider's default host (or here).
		"/srv/restic":                       {Name: "/srv/restic"},
		"local:/srv/restic":                 {Name: "local:/srv/restic"},
		"rest:http://10.0.0.5:8000/nas/":    {Name: "rest:http://10.0.0.5:8000/nas/"},
		"sftp:backup@nas:/srv/restic":       {Name: "sftp:backup@nas:/srv/restic"},
		"sftp://backup@nas:2222//srv/r":     {Name: "sftp://backup@nas:2222//srv/r"},
		"s3:s3.amazonaws.com/bucket/restic": {Name: "s3:s3.amazonaws.com/bucket/restic"},
		// On a host.
		"nas.lan:/srv/restic":                       {Host: "nas.lan", Name: "/srv/restic"},
		"nas.lan:2222:/srv/restic":                  {Host: "nas.lan", Port: 2222, Name: "/srv/restic"},
		"nas.lan:rest:https://backup.lan:8000/nas/": {Host: "nas.lan", Name: "rest:https://backup.lan:8000/nas/"},
		"nas.lan:2222:rest:https://backup.lan/nas/": {Host: "nas.lan", Port: 2222, Name: "rest:https://backup.lan/nas/"},
		"[fd00::5]:22:sftp:backup@nas:/srv/restic":  {Host: "fd00::5", Port: 22, Name: "sftp:backup@nas:/srv/restic"},
		"127.0.0.1:40022:local:/var/backups/restic": {Host: "127.0.0.1", Port: 40022, Name: "local:/var/backups/restic"},
	} {
		got, err := parseRepoImportID(in)
		if err != nil || got != want {
			t.Errorf("parseRepoImportID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "nas:", ":/srv/r", "nas.lan:rest:http://backup:s3cret@backup.lan/nas/", "rest:http://backup:s3cret@backup.lan/nas/"} {
		if _, err := parseRepoImportID(bad); err == nil {
			t.Errorf("parseRepoImportID(%q) accepted", bad)
		}
	}
}

// A backup's import ID is the job name, on a host or the default one.
func TestParseBackupImportID(t *testing.T) {
	for in, want := range map[string]connection.ImportID{
		"data":                 {Name: "data"},
		"nas.lan:data":         {Host: "nas.lan", Name: "data"},
		"127.0.0.1:2222:media": {Host: "127.0.0.1", Port: 2222, Name: "media"},
	} {
		got, err := connection.ParseImportID(in)
		if err != nil || got != want || !backupNameRe.MatchString(got.Name) {
			t.Errorf("parseImportID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
