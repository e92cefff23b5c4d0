package remote

import (
	"bytes"
	"encoding/base64"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

var nastyWords = []string{
	"", " ", "plain", "two words", "it's", "'", "''", `"`, `\`, `\'`, "$HOME", "${IFS}", "$(id)", "`id`",
	"a;b", "a&&b", "a|b", "a>b", "<a", "*", "?", "[a]", "~", "~root", "#comment", "-rf", "--", "a\nb",
	"\t", "!", "{a,b}", "a=b", "%s", "é", "\xff\xfe", "'; rm -rf / #", "\r\n",
}

// parseWords is a reference reader for the subset of POSIX shell syntax that
// Quote may produce: plain characters, single-quoted strings and \' outside
// quotes. Anything else (an unquoted special character) fails the parse.
func parseWords(t testing.TB, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			cur.WriteByte('\'')
			i++
			inWord = true
		case isPlain(string(c)):
			cur.WriteByte(c)
			inWord = true
		default:
			t.Fatalf("unquoted special byte %q at %d in %q", c, i, line)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestQuoteRoundTripsThroughReferenceParser(t *testing.T) {
	for _, w := range nastyWords {
		got := parseWords(t, Join([]string{"echo", w, "end"}))
		if len(got) != 3 || got[1] != w || got[2] != "end" {
			t.Errorf("Join(%q) parsed back as %q", w, got)
		}
	}
}

func TestQuoteLeavesPlainWordsReadable(t *testing.T) {
	for in, want := range map[string]string{
		"zfs": "zfs", "tank/media": "tank/media", "/dev/disk/by-id/virtio-d1": "/dev/disk/by-id/virtio-d1",
		"a b": "'a b'", "": "''", "it's": `'it'\''s'`, "$x": "'$x'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// shellArgs has the real /bin/sh read the command line Join builds and
// report the arguments it saw, base64-encoded so any byte survives.
func shellArgs(t testing.TB, words []string) []string {
	t.Helper()
	const script = `printf '%s\n' "$#"; for a; do printf %s "$a" | base64 -w0; echo; done`
	line := Join(append([]string{"sh", "-c", script, "x"}, words...))
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %s: %v", line, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	n, err := strconv.Atoi(lines[0])
	if err != nil || n != len(lines)-1 {
		t.Fatalf("unexpected shell output %q for %q", out, words)
	}
	var got []string
	for _, l := range lines[1:] {
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			t.Fatalf("decoding %q: %v", l, err)
		}
		got = append(got, string(b))
	}
	return got
}

func TestQuoteSurvivesRealShell(t *testing.T) {
	got := shellArgs(t, nastyWords)
	if len(got) != len(nastyWords) {
		t.Fatalf("shell saw %d arguments, want %d: %q", len(got), len(nastyWords), got)
	}
	for i := range got {
		if got[i] != nastyWords[i] {
			t.Errorf("argument %d: shell saw %q, want %q", i, got[i], nastyWords[i])
		}
	}
}

// FuzzQuote proves that no input can end its argument early or start a new
// command: the reference parser and the real shell both read back exactly
// the two words that went in. Run with: go test -fuzz FuzzQuote ./internal/remote
func FuzzQuote(f *testing.F) {
	for _, w := range nastyWords {
		f.Add(w, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		words := parseWords(t, Join([]string{a, b}))
		if len(words) != 2 || words[0] != a || words[1] != b {
			t.Fatalf("Join(%q, %q) parsed back as %q", a, b, words)
		}
		if strings.IndexByte(a+b, 0) >= 0 {
			return // argv cannot carry NUL; Cmd.validate rejects it
		}
		got := shellArgs(t, []string{a, b})
		if len(got) != 2 || !bytes.Equal([]byte(got[0]), []byte(a)) || got[1] != b {
			t.Fatalf("shell read %q as %q", []string{a, b}, got)
		}
	})
}

func TestCmdRejectsNUL(t *testing.T) {
	if err := Command("echo", "a\x00b").validate(); err == nil {
		t.Fatal("a NUL byte in an argument must be rejected")
	}
	if err := (Cmd{}).validate(); err == nil {
		t.Fatal("an empty command must be rejected")
	}
}

// loginShells are the shells CommandLine is checked against locally; sshd
// runs "$SHELL -c LINE" with the user's login shell.
var loginShells = []string{"/bin/sh", "/bin/bash", "/usr/bin/fish"}

// shellLineArgs has shell run CommandLine's line for a reporting script and
// returns the arguments the script saw.
func shellLineArgs(t testing.TB, shell string, words []string) []string {
	t.Helper()
	const script = `printf '%s\n' "$#"; for a; do printf %s "$a" | base64 -w0; echo; done`
	line := CommandLine(append([]string{"sh", "-c", script, "x"}, words...))
	out, err := exec.Command(shell, "-c", line).Output()
	if err != nil {
		t.Fatalf("%s -c %s: %v", shell, line, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	n, err := strconv.Atoi(lines[0])
	if err != nil || n != len(lines)-1 {
		t.Fatalf("unexpected output of %s %q for %q", shell, out, words)
	}
	var got []string
	for _, l := range lines[1:] {
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			t.Fatalf("decoding %q: %v", l, err)
		}
		got = append(got, string(b))
	}
	return got
}

func TestCommandLineIsTheSameArgvInEveryShell(t *testing.T) {
	words := append(append([]string{}, nastyWords...), `a\`, "; echo pwned; echo ", `'\'`, "trailing\n\n")
	for _, shell := range loginShells {
		got := shellLineArgs(t, shell, words)
		if len(got) != len(words) {
			t.Fatalf("%s saw %d arguments, want %d: %q", shell, len(got), len(words), got)
		}
		for i := range got {
			if got[i] != words[i] {
				t.Errorf("%s: argument %d arrived as %q, want %q", shell, i, got[i], words[i])
			}
		}
	}
}

func TestCommandLineLeavesPlainCommandsReadable(t *testing.T) {
	argv := []string{"zpool", "status", "-j", "tank", "/dev/disk/by-id/virtio-d1"}
	if got := CommandLine(argv); got != strings.Join(argv, " ") {
		t.Fatalf("CommandLine(%q) = %s", argv, got)
	}
}

// FuzzCommandLine proves, through every login shell here, that no pair of
// values changes the argv that arrives. Run with:
// go test -fuzz FuzzCommandLine ./internal/remote
func FuzzCommandLine(f *testing.F) {
	for _, w := range nastyWords {
		f.Add(w, "x")
	}
	f.Add(`a\`, ";id")
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.IndexByte(a+b, 0) >= 0 {
			return // argv cannot carry NUL; Cmd.validate rejects it
		}
		for _, shell := range loginShells {
			got := shellLineArgs(t, shell, []string{a, b})
			if len(got) != 2 || got[0] != a || got[1] != b {
				t.Fatalf("%s read %q as %q", shell, []string{a, b}, got)
			}
		}
	})
}
