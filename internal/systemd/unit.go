package systemd

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"
)

// Where the files of a unit live.
const (
	// UnitDir holds the service and timer files.
	UnitDir = "/etc/systemd/system"
	// EnvDir holds the environment files; it is created with mode 0700.
	EnvDir = "/etc/homelab"
)

// Modes of the installed files.
const (
	UnitFileMode = 0o644
	EnvFileMode  = 0o600
)

// maxNameLen keeps "NAME.service" within systemd's 255-character unit names.
const maxNameLen = 255 - len(".service")

// ErrInvalid is wrapped by every error that rejects a Unit, a unit name or
// a calendar specification, as opposed to a host that failed or could not
// be reached.
var ErrInvalid = errors.New("invalid")

// ErrNotFound is wrapped by Manager.Read's error when the unit is not
// installed: the host answered and none of its three files is there. A host
// that cannot be reached, sudo's refusal or a file that cannot be read is
// never ErrNotFound.
var ErrNotFound = errors.New("not installed")

// Unit is a oneshot service started by a timer.
type Unit struct {
	// Name is the unit base name: "homelab-restic-media" gives
	// homelab-restic-media.service and homelab-restic-media.timer. See
	// ValidateName.
	Name string
	// Description is the Description= of both units; optional.
	Description string
	// ExecStart is the argv of each ExecStart= line, in order. The service
	// is Type=oneshot, so the commands run one after the other and the
	// first that fails ends the run. argv[0] is an absolute path or a
	// program name that systemd looks up in its fixed search path.
	ExecStart [][]string
	// Environment is written to EnvDir/NAME.env (mode 0600, root) and
	// passed to every command through EnvironmentFile=. Secrets go here,
	// never in ExecStart. Keys are shell-style names.
	Environment map[string]string
	// OnCalendar are the timer's OnCalendar= lines (systemd.time(7)); at
	// least one. Manager.Install checks them with the host's systemd.
	OnCalendar []string
	// RandomizedDelaySec is the timer's RandomizedDelaySec= (a systemd
	// time span such as "30min"); optional.
	RandomizedDelaySec string
	// AccuracySec is the timer's AccuracySec=; optional, systemd's default
	// is 1min: the job starts up to a minute after its scheduled time.
	AccuracySec string
	// User runs the commands as this user (User=); optional, root when
	// empty. The environment file stays root's: systemd reads it before
	// dropping privileges.
	User string
}

// Files are the rendered contents of a Unit's three files.
type Files struct {
	Service, Timer, Env string
}

// ServicePath, TimerPath and EnvPath are where the files of the unit
// named name are installed.
func ServicePath(name string) string { return path.Join(UnitDir, name+".service") }
func TimerPath(name string) string   { return path.Join(UnitDir, name+".timer") }
func EnvPath(name string) string     { return path.Join(EnvDir, name+".env") }

// header starts every rendered file.
const header = "# Managed by terraform-provider-homelab: changes made here are overwritten.\n"

// ValidateName checks a unit base name: 1 to 247 characters of
// [a-zA-Z0-9:_.@-], not starting with "-" or "." (which commands would
// take for an option or files for hidden ones), and at most one "@",
// which must have characters on both sides (NAME@INSTANCE; a trailing "@"
// would make a template that cannot run by itself).
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w unit name: empty", ErrInvalid)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w unit name %q: longer than %d characters", ErrInvalid, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(":_.@-", c) >= 0:
		default:
			return fmt.Errorf("%w unit name %q: only letters, digits and \":_.@-\" are allowed", ErrInvalid, name)
		}
	}
	if name[0] == '-' || name[0] == '.' {
		return fmt.Errorf("%w unit name %q: must not start with %q", ErrInvalid, name, name[0])
	}
	if n := strings.Count(name, "@"); n > 1 || n == 1 && (name[0] == '@' || name[len(name)-1] == '@') {
		return fmt.Errorf("%w unit name %q: \"@\" may appear once, between a prefix and an instance", ErrInvalid, name)
	}
	return nil
}

// Render validates u and returns the contents of its three files.
func Render(u Unit) (Files, error) {
	if err := ValidateName(u.Name); err != nil {
		return Files{}, err
	}
	invalid := func(format string, args ...any) (Files, error) {
		return Files{}, fmt.Errorf("%w unit %s: %s", ErrInvalid, u.Name, fmt.Sprintf(format, args...))
	}
	if err := checkLineValue(u.Description); err != nil {
		return invalid("description: %v", err)
	}
	if len(u.ExecStart) == 0 {
		return invalid("no ExecStart command")
	}
	execLines := make([]string, len(u.ExecStart))
	for i, argv := range u.ExecStart {
		line, err := execLine(argv)
		if err != nil {
			return invalid("ExecStart #%d: %v", i+1, err)
		}
		execLines[i] = line
	}
	if len(u.OnCalendar) == 0 {
		return invalid("no OnCalendar schedule")
	}
	for _, spec := range u.OnCalendar {
		if err := checkCalendarText(spec); err != nil {
			return invalid("OnCalendar %q: %v", spec, err)
		}
	}
	for _, ts := range []struct{ key, val string }{{"RandomizedDelaySec", u.RandomizedDelaySec}, {"AccuracySec", u.AccuracySec}} {
		if err := checkTimespanText(ts.val); err != nil {
			return invalid("%s %q: %v", ts.key, ts.val, err)
		}
	}
	if u.User != "" && !validUser(u.User) {
		return invalid("user %q: not a user name or numeric UID", u.User)
	}
	env, err := renderEnv(u.Environment)
	if err != nil {
		return invalid("environment: %v", err)
	}

	var s strings.Builder
	s.WriteString(header)
	s.WriteString("[Unit]\n")
	if u.Description != "" {
		s.WriteString("Description=" + escapeSpecifiers(u.Description) + "\n")
	}
	// Jobs that catch up at boot (Persistent=true) should find the network.
	s.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	s.WriteString("\n[Service]\nType=oneshot\n")
	if u.User != "" {
		s.WriteString("User=" + u.User + "\n")
	}
	s.WriteString("EnvironmentFile=" + EnvPath(u.Name) + "\n")
	for _, l := range execLines {
		s.WriteString("ExecStart=" + l + "\n")
	}

	var t strings.Builder
	t.WriteString(header)
	t.WriteString("[Unit]\n")
	if u.Description != "" {
		t.WriteString("Description=" + escapeSpecifiers(u.Description) + "\n")
	}
	t.WriteString("\n[Timer]\n")
	for _, spec := range u.OnCalendar {
		t.WriteString("OnCalendar=" + escapeSpecifiers(strings.TrimSpace(spec)) + "\n")
	}
	t.WriteString("Persistent=true\n")
	if v := strings.TrimSpace(u.RandomizedDelaySec); v != "" {
		t.WriteString("RandomizedDelaySec=" + v + "\n")
	}
	if v := strings.TrimSpace(u.AccuracySec); v != "" {
		t.WriteString("AccuracySec=" + v + "\n")
	}
	t.WriteString("Unit=" + u.Name + ".service\n")
	t.WriteString("\n[Install]\nWantedBy=timers.target\n")

	return Files{Service: s.String(), Timer: t.String(), Env: env}, nil
}

// checkLineValue accepts text that fits on one unit file line as it is:
// valid UTF-8 without control characters (a newline would start a new
// setting) and without a trailing backslash (which continues the line).
func checkLineValue(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %q", r)
		}
	}
	if strings.HasSuffix(strings.TrimRight(s, " \t"), `\`) {
		return errors.New("ends with a backslash, which would continue the line")
	}
	return nil
}

// checkCalendarText is what can be checked about a calendar specification
// without systemd: it is not empty and fits on one line. ValidateCalendar
// asks the host's systemd about the rest.
func checkCalendarText(spec string) error {
	if strings.TrimSpace(spec) == "" {
		return errors.New("empty")
	}
	return checkLineValue(spec)
}

// checkTimespanText accepts "" or a one-line value made of the characters
// systemd time spans use (digits, units, dots and spaces); Install asks the
// host's systemd whether it parses.
func checkTimespanText(s string) error {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == ' ':
		default:
			return fmt.Errorf("unexpected character %q in a time span", r)
		}
	}
	return nil
}

// validUser accepts the user names systemd accepts in User= in its relaxed
// mode that are also portable (letters, digits, "_", ".", "-", not
// starting with "-" or "."), or a numeric UID.
func validUser(u string) bool {
	if u == "" || len(u) > 256 || u[0] == '-' || u[0] == '.' {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '.' || c == '-':
		default:
			return false
		}
	}
	return true
}

// escapeSpecifiers doubles "%", which systemd would otherwise read as the
// start of a specifier such as %n in most settings.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// execLine renders one command line for ExecStart=.
func execLine(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	prog := argv[0]
	switch {
	case prog == "":
		return "", errors.New("empty program")
	case strings.ContainsAny(prog, "$"):
		// systemd never expands variables in the program, so "$$" would
		// not be unescaped there.
		return "", fmt.Errorf("program %q contains \"$\"", prog)
	case strings.HasPrefix(prog, "/"):
		if path.Clean(prog) != prog {
			return "", fmt.Errorf("program path %q is not normalized", prog)
		}
	case strings.Contains(prog, "/"):
		return "", fmt.Errorf("program %q must be an absolute path or a bare name", prog)
	case strings.ContainsAny(prog[:1], "-@:+!|;"):
		// Prefixes such as "-" (ignore failure) or "+" (full privileges)
		// are read from the unquoted first word.
		return "", fmt.Errorf("program %q starts with %q, which systemd reads as a command prefix", prog, prog[:1])
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		if !utf8.ValidString(a) {
			return "", fmt.Errorf("argument %d is not valid UTF-8", i)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %d contains a NUL byte", i)
		}
		words[i] = quoteExecWord(a)
	}
	return strings.Join(words, " "), nil
}

// quoteExecWord writes s as one word of a systemd command line that
// systemd turns back into exactly s. Words of characters that are special
// nowhere stay as they are; every other word is double-quoted with C
// escapes for backslash, double quote and control characters, "%%" for
// "%" (specifiers are expanded in command lines) and "$$" for "$"
// (environment variables are expanded when the command runs). A quoted
// word is never mistaken for the ";" command separator or the "\;" word.
func quoteExecWord(s string) string {
	if s != "" && isPlainWord(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func isPlainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_-./:@+,=", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// renderEnv writes the environment file: one KEY="value" line per
// variable, sorted by key. Values are double-quoted with backslash escapes
// for the characters that are special inside double quotes (`"`, `\`, "$"
// and "`"), the quoting that both systemd's EnvironmentFile= parser and a
// POSIX shell read back as the value; a newline stays literal inside the
// quotes. systemd rejects other control characters, so they are refused.
func renderEnv(env map[string]string) (string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(header)
	for _, k := range keys {
		if !validEnvName(k) {
			return "", fmt.Errorf("variable name %q: want letters, digits and \"_\", not starting with a digit", k)
		}
		v := env[k]
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("value of %s is not valid UTF-8", k)
		}
		b.WriteString(k + `="`)
		for _, r := range v {
			switch {
			case r == '"' || r == '\\' || r == '$' || r == '`':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n' || r == '\t':
				b.WriteRune(r)
			case r < 0x20 || r == 0x7f:
				// Not quoting the value: the error must not reveal a secret.
				return "", fmt.Errorf("value of %s contains a control character other than tab or newline", k)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString("\"\n")
	}
	return b.String(), nil
}

func validEnvName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
