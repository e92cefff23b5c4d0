package systemd

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRenderFormat(t *testing.T) {
	f, err := Render(Unit{
		Name:        "homelab-restic-media",
		Description: "Restic backup of /srv/media (100% of it)",
		ExecStart: [][]string{
			{"/usr/bin/restic", "backup", "--tag", "homelab", "/srv/media", "/srv/my photos"},
			{"restic", "forget", "--prune", "--keep-daily", "7"},
		},
		Environment:        map[string]string{"RESTIC_REPOSITORY": "sftp:backup@nas:/srv/restic", "RESTIC_PASSWORD": `pa"ss$word\`},
		OnCalendar:         []string{"*-*-* 02:00:00", "Sun 12:00"},
		RandomizedDelaySec: "30min",
		User:               "backup",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantService := `# Managed by terraform-provider-homelab: changes made here are overwritten.
[Unit]
Description=Restic backup of /srv/media (100%% of it)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=backup
EnvironmentFile=/etc/homelab/homelab-restic-media.env
ExecStart=/usr/bin/restic backup --tag homelab /srv/media "/srv/my photos"
ExecStart=restic forget --prune --keep-daily 7
`
	wantTimer := `# Managed by terraform-provider-homelab: changes made here are overwritten.
[Unit]
Description=Restic backup of /srv/media (100%% of it)

[Timer]
OnCalendar=*-*-* 02:00:00
OnCalendar=Sun 12:00
Persistent=true
RandomizedDelaySec=30min
Unit=homelab-restic-media.service

[Install]
WantedBy=timers.target
`
	wantEnv := `# Managed by terraform-provider-homelab: changes made here are overwritten.
RESTIC_PASSWORD="pa\"ss\$word\\"
RESTIC_REPOSITORY="sftp:backup@nas:/srv/restic"
`
	if f.Service != wantService {
		t.Errorf("service:\n%s\nwant:\n%s", f.Service, wantService)
	}
	if f.Timer != wantTimer {
		t.Errorf("timer:\n%s\nwant:\n%s", f.Timer, wantTimer)
	}
	if f.Env != wantEnv {
		t.Errorf("env:\n%s\nwant:\n%s", f.Env, wantEnv)
	}
}

func TestRenderMinimal(t *testing.T) {
	f, err := Render(Unit{Name: "job", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}, AccuracySec: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Service, "Description=") || strings.Contains(f.Service, "User=") || strings.Contains(f.Timer, "RandomizedDelaySec") {
		t.Errorf("unset options rendered:\n%s\n%s", f.Service, f.Timer)
	}
	if !strings.Contains(f.Timer, "\nAccuracySec=1s\n") || !strings.Contains(f.Service, "\nEnvironmentFile=/etc/homelab/job.env\n") {
		t.Errorf("missing lines:\n%s\n%s", f.Service, f.Timer)
	}
	if f.Env != header {
		t.Errorf("env without variables: %q", f.Env)
	}
}

func TestQuoteExecWord(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"/usr/bin/restic":  "/usr/bin/restic",
		"--keep-daily=7":   "--keep-daily=7",
		"user@host:path,x": "user@host:path,x",
		"":                 `""`,
		"two words":        `"two words"`,
		`"`:                `"\""`,
		`'`:                `"'"`,
		`back\slash`:       `"back\\slash"`,
		"$HOME":            `"$$HOME"`,
		"${HOME}":          `"$${HOME}"`,
		"100%":             `"100%%"`,
		"%n":               `"%%n"`,
		";":                `";"`,
		`\;`:               `"\\;"`,
		"new\nline":        `"new\nline"`,
		"tab\t":            `"tab\t"`,
		"\r\x01\x7f":       `"\x0d\x01\x7f"`,
		"é":                `"é"`,
		"#x":               `"#x"`,
	} {
		if got := quoteExecWord(in); got != want {
			t.Errorf("quoteExecWord(%q) = %s, want %s", in, got, want)
		}
	}
}

// unquoteExecLine reads a command line the way systemd does for the words
// quoteExecWord writes: words split at unquoted whitespace, double quotes
// with C escapes, then "%%" -> "%" (specifiers) and "$$" -> "$"
// (variables). It is a model for the fuzz test; the VM test
// (TestVMQuotingRoundTrip) checks the real thing.
func unquoteExecLine(line string) ([]string, error) {
	var words []string
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		var w strings.Builder
		quoted := line[i] == '"'
		if !quoted {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			w.WriteString(line[i : i+j])
			i += j
		} else {
			i++
			for {
				if i >= len(line) {
					return nil, errors.New("unterminated quote")
				}
				c := line[i]
				if c == '"' {
					i++
					break
				}
				if c != '\\' {
					w.WriteByte(c)
					i++
					continue
				}
				if i+1 >= len(line) {
					return nil, errors.New("trailing backslash")
				}
				switch e := line[i+1]; e {
				case '\\', '"':
					w.WriteByte(e)
					i += 2
				case 'n':
					w.WriteByte('\n')
					i += 2
				case 't':
					w.WriteByte('\t')
					i += 2
				case 'x':
					n, err := strconv.ParseUint(line[i+2:i+4], 16, 8)
					if err != nil {
						return nil, err
					}
					w.WriteByte(byte(n))
					i += 4
				default:
					return nil, errors.New("unknown escape")
				}
			}
			if i < len(line) && line[i] != ' ' {
				return nil, errors.New("quoted word runs into the next")
			}
		}
		s := w.String()
		if strings.Count(s, "%")%2 != 0 || strings.Count(s, "$")%2 != 0 {
			return nil, errors.New("lone % or $")
		}
		s = strings.ReplaceAll(strings.ReplaceAll(s, "%%", "%"), "$$", "$")
		if !quoted && (s == ";" || s == `\;` || strings.ContainsAny(s, `"'\`)) {
			return nil, errors.New("unquoted word that systemd reads differently")
		}
		words = append(words, s)
	}
	return words, nil
}

func FuzzQuoteExecWord(f *testing.F) {
	for _, s := range []string{"", "a b", `"'\`, "$x%y", ";", `\;`, "\n\t\r", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return
		}
		line, err := execLine([]string{"/bin/echo", s, "end"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("line break in %q", line)
		}
		got, err := unquoteExecLine(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if len(got) != 3 || got[1] != s || got[2] != "end" {
			t.Fatalf("%q read back as %q", line, got)
		}
	})
}

func TestRenderRejects(t *testing.T) {
	ok := func() Unit {
		return Unit{Name: "job", ExecStart: [][]string{{"/bin/true"}}, OnCalendar: []string{"daily"}}
	}
	for name, mutate := range map[string]func(*Unit){
		"empty name":               func(u *Unit) { u.Name = "" },
		"slash in name":            func(u *Unit) { u.Name = "a/b" },
		"space in name":            func(u *Unit) { u.Name = "a b" },
		"name starting with dash":  func(u *Unit) { u.Name = "-job" },
		"name starting with dot":   func(u *Unit) { u.Name = ".job" },
		"template name":            func(u *Unit) { u.Name = "job@" },
		"two @":                    func(u *Unit) { u.Name = "a@b@c" },
		"long name":                func(u *Unit) { u.Name = strings.Repeat("a", 248) },
		"no command":               func(u *Unit) { u.ExecStart = nil },
		"empty argv":               func(u *Unit) { u.ExecStart = [][]string{{}} },
		"relative program":         func(u *Unit) { u.ExecStart = [][]string{{"bin/true"}} },
		"unclean program":          func(u *Unit) { u.ExecStart = [][]string{{"/bin/../bin/true"}} },
		"prefix in program":        func(u *Unit) { u.ExecStart = [][]string{{"-true"}} },
		"variable in program":      func(u *Unit) { u.ExecStart = [][]string{{"$PROG"}} },
		"NUL in argument":          func(u *Unit) { u.ExecStart = [][]string{{"/bin/echo", "a\x00b"}} },
		"bad UTF-8 in argument":    func(u *Unit) { u.ExecStart = [][]string{{"/bin/echo", "\xff"}} },
		"no schedule":              func(u *Unit) { u.OnCalendar = nil },
		"blank schedule":           func(u *Unit) { u.OnCalendar = []string{" "} },
		"newline in schedule":      func(u *Unit) { u.OnCalendar = []string{"daily\nExecStart=/bin/evil"} },
		"newline in description":   func(u *Unit) { u.Description = "x\n[Service]" },
		"continued description":    func(u *Unit) { u.Description = `ends in \` },
		"bad delay":                func(u *Unit) { u.RandomizedDelaySec = "1h\nUser=root" },
		"bad accuracy":             func(u *Unit) { u.AccuracySec = "1s;x" },
		"bad user":                 func(u *Unit) { u.User = "root\nUser=x" },
		"user starting with dash":  func(u *Unit) { u.User = "-x" },
		"bad env name":             func(u *Unit) { u.Environment = map[string]string{"A-B": "x"} },
		"env name with digit":      func(u *Unit) { u.Environment = map[string]string{"1A": "x"} },
		"empty env name":           func(u *Unit) { u.Environment = map[string]string{"": "x"} },
		"control char in env":      func(u *Unit) { u.Environment = map[string]string{"A": "x\ry"} },
		"bad UTF-8 in env":         func(u *Unit) { u.Environment = map[string]string{"A": "\xff"} },
		"equals sign in env name":  func(u *Unit) { u.Environment = map[string]string{"A=B": "x"} },
		"newline in env name":      func(u *Unit) { u.Environment = map[string]string{"A\nB": "x"} },
		"percent in user":          func(u *Unit) { u.User = "%u" },
		"semicolon as the program": func(u *Unit) { u.ExecStart = [][]string{{";"}} },
	} {
		u := ok()
		mutate(&u)
		_, err := Render(u)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	if _, err := Render(ok()); err != nil {
		t.Fatal(err)
	}
	// A secret in a refused value never shows in the error.
	u := ok()
	u.Environment = map[string]string{"PASSWORD": "secret\x01value"}
	if _, err := Render(u); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error reveals the value: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"homelab-restic-media", "a", "job@instance", "a:b_c.d-e", "0job", strings.Repeat("a", 247)} {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q): %v", n, err)
		}
	}
}
