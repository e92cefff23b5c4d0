package rke2sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// testSupervisor serves a supervisor over TLS with a serving certificate
// of its CA.
func testSupervisor(t *testing.T) (*supervisor, *httptest.Server) {
	t.Helper()
	ca, err := newCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.issue(certRequest{cn: "kube-apiserver", ips: []net.IP{net.ParseIP("127.0.0.1")}, server: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &supervisor{
		log: newLogger(io.Discard), ca: ca, secret: "s3cret", apiServerURL: "https://10.0.0.1:6443",
		saKeyPEM: []byte("sa-key"), etcdEndpoints: []string{"https://10.0.0.1:2379"}, serviceCIDR: "10.43.0.0/16",
	}
	srv := httptest.NewUnstartedServer(s.handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return s, srv
}

func TestSupervisorNodeCredentials(t *testing.T) {
	s, srv := testSupervisor(t)
	ctx := context.Background()

	j, err := newJoinClient(srv.URL, Token{CAHash: CAHash(s.ca.certPEM), User: "server", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.fetchCA(ctx); err != nil {
		t.Fatal(err)
	}
	var creds NodeCredentials
	if err := j.getJSON(ctx, pathNodeCredentials+"?node=worker-1", nodeUser, &creds); err != nil {
		t.Fatal(err)
	}
	if creds.APIServer != "https://10.0.0.1:6443" || creds.CACert != string(s.ca.certPEM) {
		t.Errorf("credentials: apiServer %q, CA matches %v", creds.APIServer, creds.CACert == string(s.ca.certPEM))
	}
	block, _ := pem.Decode([]byte(creds.ClientCert))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:worker-1" || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("client certificate subject %v", cert.Subject)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.ca.pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify as a client of the CA: %v", err)
	}
	if _, err := tls.X509KeyPair([]byte(creds.ClientCert), []byte(creds.ClientKey)); err != nil {
		t.Errorf("client key does not match: %v", err)
	}

	// A plain token (no CA pinning) works too.
	plain, _ := newJoinClient(srv.URL, Token{Secret: "s3cret"})
	if err := plain.fetchCA(ctx); err != nil {
		t.Fatal(err)
	}
	if err := plain.getJSON(ctx, pathNodeCredentials+"?node=Bad_Name", nodeUser, &creds); err == nil || errors.Is(err, errTokenInvalid) {
		t.Errorf("invalid node name: %v, want a non-token error", err)
	}
}

func TestSupervisorRejectsWrongTokens(t *testing.T) {
	s, srv := testSupervisor(t)
	ctx := context.Background()

	other, _ := newCA("other")
	j, _ := newJoinClient(srv.URL, Token{CAHash: CAHash(other.certPEM), User: "server", Secret: "s3cret"})
	if err := j.fetchCA(ctx); !errors.Is(err, errTokenInvalid) {
		t.Errorf("token pinning another CA: %v, want token is not valid", err)
	}

	j, _ = newJoinClient(srv.URL, Token{CAHash: CAHash(s.ca.certPEM), User: "server", Secret: "wrong"})
	if err := j.fetchCA(ctx); err != nil {
		t.Fatal(err)
	}
	var creds NodeCredentials
	if err := j.getJSON(ctx, pathNodeCredentials+"?node=w", nodeUser, &creds); !errors.Is(err, errTokenInvalid) || !strings.Contains(err.Error(), "token is not valid") {
		t.Errorf("wrong secret: %v, want token is not valid", err)
	}

	// The bootstrap endpoint wants the server user.
	j, _ = newJoinClient(srv.URL, Token{Secret: "s3cret"})
	if err := j.fetchCA(ctx); err != nil {
		t.Fatal(err)
	}
	var bd BootstrapData
	if err := j.getJSON(ctx, pathBootstrap, nodeUser, &bd); !errors.Is(err, errTokenInvalid) {
		t.Errorf("bootstrap as node: %v, want token is not valid", err)
	}
	if err := j.getJSON(ctx, pathBootstrap, serverUser, &bd); err != nil {
		t.Fatal(err)
	}
	if bd.CAKey != string(s.ca.keyPEM) || !slices.Equal(bd.EtcdEndpoints, s.etcdEndpoints) || bd.ServiceCIDR != "10.43.0.0/16" {
		t.Errorf("bootstrap data %+v", bd)
	}
	if _, err := parseCA([]byte(bd.CACert), []byte(bd.CAKey)); err != nil {
		t.Errorf("bootstrap CA: %v", err)
	}
}

func TestSupervisorCACertsAndPing(t *testing.T) {
	s, srv := testSupervisor(t)
	client := srv.Client()
	for path, want := range map[string]string{pathCACerts: string(s.ca.certPEM), pathPing: "pong"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, err := client.Get(srv.URL + pathNodeCredentials + "?node=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("node credentials without auth: %d, want 401", resp.StatusCode)
	}
}
