package systemd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Parse reads back the Unit named name from the contents of its installed
// service, timer and environment files: the inverse of Render, for files
// Render wrote (and hand edits that keep to the same settings). Comments,
// blank lines and settings Render does not write (Persistent=, Unit=,
// WantedBy=, ...) are skipped. A file that is not one of these units
// (no ExecStart=, no OnCalendar=, a command line or environment value that
// does not parse) is an error wrapping ErrInvalid.
func Parse(name string, f Files) (Unit, error) {
	u := Unit{Name: name}
	invalid := func(format string, args ...any) (Unit, error) {
		return Unit{}, fmt.Errorf("%w unit %s: %s", ErrInvalid, name, fmt.Sprintf(format, args...))
	}
	err := eachSetting(f.Service, func(section, key, val string) error {
		switch {
		case section == "Unit" && key == "Description":
			u.Description = unescapeSpecifiers(val)
		case section == "Service" && key == "User":
			u.User = val
		case section == "Service" && key == "ExecStart":
			argv, err := splitExecLine(val)
			if err != nil {
				return fmt.Errorf("ExecStart #%d: %w", len(u.ExecStart)+1, err)
			}
			u.ExecStart = append(u.ExecStart, argv)
		}
		return nil
	})
	if err != nil {
		return invalid("service: %v", err)
	}
	if len(u.ExecStart) == 0 {
		return invalid("service: no ExecStart command")
	}
	err = eachSetting(f.Timer, func(section, key, val string) error {
		if section != "Timer" {
			return nil
		}
		switch key {
		case "OnCalendar":
			u.OnCalendar = append(u.OnCalendar, unescapeSpecifiers(val))
		case "RandomizedDelaySec":
			u.RandomizedDelaySec = val
		case "AccuracySec":
			u.AccuracySec = val
		}
		return nil
	})
	if err != nil {
		return invalid("timer: %v", err)
	}
	if len(u.OnCalendar) == 0 {
		return invalid("timer: no OnCalendar schedule")
	}
	env, err := parseEnv(f.Env)
	if err != nil {
		return invalid("environment: %v", err)
	}
	u.Environment = env
	return u, nil
}

// eachSetting calls fn for each KEY=VALUE line of a unit file with the
// section it is in. Render writes no continuation lines.
func eachSetting(text string, fn func(section, key, val string) error) error {
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("line %d: not KEY=VALUE", i+1)
		}
		if strings.HasSuffix(v, `\`) {
			return fmt.Errorf("line %d: continuation lines are not read back", i+1)
		}
		if err := fn(section, strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return nil
}

func unescapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%%", "%") }

// splitExecLine splits an ExecStart= value into its words, undoing
// quoteExecWord: double-quoted words with C escapes, "%%" for "%" and
// "$$" for "$". A command prefix ("-", "@", "+", ...), a variable
// reference or a specifier would not run the words as written, so they are
// refused rather than read back as something they are not.
func splitExecLine(line string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		var w strings.Builder
		quoted := line[i] == '"'
		if quoted {
			i++
		}
		for {
			if i == len(line) {
				if quoted {
					return nil, errors.New("unterminated quote")
				}
				break
			}
			c := line[i]
			if !quoted && (c == ' ' || c == '\t') {
				break
			}
			if quoted && c == '"' {
				i++
				if i < len(line) && line[i] != ' ' && line[i] != '\t' {
					return nil, errors.New("text after a closing quote")
				}
				break
			}
			switch {
			case c == '%' || c == '$':
				if i+1 >= len(line) || line[i+1] != c {
					return nil, fmt.Errorf("%q expands when the command runs; not read back", c)
				}
				w.WriteByte(c)
				i += 2
			case c == '\\' && quoted:
				if i+1 >= len(line) {
					return nil, errors.New("backslash at the end")
				}
				switch e := line[i+1]; e {
				case '\\', '"', '\'':
					w.WriteByte(e)
					i += 2
				case 'n':
					w.WriteByte('\n')
					i += 2
				case 't':
					w.WriteByte('\t')
					i += 2
				case 'x':
					if i+4 > len(line) {
						return nil, errors.New("short \\x escape")
					}
					n, err := strconv.ParseUint(line[i+2:i+4], 16, 8)
					if err != nil {
						return nil, fmt.Errorf("bad \\x escape: %w", err)
					}
					w.WriteByte(byte(n))
					i += 4
				default:
					return nil, fmt.Errorf("escape \\%c is not read back", e)
				}
			case !quoted && (c == '"' || c == '\'' || c == '\\' || c == ';'):
				return nil, fmt.Errorf("unquoted %q is not read back", c)
			default:
				w.WriteByte(c)
				i++
			}
		}
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	if strings.ContainsAny(words[0][:1], "-@:+!|") {
		return nil, fmt.Errorf("program %q starts with a command prefix; not read back", words[0])
	}
	return words, nil
}

// parseEnv reads an environment file as renderEnv writes it: KEY="value"
// lines, backslash escapes for `"`, `\`, "$" and "`", newlines literal
// inside the quotes.
func parseEnv(text string) (map[string]string, error) {
	env := map[string]string{}
	i := 0
	for i < len(text) {
		switch text[i] {
		case '\n', ' ', '\t':
			i++
			continue
		case '#', ';':
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				return env, nil
			}
			i += j + 1
			continue
		}
		eq := strings.IndexByte(text[i:], '=')
		if eq < 0 {
			return nil, errors.New("a line that is not KEY=\"value\"")
		}
		k := strings.TrimSpace(text[i : i+eq])
		if !validEnvName(k) {
			return nil, fmt.Errorf("variable name %q is not read back", k)
		}
		i += eq + 1
		if i >= len(text) || text[i] != '"' {
			// Not quoting what follows: it may be a secret.
			return nil, fmt.Errorf("value of %s is not double-quoted", k)
		}
		i++
		var v strings.Builder
		closed := false
		for i < len(text) && !closed {
			c := text[i]
			switch {
			case c == '"':
				closed = true
				i++
			case c == '\\' && i+1 < len(text) && strings.IndexByte("\"\\$`", text[i+1]) >= 0:
				v.WriteByte(text[i+1])
				i += 2
			case c == '\\' && i+1 < len(text) && text[i+1] == '\n':
				i += 2
			default:
				v.WriteByte(c)
				i++
			}
		}
		if !closed {
			return nil, fmt.Errorf("value of %s has no closing quote", k)
		}
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
			i++
		}
		if i < len(text) && text[i] != '\n' {
			return nil, fmt.Errorf("text after the value of %s", k)
		}
		env[k] = v.String()
	}
	return env, nil
}
