package acctest_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryAcceptanceTestGoesThroughTheSweep: an acceptance test that calls
// resource.Test (or ParallelTest) directly skips the secret sweep's checks
// of its plans, state and errors (three RKE2 tests did).
func TestEveryAcceptanceTestGoesThroughTheSweep(t *testing.T) {
	direct := regexp.MustCompile(`\bresource\.(Test|ParallelTest|UnitTest)\(`)
	var found []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "acctest":
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(p, "_test.go"):
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
		t.Fatalf("run acceptance tests with acctest.Test, not resource.Test directly:\n%s", strings.Join(found, "\n"))
	}
}
