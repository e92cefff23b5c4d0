package remote

import (
	"encoding/base64"
	"strings"
)

// Quote returns s as one POSIX shell word that the shell reads back as exactly s.
// Words made only of characters that are never special to the shell are left
// as they are, for readable logs; everything else is single-quoted, with each
// single quote written as '\”.
func Quote(s string) string {
	if s != "" && isPlain(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every word and joins them with spaces into one command line.
func Join(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = Quote(w)
	}
	return strings.Join(quoted, " ")
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_-./:@%+,", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// decodeArgs is the constant script CommandLine runs under /bin/sh. Its
// first argument is a mask with one letter per remaining argument: "p" for
// a word passed as it is, "e" for a word passed base64-encoded. It decodes
// the arguments in place and execs them. Trailing newlines of a decoded
// word survive the command substitution thanks to the "x" sentinel. It is
// one line without single quotes or backslashes, so that single-quoting it
// means the same in every shell sshd may run as the login shell (POSIX sh,
// bash, zsh, fish, csh).
const decodeArgs = `m=$1; shift; for a do if [ "${m%"${m#?}"}" = e ]; then a=$(printf %s "$a" | base64 -d; echo x); a=${a%x}; fi; m=${m#?}; set -- "$@" "$a"; shift; done; exec "$@"`

// CommandLine returns the command line that runs argv on a host whose
// sshd hands it to the user's login shell, whatever that shell is. sshd
// runs "$SHELL -c LINE", and shells disagree about quoting: fish reads \'
// inside single quotes as an escaped quote, so POSIX quoting of a value
// ending in a backslash lets the next value run as a command. Words made
// only of characters that no shell treats specially are sent as they are
// (so the common command line stays readable and costs nothing); when any
// word is not, the line becomes a constant /bin/sh script (decodeArgs) that
// receives the other words base64-encoded, which contains only characters
// that are plain in every shell besides "=". User values are data in every
// shell.
func CommandLine(argv []string) string {
	mask := make([]byte, len(argv))
	words := make([]string, 0, len(argv)+5)
	words = append(words, "/bin/sh", "-c", "'"+decodeArgs+"'", "homelab", "")
	encoded := false
	for i, w := range argv {
		if w != "" && isPlain(w) {
			mask[i] = 'p'
			words = append(words, w)
			continue
		}
		mask[i] = 'e'
		encoded = true
		// An empty word encodes to nothing, which would vanish from the
		// line: "e" plus an empty quoted word is not plain either, so it
		// is written as a quoted empty string, which every shell keeps.
		if w == "" {
			words = append(words, "''")
			continue
		}
		words = append(words, base64.StdEncoding.EncodeToString([]byte(w)))
	}
	if !encoded {
		return strings.Join(argv, " ")
	}
	words[4] = string(mask)
	return strings.Join(words, " ")
}
