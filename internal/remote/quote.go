package remote

import (
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
