package rke2sim

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestTokenFormat(t *testing.T) {
	ca, err := newCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.certPEM)
	full := FormatToken(ca.certPEM, "s3cret")
	if want := "K10" + hex.EncodeToString(sum[:]) + "::server:s3cret"; full != want {
		t.Fatalf("FormatToken = %q, want %q", full, want)
	}
	tok, err := ParseToken(full + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != CAHash(ca.certPEM) || tok.User != "server" || tok.Secret != "s3cret" {
		t.Errorf("ParseToken(full) = %+v", tok)
	}
	// A secret may contain colons.
	if tok, err := ParseToken("K10" + strings.Repeat("A", 64) + "::node:a:b"); err != nil || tok.User != "node" || tok.Secret != "a:b" || tok.CAHash != strings.Repeat("a", 64) {
		t.Errorf("ParseToken(node token) = %+v, %v", tok, err)
	}
	if tok, err := ParseToken("just-a-secret"); err != nil || tok.CAHash != "" || tok.Secret != "just-a-secret" {
		t.Errorf("ParseToken(plain) = %+v, %v", tok, err)
	}
	for _, bad := range []string{"", "  ", "K10abc::server:x", "K10" + strings.Repeat("z", 64) + "::server:x", "K10" + strings.Repeat("a", 64) + "::server:"} {
		if tok, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) = %+v, want an error", bad, tok)
		}
	}
	s1, _ := randomSecret()
	s2, _ := randomSecret()
	if len(s1) != 32 || s1 == s2 {
		t.Errorf("random secrets %q %q", s1, s2)
	}
}
