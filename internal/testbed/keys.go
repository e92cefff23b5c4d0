package testbed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keyPair is a freshly generated ed25519 SSH key.
type keyPair struct {
	public   ssh.PublicKey
	privPEM  []byte // OpenSSH private key format, unencrypted
	authLine string // authorized_keys format, without trailing newline
}

// newKeyPair generates an ed25519 key whose private half is encoded in the
// OpenSSH format understood by both sshd and golang.org/x/crypto/ssh.
func newKeyPair(comment string) (*keyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return &keyPair{
		public:   sshPub,
		privPEM:  pem.EncodeToMemory(block),
		authLine: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
	}, nil
}
