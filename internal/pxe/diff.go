package pxe

import (
	"fmt"
	"strconv"
	"strings"
)

// Diff compares the files a config owns with what Server.Read found and
// returns one human-readable line per file that is missing or differs, in
// the order of want; it is empty when the server is in sync.
func Diff(want []File, got map[string]string) []string {
	var out []string
	for _, f := range want {
		content, ok := got[f.Path]
		switch {
		case !ok:
			out = append(out, f.Path+": missing")
		case content != f.Content:
			out = append(out, f.Path+": changed ("+firstDifference(f.Content, content)+")")
		}
	}
	return out
}

// firstDifference describes the first line where got departs from want.
func firstDifference(want, got string) string {
	w, g := lines(want), lines(got)
	for i := 0; ; i++ {
		switch {
		case i >= len(w) && i >= len(g):
			return "content differs"
		case i >= len(w):
			return fmt.Sprintf("line %d: unexpected %s", i+1, quoteLine(g[i]))
		case i >= len(g):
			return fmt.Sprintf("line %d: want %s, missing", i+1, quoteLine(w[i]))
		case w[i] != g[i]:
			return fmt.Sprintf("line %d: want %s, got %s", i+1, quoteLine(w[i]), quoteLine(g[i]))
		}
	}
}

// lines splits s after each newline, without the empty piece after a final one.
func lines(s string) []string {
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

func quoteLine(l string) string {
	const max = 80
	if len(l) > max {
		return strconv.Quote(l[:max]) + "..."
	}
	return strconv.Quote(l)
}
