package rke2sim

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Paths of the supervisor API. /cacerts and /ping are real RKE2 endpoints;
// the /v1-rke2-sim/ ones are private to the simulator.
const (
	pathCACerts         = "/cacerts"
	pathPing            = "/ping"
	pathNodeCredentials = "/v1-rke2-sim/node-credentials"
	pathBootstrap       = "/v1-rke2-sim/bootstrap"
)

// Basic auth users of the join endpoints; the password is the token secret.
const (
	nodeUser   = "node"
	serverUser = "server"
)

// errTokenInvalid is what a joining node reports when the server rejects
// its token (or the token pins another CA); rke2 then exits 1.
var errTokenInvalid = errors.New("token is not valid")

// NodeCredentials is the answer of the node-credentials endpoint.
type NodeCredentials struct {
	APIServer  string `json:"apiServer"`
	CACert     string `json:"caCert"`
	ClientCert string `json:"clientCert"`
	ClientKey  string `json:"clientKey"`
}

// BootstrapData is the answer of the bootstrap endpoint, for joining
// servers.
type BootstrapData struct {
	CACert            string   `json:"caCert"`
	CAKey             string   `json:"caKey"`
	ServiceAccountKey string   `json:"serviceAccountKey"`
	EtcdEndpoints     []string `json:"etcdEndpoints"`
	EtcdClientCert    string   `json:"etcdClientCert"`
	EtcdClientKey     string   `json:"etcdClientKey"`
	ServiceCIDR       string   `json:"serviceCIDR"`
	ClusterCIDR       string   `json:"clusterCIDR"`
}

// supervisor serves the join API of a server on port 9345.
type supervisor struct {
	log           *logger
	ca            *certAuthority
	secret        string
	apiServerURL  string
	saKeyPEM      []byte
	etcdEndpoints []string
	serviceCIDR   string
	clusterCIDR   string
}

func (s *supervisor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathCACerts, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.ca.certPEM)
	})
	mux.HandleFunc("GET "+pathPing, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "pong")
	})
	mux.HandleFunc("GET "+pathNodeCredentials, s.nodeCredentials)
	mux.HandleFunc("GET "+pathBootstrap, s.bootstrap)
	return mux
}

// authorized checks basic auth user/<secret>, answering 401 otherwise.
func (s *supervisor) authorized(w http.ResponseWriter, r *http.Request, user string) bool {
	u, p, ok := r.BasicAuth()
	if ok && u == user && subtle.ConstantTimeCompare([]byte(p), []byte(s.secret)) == 1 {
		return true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.log.Warnf("Rejected %s request from %s: token is not valid", r.URL.Path, host)
	w.Header().Set("WWW-Authenticate", `Basic realm="rke2-simulator"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
	return false
}

func (s *supervisor) nodeCredentials(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, nodeUser) {
		return
	}
	name := r.URL.Query().Get("node")
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		http.Error(w, fmt.Sprintf("invalid node name %q: %s", name, strings.Join(errs, "; ")), http.StatusBadRequest)
		return
	}
	certPEM, keyPEM, err := s.ca.issue(certRequest{cn: "system:node:" + name, orgs: []string{"system:nodes"}, client: true})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.Infof("Issued node credentials for %s", name)
	writeJSON(w, NodeCredentials{APIServer: s.apiServerURL, CACert: string(s.ca.certPEM), ClientCert: string(certPEM), ClientKey: string(keyPEM)})
}

func (s *supervisor) bootstrap(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, serverUser) {
		return
	}
	certPEM, keyPEM, err := s.ca.issue(certRequest{cn: "etcd-client", client: true})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.log.Infof("Sent bootstrap data to joining server %s", host)
	writeJSON(w, BootstrapData{
		CACert: string(s.ca.certPEM), CAKey: string(s.ca.keyPEM),
		ServiceAccountKey: string(s.saKeyPEM),
		EtcdEndpoints:     s.etcdEndpoints,
		EtcdClientCert:    string(certPEM), EtcdClientKey: string(keyPEM),
		ServiceCIDR: s.serviceCIDR, ClusterCIDR: s.clusterCIDR,
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serve listens on addr with the serving certificate and serves until ctx
// ends. It returns once listening.
func (s *supervisor) serve(ctx context.Context, addr string, certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ErrorLog:          nil,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Errorf("Supervisor stopped: %v", err)
		}
	}()
	s.log.Infof("Supervisor listening on %s", l.Addr())
	return nil
}

// joinClient talks to a server's supervisor for a joining node.
type joinClient struct {
	serverURL *url.URL
	token     Token
	caPEM     []byte
	client    *http.Client
}

// newJoinClient parses the server URL ("https://host:9345").
func newJoinClient(server string, token Token) (*joinClient, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want https://<host>:9345", server)
	}
	return &joinClient{serverURL: u, token: token}, nil
}

// host is the host of the server URL, without port.
func (j *joinClient) host() string { return j.serverURL.Hostname() }

// fetchCA gets /cacerts without verifying the server (the CA is what is
// being learned) and checks it against the token's CA hash, if any. A
// mismatch wraps errTokenInvalid.
func (j *joinClient) fetchCA(ctx context.Context) error {
	insecure := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // verified against the token hash below
		},
	}
	defer insecure.CloseIdleConnections()
	status, body, err := j.get(ctx, insecure, pathCACerts, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", pathCACerts, status)
	}
	if j.token.CAHash != "" && CAHash(body) != j.token.CAHash {
		return fmt.Errorf("%w: the token's CA hash does not match the server's CA certificate", errTokenInvalid)
	}
	pool, err := caPoolFromPEM(body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", pathCACerts, err)
	}
	j.caPEM = body
	j.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion:            tls.VersionTLS12,
			InsecureSkipVerify:    true, //nolint:gosec // the chain is verified by verifyChainOnly
			VerifyPeerCertificate: verifyChainOnly(pool),
		}},
	}
	return nil
}

// getJSON GETs path with basic auth user/<secret> and decodes the answer;
// 401 wraps errTokenInvalid.
func (j *joinClient) getJSON(ctx context.Context, path, user string, out any) error {
	status, body, err := j.get(ctx, j.client, path, user)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: the server rejected it (HTTP %d)", errTokenInvalid, status)
	default:
		return fmt.Errorf("GET %s: HTTP %d: %s", strings.SplitN(path, "?", 2)[0], status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}

func (j *joinClient) get(ctx context.Context, client *http.Client, path, user string) (int, []byte, error) {
	u := *j.serverURL
	p, q, _ := strings.Cut(path, "?")
	u.Path, u.RawQuery = p, q
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, j.token.Secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// backoff waits before the next attempt: 1 s doubling up to 15 s. It
// returns false when ctx ends first.
type backoff struct{ d time.Duration }

func (b *backoff) wait(ctx context.Context) bool {
	if b.d == 0 {
		b.d = time.Second
	} else if b.d *= 2; b.d > 15*time.Second {
		b.d = 15 * time.Second
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(b.d):
		return true
	}
}
