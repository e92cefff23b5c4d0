package rke2sim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// tokenPrefix starts a full token: K10<CA hash>::<user>:<secret>.
const tokenPrefix = "K10"

// Token is a parsed cluster token. A full token
// "K10<sha256 hex of the cluster CA PEM>::server:<secret>" pins the CA a
// joining node must find; a plain token is just the secret.
type Token struct {
	// CAHash is the lowercase hex SHA-256 of the cluster CA certificate
	// PEM, empty for a plain token.
	CAHash string
	// User is the part before the secret in a full token ("server", or
	// "node" for an agent token); empty for a plain token.
	User string
	// Secret is the shared secret.
	Secret string
}

// ParseToken parses a full or plain token.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, errors.New("token is empty")
	}
	if !strings.HasPrefix(s, tokenPrefix) || !strings.Contains(s, "::") {
		return Token{Secret: s}, nil
	}
	hash, creds, _ := strings.Cut(s[len(tokenPrefix):], "::")
	if len(hash) != sha256.Size*2 {
		return Token{}, fmt.Errorf("invalid token: CA hash has %d characters, want %d", len(hash), sha256.Size*2)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return Token{}, errors.New("invalid token: CA hash is not hexadecimal")
	}
	user, secret, ok := strings.Cut(creds, ":")
	if !ok {
		user, secret = "server", creds
	}
	if secret == "" {
		return Token{}, errors.New("invalid token: empty secret")
	}
	return Token{CAHash: strings.ToLower(hash), User: user, Secret: secret}, nil
}

// CAHash returns the hex SHA-256 of a CA certificate PEM, as full tokens
// carry it.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// FormatToken returns the full server token for a cluster CA and secret:
// "K10<CAHash(caPEM)>::server:<secret>".
func FormatToken(caPEM []byte, secret string) string {
	return tokenPrefix + CAHash(caPEM) + "::server:" + secret
}

// randomSecret returns a new random token secret (32 hex characters).
func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
