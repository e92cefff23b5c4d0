package rke2

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestRewriteKubeconfig(t *testing.T) {
	for endpoint, url := range map[string]string{"192.168.1.21": "https://192.168.1.21:6443", "k8s.lan": "https://k8s.lan:6443", "fd00::21": "https://[fd00::21]:6443"} {
		c, err := RewriteKubeconfig([]byte(testdata(t, "rke2.yaml")), endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if c.Server != url {
			t.Errorf("server %q, want %q", c.Server, url)
		}
		cfg, err := clientcmd.Load(c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Clusters["default"].Server; got != url {
			t.Errorf("kubeconfig server %q, want %q", got, url)
		}
		if cfg.CurrentContext != "default" {
			t.Errorf("context %q", cfg.CurrentContext)
		}
		if strings.Contains(string(c.Kubeconfig), "127.0.0.1") {
			t.Error("the loopback address is still in the kubeconfig")
		}
		if c.CACertificate != testdata(t, "rke2.ca.pem") || c.ClientCertificate != testdata(t, "rke2.client.pem") || c.ClientKey != testdata(t, "rke2.client-key.pem") {
			t.Error("certificates or key do not match the kubeconfig's")
		}
	}
	if _, err := RewriteKubeconfig([]byte("apiVersion: v1\nkind: Config\n"), "x"); err == nil {
		t.Error("a kubeconfig without cluster was accepted")
	}
	if _, err := RewriteKubeconfig([]byte("{{"), "x"); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestTokens(t *testing.T) {
	a, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken()
	if len(a) != 64 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	full := "K10" + strings.Repeat("ab", 32) + "::server:" + a
	if got := TokenSecret(full); got != a {
		t.Errorf("TokenSecret(full) = %q", got)
	}
	if got := TokenSecret(a + "\n"); got != a {
		t.Errorf("TokenSecret(plain) = %q", got)
	}
}
