package acctest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Ctx is a context bounded for one out-of-band action of a test.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ErrorRe matches the given phrases in order, allowing the line wrapping
// Terraform applies to diagnostics between any two words.
func ErrorRe(phrases ...string) *regexp.Regexp {
	parts := make([]string, len(phrases))
	for i, p := range phrases {
		parts[i] = strings.Join(strings.Fields(regexp.QuoteMeta(p)), `\s+`)
	}
	return regexp.MustCompile("(?s)" + strings.Join(parts, ".*"))
}

// Password is a fresh random password for one test.
func Password(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

// TerraformBlock is the terraform block naming the address the test
// framework serves the provider under, for configurations import steps run
// as written.
func TerraformBlock() string {
	return fmt.Sprintf(`
terraform {
  required_providers {
    homelab = { source = "%s/%s/homelab" }
  }
}
`, os.Getenv("TF_ACC_PROVIDER_HOST"), os.Getenv("TF_ACC_PROVIDER_NAMESPACE"))
}
