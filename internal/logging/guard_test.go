package logging_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryMessageGoesThroughThisPackage keeps the fix for every path: a
// direct tflog call anywhere in the provider would rewrite the shared
// fields map again.
func TestEveryMessageGoesThroughThisPackage(t *testing.T) {
	direct := regexp.MustCompile(`\btflog\.(Trace|Debug|Info|Warn|Error)\(`)
	var found []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "logging":
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				found = append(found, fmt.Sprintf("%s:%d: %s", p, i+1, strings.TrimSpace(line)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Fatalf("log through internal/logging, not tflog directly:\n%s", strings.Join(found, "\n"))
	}
}
