package rke2

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
)

// Credentials are the parts of the admin kubeconfig, PEM encoded.
type Credentials struct {
	Kubeconfig        []byte
	Server            string
	CACertificate     string
	ClientCertificate string
	ClientKey         string
}

// RewriteKubeconfig points every cluster of RKE2's admin kubeconfig
// (server https://127.0.0.1:6443) at https://<endpoint>:6443 and returns it
// with its certificates and key.
func RewriteKubeconfig(data []byte, endpoint string) (*Credentials, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("parsing the kubeconfig: %w", err)
	}
	if len(cfg.Clusters) == 0 {
		return nil, fmt.Errorf("the kubeconfig has no cluster")
	}
	url := APIURL(endpoint)
	for _, c := range cfg.Clusters {
		c.Server = url
	}
	ctxName := cfg.CurrentContext
	kctx, ok := cfg.Contexts[ctxName]
	if !ok {
		for name, c := range cfg.Contexts {
			ctxName, kctx = name, c
			break
		}
	}
	if kctx == nil {
		return nil, fmt.Errorf("the kubeconfig has no context")
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	if cluster == nil || user == nil {
		return nil, fmt.Errorf("context %q of the kubeconfig names a missing cluster or user", ctxName)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return &Credentials{
		Kubeconfig: out, Server: url,
		CACertificate:     string(cluster.CertificateAuthorityData),
		ClientCertificate: string(user.ClientCertificateData),
		ClientKey:         string(user.ClientKeyData),
	}, nil
}

// GenerateToken returns a random cluster token: 32 bytes from crypto/rand,
// hex encoded.
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// TokenSecret returns the secret of a token: the part after "::server:"
// (or "::node:") of a full K10 token, or the token itself.
func TokenSecret(token string) string {
	token = strings.TrimSpace(token)
	if i := strings.LastIndex(token, "::"); i >= 0 && strings.HasPrefix(token, "K10") {
		rest := token[i+2:]
		if _, secret, ok := strings.Cut(rest, ":"); ok {
			return secret
		}
		return rest
	}
	return token
}
