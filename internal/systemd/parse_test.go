package systemd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseRoundTrip reads back what Render writes, words that need every
// kind of quoting included.
func TestParseRoundTrip(t *testing.T) {
	odd := []string{"plain", "", "two words", `"`, `'`, `back\slash`, "$HOME", "${HOME}", "100%", "%n", ";", `\;`,
		"new\nline", "tab\t", "\r\x01\x7f", "é", "#x", "--exclude=*.tmp"}
	for _, u := range []Unit{{
		Name:        "homelab-restic-media",
		Description: "Restic backup of /srv/media (100% of it)",
		ExecStart: [][]string{
			{"/usr/bin/restic", "backup", "--tag", "homelab", "/srv/media", "/srv/my photos"},
			{"restic", "forget", "--prune", "--keep-daily", "7"},
			append([]string{"/bin/echo"}, odd...),
		},
		Environment: map[string]string{"RESTIC_REPOSITORY": "sftp:backup@nas:/srv/restic", "RESTIC_PASSWORD": "pa\"ss$word\\`x\nline2\ttab",
			"EMPTY": ""},
		OnCalendar:         []string{"*-*-* 02:00:00", "Sun 12:00", "100%"},
		RandomizedDelaySec: "30min",
		AccuracySec:        "1s",
		User:               "backup",
	}, {
		Name: "job", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}, Environment: map[string]string{},
	}} {
		f, err := Render(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(u.Name, f)
		if err != nil {
			t.Fatalf("Parse of the rendered %s: %v\n%s\n%s", u.Name, err, f.Service, f.Timer)
		}
		if !reflect.DeepEqual(got, u) {
			t.Errorf("Parse(Render(u)):\n got %#v\nwant %#v", got, u)
		}
	}
}

// TestParseRecorded reads the files the provider installed for a backup
// (homelab_restic_backup with keep, tags, excludes and --retry-lock, as
// found in /etc/systemd/system and /etc/homelab on the test VM).
func TestParseRecorded(t *testing.T) {
	f := Files{Service: `# Managed by terraform-provider-homelab: changes made here are overwritten.
[Unit]
Description=restic backup data (homelab provider)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile=/etc/homelab/homelab-restic-data.env
ExecStart=/usr/local/bin/restic backup --retry-lock 10m --tag homelab --tag test --exclude "*.tmp" -- /srv/data
ExecStart=/usr/local/bin/restic forget --retry-lock 10m --keep-last 3
`, Timer: `# Managed by terraform-provider-homelab: changes made here are overwritten.
[Unit]
Description=restic backup data (homelab provider)

[Timer]
OnCalendar=hourly
Persistent=true
Unit=homelab-restic-data.service

[Install]
WantedBy=timers.target
`, Env: `# Managed by terraform-provider-homelab: changes made here are overwritten.
RESTIC_PASSWORD="pw-0123"
RESTIC_REPOSITORY="/var/backups/restic"
`}
	u, err := Parse("homelab-restic-data", f)
	if err != nil {
		t.Fatal(err)
	}
	want := Unit{Name: "homelab-restic-data", Description: "restic backup data (homelab provider)",
		ExecStart: [][]string{
			{"/usr/local/bin/restic", "backup", "--retry-lock", "10m", "--tag", "homelab", "--tag", "test", "--exclude", "*.tmp", "--", "/srv/data"},
			{"/usr/local/bin/restic", "forget", "--retry-lock", "10m", "--keep-last", "3"},
		},
		Environment: map[string]string{"RESTIC_PASSWORD": "pw-0123", "RESTIC_REPOSITORY": "/var/backups/restic"},
		OnCalendar:  []string{"hourly"}}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("got %#v\nwant %#v", u, want)
	}
	// Rendering it again gives the same files: the hashes in state match.
	again, err := Render(u)
	if err != nil || again != f {
		t.Errorf("Render(Parse(files)) differs: %v\n%s\n%s", err, again.Service, again.Timer)
	}
}

func TestParseRefuses(t *testing.T) {
	base := Files{Service: "[Service]\nExecStart=/bin/true\n", Timer: "[Timer]\nOnCalendar=daily\n", Env: ""}
	for what, f := range map[string]Files{
		"no command":       {Service: "[Service]\nType=oneshot\n", Timer: base.Timer},
		"no schedule":      {Service: base.Service, Timer: "[Timer]\nPersistent=true\n"},
		"variable":         {Service: "[Service]\nExecStart=/bin/echo $HOME\n", Timer: base.Timer},
		"specifier":        {Service: "[Service]\nExecStart=/bin/echo %n\n", Timer: base.Timer},
		"prefix":           {Service: "[Service]\nExecStart=-/bin/true\n", Timer: base.Timer},
		"unterminated":     {Service: "[Service]\nExecStart=/bin/echo \"a b\n", Timer: base.Timer},
		"continuation":     {Service: "[Service]\nExecStart=/bin/echo \\\n", Timer: base.Timer},
		"unquoted env":     {Service: base.Service, Timer: base.Timer, Env: "A=b\n"},
		"unclosed env":     {Service: base.Service, Timer: base.Timer, Env: "A=\"b\n"},
		"garbage line":     {Service: "[Service]\nthis is not a setting\n", Timer: base.Timer},
		"bad env variable": {Service: base.Service, Timer: base.Timer, Env: "1A=\"b\"\n"},
	} {
		if _, err := Parse("job", f); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %v, want ErrInvalid", what, err)
		} else if strings.Contains(err.Error(), "\"b") {
			t.Errorf("%s: the error quotes an environment value: %v", what, err)
		}
	}
	if _, err := Parse("job", base); err != nil {
		t.Errorf("base: %v", err)
	}
}
