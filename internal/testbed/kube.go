package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KubernetesVersion is the Kubernetes release whose kube-apiserver the
// testbed builds and runs. Bumping it is enough to build and cache the new
// release (the staging modules are published as v0.<minor>.<patch>).
const KubernetesVersion = "1.34.2"

// EtcdPath is the etcd server binary (Debian's etcd-server).
const EtcdPath = "/usr/bin/etcd"

// kubernetesModule is the Go module kube-apiserver is built from.
const kubernetesModule = "k8s.io/kubernetes"

// kubeAPIServerPackage is the main package of kube-apiserver.
const kubeAPIServerPackage = kubernetesModule + "/cmd/kube-apiserver"

const (
	// kubeVersionTimeout bounds `kube-apiserver --version`.
	kubeVersionTimeout = 30 * time.Second
	// kubeStartTimeout caps startup even when ctx has no deadline.
	kubeStartTimeout = 2 * time.Minute
	// kubeStopGrace is how long Stop waits after SIGTERM before SIGKILL.
	kubeStopGrace = 10 * time.Second
	// kubePortAttempts bounds retries when a picked free port was taken
	// by someone else before etcd or kube-apiserver could bind it.
	kubePortAttempts = 3
	// kubeRequestTimeout bounds one probe request during startup.
	kubeRequestTimeout = 5 * time.Second
	// kubePollInterval is how often readiness and CRD states are polled.
	kubePollInterval = 100 * time.Millisecond
	// kubeServiceCIDR is the (virtual, never routed) service IP range.
	kubeServiceCIDR = "10.96.0.0/16"
	// kubeServiceAccountIssuer is the issuer of service account tokens.
	kubeServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// Identity of the admin user authenticated by Kube.Token.
const (
	// KubeAdminUser is the user name of Kube.Token.
	KubeAdminUser = "testbed-admin"
	// KubeContext is the context (and cluster) name in Kube.Kubeconfig.
	KubeContext = "testbed"
)

// Files inside a Kube instance directory.
const (
	kubeEtcdDataName     = "etcd-data"
	kubeCertDirName      = "pki"
	kubeServingCertName  = "apiserver.crt" // written by kube-apiserver into --cert-dir
	kubeTokensName       = "tokens.csv"
	kubeSAKeyName        = "sa.key"
	kubeconfigName       = "kubeconfig"
	kubeEtcdLogName      = "etcd.log"
	kubeAPIServerLogName = "kube-apiserver.log"
)

// EnsureKubeAPIServer returns the path of a cached kube-apiserver binary of
// KubernetesVersion at <CacheDir>/kube-apiserver-<version>/kube-apiserver,
// building it from the Go module proxy first if it is missing or broken. A
// cold build takes about three and a half minutes. Concurrent callers, in
// this or other processes, serialize on a file lock so that only one of them
// builds. logf receives progress messages and may be nil.
func EnsureKubeAPIServer(ctx context.Context, logf func(string, ...any)) (string, error) {
	return ensureGoBinary(ctx, goBinary{
		label:   "kube-apiserver " + KubernetesVersion,
		dirName: "kube-apiserver-" + KubernetesVersion,
		file:    "kube-apiserver",
		pkg:     kubeAPIServerPackage,
		ldflags: kubeVersionLDFlags(),
		writeWrapper: func(ctx context.Context, goBin, dir string, _ func(string, ...any)) error {
			return writeKubeWrapper(ctx, goBin, dir)
		},
		verify: verifyKubeAPIServer,
	}, logf)
}

// kubeVersionLDFlags stamps the release version into the binary, as the
// Kubernetes release build does; without it kube-apiserver reports
// v0.0.0-master and /version is useless to clients.
func kubeVersionLDFlags() string {
	major, rest, _ := strings.Cut(KubernetesVersion, ".")
	minor, _, _ := strings.Cut(rest, ".")
	var flags []string
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion=v"+KubernetesVersion,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
			"-X", pkg+".buildDate=1970-01-01T00:00:00Z",
		)
	}
	return "-s -w " + strings.Join(flags, " ")
}

// writeKubeWrapper writes a module in dir that requires k8s.io/kubernetes and
// replaces every staging module that Kubernetes' go.mod points at
// ./staging/... by its published release of the same module path.
func writeKubeWrapper(ctx context.Context, goBin, dir string) error {
	return writeModuleWrapper(ctx, goBin, dir, "kubewrap", kubernetesModule, KubernetesVersion, kubeAPIServerPackage,
		func(replaces []string) ([]string, error) {
			return stagingReplaces(replaces, "v0."+strings.SplitN(KubernetesVersion, ".", 2)[1])
		})
}

// stagingReplaces turns the "k8s.io/x => ./staging/src/k8s.io/x" replace
// directives of Kubernetes' go.mod into "k8s.io/x => k8s.io/x <version>".
// Other replace directives are not expected and are rejected, so that a
// future release that adds one fails loudly instead of building something
// else than upstream.
func stagingReplaces(replaces []string, version string) ([]string, error) {
	var out []string
	for _, r := range replaces {
		from, target, ok := strings.Cut(r, "=>")
		if !ok {
			return nil, fmt.Errorf("malformed replace directive %q", r)
		}
		from, target = strings.TrimSpace(from), strings.TrimSpace(target)
		if !strings.HasPrefix(target, "./staging/") {
			return nil, fmt.Errorf("unexpected replace directive %q (only ./staging replacements are supported)", r)
		}
		path := strings.Fields(from)[0] // drop a version on the left, if any
		if !strings.HasPrefix(path, "k8s.io/") {
			return nil, fmt.Errorf("unexpected staging module %q", path)
		}
		out = append(out, path+" => "+path+" "+version)
	}
	if len(out) == 0 {
		return nil, errors.New("no ./staging replace directives found")
	}
	return out, nil
}

// verifyKubeAPIServer runs `kube-apiserver --version` and checks that it
// reports KubernetesVersion.
func verifyKubeAPIServer(ctx context.Context, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, kubeVersionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--version")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s --version: %w: %s", bin, err, tail(stderr.Bytes(), maxOutputInError))
	}
	want := "Kubernetes v" + KubernetesVersion
	if got := strings.TrimSpace(stdout.String()); got != want {
		return fmt.Errorf("%s --version printed %q, want %q", bin, got, want)
	}
	return nil
}

// KubeOptions configures StartKube.
type KubeOptions struct {
	// Detach makes etcd and kube-apiserver outlive this process (used by
	// the demo lab). Otherwise they are children of this process, killed by
	// Stop or when this process dies.
	Detach bool
	// Logf receives progress messages (including the kube-apiserver build,
	// when it is not cached yet) and may be nil.
	Logf func(string, ...any)
}

// Kube is a running Kubernetes API: a real kube-apiserver of
// KubernetesVersion backed by its own etcd, both on loopback. There are no
// controllers, scheduler or nodes: objects are stored and validated, CRDs
// are served, but nothing reconciles them (a deleted namespace, for
// example, stays Terminating forever).
type Kube struct {
	// URL is the API server's address, "https://127.0.0.1:PORT".
	URL string
	// CAData is the PEM certificate of the CA that signed the serving
	// certificate (kube-apiserver self-signs it into Dir/pki).
	CAData []byte
	// Token is the bearer token of KubeAdminUser, a member of
	// system:masters (cluster admin).
	Token string
	// KubeconfigPath is a kubeconfig file for KubeAdminUser whose current
	// context is KubeContext; it verifies the server with CAData.
	KubeconfigPath string
	// Kubeconfig is the content of KubeconfigPath.
	Kubeconfig []byte
	// Dir is the instance directory: etcd data, certificates, token file,
	// kubeconfig and logs.
	Dir string
	// EtcdPID and APIServerPID are the process ids of etcd and
	// kube-apiserver.
	EtcdPID, APIServerPID int
	// EtcdURL is etcd's client URL.
	EtcdURL string
	// APIServerPath is the kube-apiserver binary; with EtcdPath it guards
	// recorded pids against reuse (see ProcessAlive).
	APIServerPath string
	// EtcdLogPath and APIServerLogPath are the logs of the two processes.
	EtcdLogPath, APIServerLogPath string

	client  *http.Client
	etcd    *peerProc
	api     *peerProc
	stopped stopOnce
}

// errKubePortInUse reports that etcd or kube-apiserver could not bind.
var errKubePortInUse = errors.New("port already in use")

// StartKube ensures the kube-apiserver binary (EnsureKubeAPIServer), then
// starts etcd and kube-apiserver with their files in dir and waits until
// /readyz answers. It needs Debian's etcd-server. Startup is bounded by ctx
// (the build, when needed, only by ctx) and by an internal timeout. The
// caller must Stop the instance, e.g. in t.Cleanup.
func StartKube(ctx context.Context, dir string, opts KubeOptions) (*Kube, error) {
	logf := logfOrNop(opts.Logf)
	if _, err := os.Stat(EtcdPath); err != nil {
		return nil, fmt.Errorf("etcd not found (install Debian's etcd-server, see scripts/install-deps): %w", err)
	}
	k := &Kube{}
	var start time.Time
	err := peerStart{
		ensure: func(ctx context.Context) error {
			bin, err := EnsureKubeAPIServer(ctx, logf)
			if err != nil {
				return err
			}
			if bin, err = filepath.EvalSymlinks(bin); err != nil {
				return fmt.Errorf("resolving kube-apiserver path: %w", err)
			}
			k.APIServerPath = bin
			return nil
		},
		prepare: func(context.Context) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("resolving kube dir: %w", err)
			}
			k.Dir = abs
			k.EtcdLogPath = filepath.Join(abs, kubeEtcdLogName)
			k.APIServerLogPath = filepath.Join(abs, kubeAPIServerLogName)
			k.KubeconfigPath = filepath.Join(abs, kubeconfigName)
			if err := k.prepare(); err != nil {
				return fmt.Errorf("preparing kube dir %s: %w", abs, err)
			}
			return nil
		},
		timeout:  kubeStartTimeout,
		attempts: kubePortAttempts,
		launch: func(ctx context.Context) error {
			if start.IsZero() {
				start = time.Now()
			}
			err := k.launch(ctx, opts.Detach)
			if err != nil {
				k.kill()
				return fmt.Errorf("starting Kubernetes API in %s: %w", k.Dir, err)
			}
			return nil
		},
		retry: func(err error) bool {
			if !errors.Is(err, errKubePortInUse) {
				return false
			}
			// Logged without launch's "starting Kubernetes API in" prefix.
			logf("kube: %v; retrying on other ports", errors.Unwrap(err))
			return true
		},
	}.run(ctx)
	if err != nil {
		return nil, err
	}
	logf("kube-apiserver %s ready at %s in %s", KubernetesVersion, k.URL, time.Since(start).Round(time.Millisecond))
	noteSecret("Kubernetes bearer token", k.Token)
	return k, nil
}

// prepare creates the instance directory with the admin token, the service
// account key and an empty etcd data dir.
func (k *Kube) prepare() error {
	if err := os.RemoveAll(filepath.Join(k.Dir, kubeEtcdDataName)); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(k.Dir, kubeCertDirName)); err != nil {
		return err
	}
	for _, d := range []string{kubeEtcdDataName, kubeCertDirName} {
		if err := os.MkdirAll(filepath.Join(k.Dir, d), 0o700); err != nil {
			return err
		}
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("generating token: %w", err)
	}
	k.Token = hex.EncodeToString(token)
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", k.Token, KubeAdminUser, KubeAdminUser)
	if err := writeFileMode(filepath.Join(k.Dir, kubeTokensName), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating service account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding service account key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFileMode(filepath.Join(k.Dir, kubeSAKeyName), keyPEM, 0o600); err != nil {
		return fmt.Errorf("writing service account key: %w", err)
	}
	return nil
}

// launch starts etcd and kube-apiserver on fresh ports and waits for both.
func (k *Kube) launch(ctx context.Context, detach bool) error {
	clientPort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	apiPort, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	k.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	k.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	// A restart on other ports must not find data naming the old ones.
	dataDir := filepath.Join(k.Dir, kubeEtcdDataName)
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("clearing etcd data: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating etcd data dir: %w", err)
	}
	k.etcd = &peerProc{name: "etcd", exe: EtcdPath, log: k.EtcdLogPath, grace: kubeStopGrace, pid: &k.EtcdPID}
	err = k.etcd.start(exec.Command(EtcdPath,
		"--name", "testbed",
		"--data-dir", dataDir,
		"--listen-client-urls", k.EtcdURL,
		"--advertise-client-urls", k.EtcdURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "testbed="+peerURL,
		"--log-outputs", "stderr",
	), detach)
	if err != nil {
		return err
	}
	if err := k.waitEtcd(ctx); err != nil {
		return err
	}

	certDir := filepath.Join(k.Dir, kubeCertDirName)
	saKey := filepath.Join(k.Dir, kubeSAKeyName)
	k.api = &peerProc{name: "kube-apiserver", exe: k.APIServerPath, log: k.APIServerLogPath, grace: kubeStopGrace, pid: &k.APIServerPID}
	err = k.api.start(exec.Command(k.APIServerPath,
		"--etcd-servers="+k.EtcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+certDir,
		"--service-account-issuer="+kubeServiceAccountIssuer,
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--token-auth-file="+filepath.Join(k.Dir, kubeTokensName),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range="+kubeServiceCIDR,
		"--disable-admission-plugins=ServiceAccount",
		"--profiling=false",
	), detach)
	if err != nil {
		return err
	}
	if err := k.waitAPIServer(ctx); err != nil {
		return err
	}
	return k.writeKubeconfig()
}

// stopKubeProc stops p (see peerProc.terminate).
func stopKubeProc(p *peerProc) error {
	if err := p.terminate(); err != nil {
		return fmt.Errorf("stopping %s (pid %d): %w", p.name, *p.pid, err)
	}
	return nil
}

// kubeStartFailure decorates a startup error with the tail of the process log,
// marking bind failures so that StartKube retries other ports.
func kubeStartFailure(p *peerProc, err error) error {
	log, _ := os.ReadFile(p.log)
	if bytes.Contains(log, []byte("address already in use")) {
		err = fmt.Errorf("%w: %w", errKubePortInUse, err)
	}
	return fmt.Errorf("%w; %s log %s:\n%s", err, p.name, p.log, tail(log, maxOutputInError))
}

// kill stops whatever a failed launch attempt left running.
func (k *Kube) kill() {
	_ = stopKubeProc(k.api)
	_ = stopKubeProc(k.etcd)
	k.api, k.etcd = nil, nil
	k.APIServerPID, k.EtcdPID = 0, 0
}

// waitEtcd polls etcd's /health until it reports healthy.
func (k *Kube) waitEtcd(ctx context.Context) error {
	client := &http.Client{Timeout: kubeRequestTimeout}
	var lastErr error
	return waitUntil(ctx, kubePollInterval, func() (bool, error) {
		if !k.etcd.running() {
			return false, kubeStartFailure(k.etcd, errors.New("etcd exited during startup"))
		}
		lastErr = probeEtcd(ctx, client, k.EtcdURL+"/health")
		return lastErr == nil, nil
	}, func(err error) error {
		return kubeStartFailure(k.etcd, fmt.Errorf("etcd not healthy at %s: %w (last probe: %v)", k.EtcdURL, err, lastErr))
	})
}

// probeEtcd checks one /health answer.
func probeEtcd(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var health struct{ Health string }
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		return fmt.Errorf("decoding /health: %w", err)
	}
	if resp.StatusCode != http.StatusOK || health.Health != "true" {
		return fmt.Errorf("/health: %s, health %q", resp.Status, health.Health)
	}
	return nil
}

// waitAPIServer waits for the self-signed serving certificate, checks that
// it is valid for 127.0.0.1, then polls /readyz (verifying TLS) until the
// server is ready.
func (k *Kube) waitAPIServer(ctx context.Context) error {
	certPath := filepath.Join(k.Dir, kubeCertDirName, kubeServingCertName)
	var lastErr error
	return waitUntil(ctx, kubePollInterval, func() (bool, error) {
		if !k.api.running() {
			return false, kubeStartFailure(k.api, errors.New("kube-apiserver exited during startup"))
		}
		if k.client == nil {
			if lastErr = k.loadServingCA(certPath); lastErr != nil {
				return false, nil
			}
		}
		status, body, err := k.get(ctx, "/readyz")
		switch {
		case err != nil:
			lastErr = err
		case status != http.StatusOK:
			lastErr = fmt.Errorf("/readyz: HTTP %d: %s", status, tail(body, 500))
		default:
			return true, nil
		}
		return false, nil
	}, func(err error) error {
		return kubeStartFailure(k.api, fmt.Errorf("kube-apiserver not ready at %s: %w (last probe: %v)", k.URL, err, lastErr))
	})
}

// get is a GET for probes, bounded by kubeRequestTimeout.
func (k *Kube) get(ctx context.Context, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	return k.Do(ctx, http.MethodGet, path, nil, "")
}

// loadServingCA reads the certificate chain kube-apiserver wrote into
// --cert-dir (serving certificate, then its self-signed CA), checks that
// the serving certificate is valid for 127.0.0.1 under that CA and sets up
// CAData and the HTTP client.
func (k *Kube) loadServingCA(certPath string) error {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("waiting for serving certificate: %w", err)
	}
	var leaf *x509.Certificate
	var caPEM []byte
	pool := x509.NewCertPool()
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", certPath, err)
		}
		if cert.IsCA {
			pool.AddCert(cert)
			caPEM = append(caPEM, pem.EncodeToMemory(block)...)
		} else if leaf == nil {
			leaf = cert
		}
	}
	if leaf == nil || caPEM == nil {
		// Possibly still being written.
		return fmt.Errorf("%s does not hold a serving certificate and its CA yet", certPath)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		return fmt.Errorf("self-signed serving certificate %s is not valid for 127.0.0.1: %w", certPath, err)
	}
	k.CAData = caPEM
	k.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: kubeRequestTimeout,
	}}
	return nil
}

// writeKubeconfig writes the admin kubeconfig into the instance directory.
// Kubeconfig files are YAML, of which JSON is a subset.
func (k *Kube) writeKubeconfig() error {
	type named struct {
		Name    string         `json:"name"`
		Cluster map[string]any `json:"cluster,omitempty"`
		User    map[string]any `json:"user,omitempty"`
		Context map[string]any `json:"context,omitempty"`
	}
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": KubeContext,
		"clusters": []named{{Name: KubeContext, Cluster: map[string]any{
			"server":                     k.URL,
			"certificate-authority-data": base64.StdEncoding.EncodeToString(k.CAData),
		}}},
		"users": []named{{Name: KubeAdminUser, User: map[string]any{"token": k.Token}}},
		"contexts": []named{{Name: KubeContext, Context: map[string]any{
			"cluster": KubeContext, "user": KubeAdminUser,
		}}},
		"preferences": map[string]any{},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding kubeconfig: %w", err)
	}
	k.Kubeconfig = append(data, '\n')
	if err := writeFileMode(k.KubeconfigPath, k.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// Do sends an HTTPS request authenticated as the admin user to path (with
// any query) on the API server and returns the status code and body. body
// may be nil; contentType is sent when not empty. A non-2xx status is not an
// error: callers inspect it (e.g. 404 NotFound, 409 AlreadyExists).
func (k *Kube) Do(ctx context.Context, method, path string, body []byte, contentType string) (status int, resp []byte, err error) {
	if k.client == nil {
		return 0, nil, errors.New("kube: API server is not started")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.URL+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("kube %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+k.Token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	r, err := k.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("kube %s %s: %w", method, path, err)
	}
	defer r.Body.Close()
	resp, err = io.ReadAll(r.Body)
	if err != nil {
		return r.StatusCode, nil, fmt.Errorf("kube %s %s: reading response: %w", method, path, err)
	}
	return r.StatusCode, resp, nil
}

// EnsureNamespace creates the namespace name unless it exists.
func (k *Kube) EnsureNamespace(ctx context.Context, name string) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": name},
	})
	if err != nil {
		return fmt.Errorf("encoding namespace %s: %w", name, err)
	}
	status, resp, err := k.Do(ctx, http.MethodPost, "/api/v1/namespaces", body, "application/json")
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	if status != http.StatusCreated && status != http.StatusConflict {
		return fmt.Errorf("creating namespace %s: HTTP %d: %s", name, status, tail(resp, maxOutputInError))
	}
	return nil
}

// Stop terminates kube-apiserver, then etcd (SIGTERM, then SIGKILL after a
// grace period). The instance directory is left in place. It is
// idempotent and also stops a detached instance started by this process.
func (k *Kube) Stop() error {
	return k.stopped.do(func() error {
		err := errors.Join(stopKubeProc(k.api), stopKubeProc(k.etcd))
		if err != nil {
			err = fmt.Errorf("stopping Kubernetes API in %s: %w", k.Dir, err)
		}
		if k.client != nil {
			k.client.CloseIdleConnections()
		}
		return err
	})
}

// kubeStatus is the subset of a Kubernetes Status object used in errors.
type kubeStatus struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// kubeError formats a failed API response, preferring the Status message.
func kubeError(what string, status int, body []byte) error {
	var st kubeStatus
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return fmt.Errorf("%s: HTTP %d %s: %s", what, status, st.Reason, st.Message)
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, status, tail(body, maxOutputInError))
}
