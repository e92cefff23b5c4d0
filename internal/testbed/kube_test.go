package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// kubeTestTimeout covers a cold kube-apiserver build (about 3.5 minutes)
// plus the test itself.
const kubeTestTimeout = 9 * time.Minute

// TestKube starts one real Kubernetes API and exercises it end to end. It
// does not skip: a missing etcd or a failed build is a test failure.
func TestKube(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), kubeTestTimeout)
	defer cancel()

	start := time.Now()
	bin, err := EnsureKubeAPIServer(ctx, t.Logf)
	if err != nil {
		t.Fatalf("EnsureKubeAPIServer: %v", err)
	}
	t.Logf("kube-apiserver %s ready to run in %s", bin, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	k, err := StartKube(ctx, t.TempDir(), KubeOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartKube: %v", err)
	}
	t.Logf("StartKube took %s", time.Since(start).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := k.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	})
	if !strings.HasPrefix(k.URL, "https://127.0.0.1:") {
		t.Errorf("URL = %q, want https://127.0.0.1:PORT", k.URL)
	}

	t.Run("Version", func(t *testing.T) {
		var v struct{ GitVersion string }
		getJSON(t, ctx, k, "/version", &v)
		if v.GitVersion != "v"+KubernetesVersion {
			t.Errorf("/version gitVersion = %q, want v%s", v.GitVersion, KubernetesVersion)
		}
	})

	t.Run("Kubeconfig", func(t *testing.T) { testKubeconfig(t, ctx, k) })

	t.Run("AnonymousIsNotAdmin", func(t *testing.T) {
		anon := &Kube{URL: k.URL, Token: "not-a-token", client: k.client}
		status, _, err := anon.Do(ctx, http.MethodGet, "/api/v1/namespaces", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusUnauthorized {
			t.Errorf("bad token: HTTP %d, want 401", status)
		}
	})

	t.Run("MetalLB", func(t *testing.T) { testMetalLB(t, ctx, k) })

	t.Run("Stop", func(t *testing.T) {
		stopped = true
		if err := k.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if ProcessAlive(k.APIServerPID, "") || ProcessAlive(k.EtcdPID, "") {
			t.Errorf("processes still alive after Stop: apiserver %d, etcd %d", k.APIServerPID, k.EtcdPID)
		}
		if err := k.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

// testKubeconfig checks that the kubeconfig file matches the instance,
// verifies TLS and that its CA alone is what makes the server trusted.
func testKubeconfig(t *testing.T, ctx context.Context, k *Kube) {
	data, err := os.ReadFile(k.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(k.Kubeconfig) {
		t.Error("Kubeconfig differs from the file at KubeconfigPath")
	}
	if strings.Contains(string(data), "insecure") {
		t.Errorf("kubeconfig mentions insecure TLS:\n%s", data)
	}
	var cfg struct {
		CurrentContext string `json:"current-context"`
		Clusters       []struct {
			Name    string
			Cluster struct {
				Server string
				CAData string `json:"certificate-authority-data"`
			}
		}
		Users []struct {
			Name string
			User struct{ Token string }
		}
		Contexts []struct {
			Name    string
			Context struct{ Cluster, User string }
		}
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parsing kubeconfig: %v", err)
	}
	if cfg.CurrentContext != KubeContext || len(cfg.Contexts) != 1 || cfg.Contexts[0].Name != KubeContext ||
		len(cfg.Clusters) != 1 || len(cfg.Users) != 1 ||
		cfg.Contexts[0].Context.Cluster != cfg.Clusters[0].Name || cfg.Contexts[0].Context.User != cfg.Users[0].Name {
		t.Fatalf("unexpected kubeconfig structure:\n%s", data)
	}
	cluster, user := cfg.Clusters[0].Cluster, cfg.Users[0].User
	if cluster.Server != k.URL || user.Token != k.Token {
		t.Errorf("kubeconfig server %q token %q, want %q %q", cluster.Server, user.Token, k.URL, k.Token)
	}
	caPEM, err := base64.StdEncoding.DecodeString(cluster.CAData)
	if err != nil {
		t.Fatalf("decoding certificate-authority-data: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("certificate-authority-data holds no certificate")
	}

	get := func(c *http.Client) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cluster.Server+"/api/v1/namespaces/default", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+user.Token)
		return c.Do(req)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigWithRoots(pool)}}
	resp, err := get(trusting)
	if err != nil {
		t.Fatalf("request verified with the kubeconfig CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET default namespace as admin: %s", resp.Status)
	}

	// Without the CA the server must not be trusted.
	untrusting := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigWithRoots(x509.NewCertPool())}}
	resp, err = get(untrusting)
	if err == nil {
		resp.Body.Close()
		t.Fatal("server trusted without the kubeconfig CA")
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("without the CA: got %v, want an unknown authority error", err)
	}
}

// testMetalLB installs MetalLB's CRDs, stores an IPAddressPool and deletes
// the CRDs again.
func testMetalLB(t *testing.T, ctx context.Context, k *Kube) {
	start := time.Now()
	if err := k.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatalf("InstallMetalLBCRDs: %v", err)
	}
	t.Logf("InstallMetalLBCRDs took %s", time.Since(start).Round(time.Millisecond))
	if err := k.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatalf("InstallMetalLBCRDs again (must tolerate existing CRDs): %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := k.EnsureNamespace(ctx, "metallb-system"); err != nil {
			t.Fatalf("EnsureNamespace (call %d): %v", i+1, err)
		}
	}

	const pools = "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools"
	pool := `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool",` +
		`"metadata":{"name":"lab","namespace":"metallb-system"},` +
		`"spec":{"addresses":["192.168.10.0/24"]}}`
	status, resp, err := k.Do(ctx, http.MethodPost, pools, []byte(pool), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusCreated {
		t.Fatalf("creating IPAddressPool: HTTP %d: %s", status, resp)
	}
	var got struct {
		Metadata struct{ Name string }
		Spec     struct{ Addresses []string }
	}
	getJSON(t, ctx, k, pools+"/lab", &got)
	if got.Metadata.Name != "lab" || !reflect.DeepEqual(got.Spec.Addresses, []string{"192.168.10.0/24"}) {
		t.Errorf("IPAddressPool read back as %+v", got)
	}

	start = time.Now()
	if err := k.DeleteMetalLBCRDs(ctx); err != nil {
		t.Fatalf("DeleteMetalLBCRDs: %v", err)
	}
	t.Logf("DeleteMetalLBCRDs took %s", time.Since(start).Round(time.Millisecond))
	status, resp, err = k.Do(ctx, http.MethodGet, pools+"/lab", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusNotFound {
		t.Errorf("IPAddressPool after DeleteMetalLBCRDs: HTTP %d: %s", status, resp)
	}
	status, _, err = k.Do(ctx, http.MethodGet, crdCollection+"/ipaddresspools.metallb.io", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusNotFound {
		t.Errorf("IPAddressPool CRD after DeleteMetalLBCRDs: HTTP %d", status)
	}
	if err := k.DeleteMetalLBCRDs(ctx); err != nil {
		t.Errorf("DeleteMetalLBCRDs again (must tolerate missing CRDs): %v", err)
	}
}

// getJSON GETs path, requires 200 and decodes the body into v.
func getJSON(t *testing.T, ctx context.Context, k *Kube, path string, v any) {
	t.Helper()
	status, body, err := k.Do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decoding %s: %v", path, body, err)
	}
}

func TestKubeStagingReplaces(t *testing.T) {
	got, err := stagingReplaces([]string{
		"k8s.io/api => ./staging/src/k8s.io/api",
		"k8s.io/client-go v0.0.0 => ./staging/src/k8s.io/client-go",
	}, "v0.34.2")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"k8s.io/api => k8s.io/api v0.34.2", "k8s.io/client-go => k8s.io/client-go v0.34.2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stagingReplaces = %q, want %q", got, want)
	}
	if _, err := stagingReplaces([]string{"example.com/x => example.com/y v1.0.0"}, "v0.34.2"); err == nil {
		t.Error("a non-staging replace was accepted")
	}
	if _, err := stagingReplaces(nil, "v0.34.2"); err == nil {
		t.Error("no staging replaces was accepted")
	}
}

func TestKubeCRDName(t *testing.T) {
	manifest := `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    name: not-this
  name: ipaddresspools.metallb.io
spec:
  names:
    name: nor-this
`
	got, err := crdName([]byte(manifest))
	if err != nil || got != "ipaddresspools.metallb.io" {
		t.Errorf("crdName = %q, %v", got, err)
	}
	if _, err := crdName([]byte("kind: X\nspec:\n  name: y\n")); err == nil {
		t.Error("manifest without metadata.name accepted")
	}
}

func TestKubeMetalLBCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crds, err := MetalLBCRDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		name, err := crdName(c)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if len(crds) < 5 || !strings.Contains(strings.Join(names, " "), "ipaddresspools.metallb.io") {
		t.Errorf("MetalLB CRDs = %v", names)
	}
}

// tlsConfigWithRoots trusts exactly roots.
func tlsConfigWithRoots(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
