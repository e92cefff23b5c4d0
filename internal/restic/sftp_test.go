package restic

import (
	"strings"
	"testing"
)

func TestParseSFTP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sftpLocation
		ok   bool
	}{
		{"sftp:backup@nas:/srv/restic", sftpLocation{User: "backup", Host: "nas", Path: "/srv/restic"}, true},
		{"sftp:nas:/srv/restic", sftpLocation{Host: "nas", Path: "/srv/restic"}, true},
		{"sftp:u@[fd00::2]:/r", sftpLocation{User: "u", Host: "fd00::2", Path: "/r"}, true},
		{"sftp://u@nas:2222//srv/r", sftpLocation{User: "u", Host: "nas", Port: "2222", Path: "/srv/r"}, true},
		{"sftp://nas/rel", sftpLocation{Host: "nas", Path: "rel"}, true},
		{"sftp:nas", sftpLocation{}, false},
		{"rest:http://h/", sftpLocation{}, false},
		{"/srv/r", sftpLocation{}, false},
	} {
		got, ok := parseSFTP(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseSFTP(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSFTPServerCommand(t *testing.T) {
	c := &Client{}
	if got := c.sftpServerCommand(sftpLocation{User: "u", Host: "nas", Port: "2222"}); got != "ssh -p 2222 -l u nas -s sftp" {
		t.Errorf("default command = %q", got)
	}
	c.Repo.Options = map[string]string{"sftp.args": "-i /k -o BatchMode=yes"}
	if got := c.sftpServerCommand(sftpLocation{Host: "nas"}); got != "ssh -i /k -o 'BatchMode=yes' nas -s sftp" {
		t.Errorf("with sftp.args = %q", got)
	}
	c.Repo.Options = map[string]string{"sftp.command": "ssh -p 1 x@y -s sftp"}
	if got := c.sftpServerCommand(sftpLocation{Host: "nas"}); got != "ssh -p 1 x@y -s sftp" {
		t.Errorf("sftp.command = %q", got)
	}
}

func TestSFTPBatches(t *testing.T) {
	b := sftpRemoveBatch(`/srv/a "b"`)
	if !strings.HasSuffix(b, "rm \"/srv/a \\\"b\\\"/config\"\nrmdir \"/srv/a \\\"b\\\"\"\n") {
		t.Errorf("batch does not end by removing config and the directory (without '-'):\n%s", b[len(b)-200:])
	}
	if n := strings.Count(b, "-rmdir \"/srv/a \\\"b\\\"/data/"); n != 256 {
		t.Errorf("%d data subdirectories removed, want 256", n)
	}
	if !strings.Contains(sftpCheckBatch("/r"), "ls \"/r/config\"\n") {
		t.Error("check batch does not look for config")
	}
}
