package rke2sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const (
	defaultServiceCIDR   = "10.43.0.0/16"
	defaultClusterCIDR   = "10.42.0.0/16"
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// startTimeout bounds the wait for etcd and kube-apiserver to answer;
	// longer than the units' TimeoutStartSec, so that under systemd a slow
	// (emulated) machine is limited by the unit, not by this.
	startTimeout = 30 * time.Minute
	// probeInterval is how often startup probes run.
	probeInterval = 250 * time.Millisecond
	// finalStatusTimeout bounds the NotReady update on shutdown.
	finalStatusTimeout = 5 * time.Second
)

// Files under server/tls.
const (
	caCertName      = "server-ca.crt"
	caKeyName       = "server-ca.key"
	saKeyName       = "service.key"
	servingBase     = "serving-kube-apiserver"
	adminBase       = "client-admin"
	etcdServingBase = "etcd/server-client"
	etcdClientBase  = "etcd/client"
)

// serverRun is one run of `rke2 server`.
type serverRun struct {
	log     *logger
	cfg     *Config
	paths   dataPaths
	node    nodeSpec
	spawner *spawner

	bind        string // bind-address (0.0.0.0 by default)
	local       string // where local clients reach the server's listeners
	advertise   string
	serviceCIDR string
	clusterCIDR string
	serverURL   string // set on joining servers

	ca             *certAuthority
	caExisted      bool
	secret         string
	saKeyPEM       []byte
	etcdEndpoints  []string // what kube-apiserver uses
	etcdAdvertised []string // what joining servers are given
	etcd           *child
	apiserver      *child
}

func newServerRun(cfg *Config, log *logger) (*serverRun, error) {
	dataDir := cfg.String("data-dir")
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	s := &serverRun{log: log, cfg: cfg, paths: dataPaths{dataDir: rooted(dataDir)}, serverURL: cfg.String("server")}
	s.bind = cfg.String("bind-address")
	if s.bind == "" {
		s.bind = "0.0.0.0"
	}
	bindIP := net.ParseIP(s.bind)
	if bindIP == nil {
		return nil, fmt.Errorf("invalid bind-address %q", s.bind)
	}
	s.local = s.bind
	if bindIP.IsUnspecified() {
		s.local = "127.0.0.1"
	}
	var err error
	if s.node, err = nodeSpecFrom(cfg, hostname(), true); err != nil {
		return nil, err
	}
	s.advertise = cfg.String("advertise-address")
	if s.advertise == "" {
		s.advertise = s.node.InternalIP
	}
	if net.ParseIP(s.advertise) == nil {
		return nil, fmt.Errorf("invalid advertise-address %q", s.advertise)
	}
	if s.serviceCIDR, err = cidrOption(cfg, "service-cidr", defaultServiceCIDR); err != nil {
		return nil, err
	}
	if s.clusterCIDR, err = cidrOption(cfg, "cluster-cidr", defaultClusterCIDR); err != nil {
		return nil, err
	}
	return s, nil
}

// cidrOption returns the comma-joined CIDRs of key, or def.
func cidrOption(cfg *Config, key, def string) (string, error) {
	vals := cfg.List(key)
	if len(vals) == 0 {
		return def, nil
	}
	for _, v := range vals {
		if _, _, err := net.ParseCIDR(v); err != nil {
			return "", fmt.Errorf("invalid %s %q", key, v)
		}
	}
	return strings.Join(vals, ","), nil
}

// firstServiceIP is the kubernetes Service's address: the first host of
// the (first) service CIDR.
func firstServiceIP(cidrs string) net.IP {
	first, _, _ := strings.Cut(cidrs, ",")
	_, n, err := net.ParseCIDR(first)
	if err != nil {
		return nil
	}
	ip := append(net.IP(nil), n.IP...)
	for i := len(ip) - 1; i >= 0; i-- {
		ip[i]++
		if ip[i] != 0 {
			break
		}
	}
	return ip
}

// runServer runs `rke2 server` until ctx ends (0) or it fails (1).
func runServer(ctx context.Context, cfg *Config, log *logger) int {
	s, err := newServerRun(cfg, log)
	if err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	s.spawner = newSpawner()
	if err := s.run(ctx); err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	return 0
}

func (s *serverRun) run(ctx context.Context) (err error) {
	role := "first server"
	if s.serverURL != "" {
		role = "server joining " + s.serverURL
	}
	s.log.Infof("Starting rke2 %s (simulator) as %s; node %s, node-ip %s, bind-address %s", Version, role, s.node.Name, s.node.InternalIP, s.bind)
	for _, d := range []string{s.paths.serverDir(), s.paths.tlsDir(), filepath.Join(s.paths.tlsDir(), "etcd"), s.paths.credDir(), s.paths.logDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.paths.manifests(), 0o755); err != nil {
		return err
	}

	// Everything started from here is stopped when run returns.
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.stopChildren()
	}()

	if s.serverURL != "" {
		if err := s.bootstrapJoin(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	} else if err := s.initCluster(); err != nil {
		return err
	}
	if err := s.writeTokens(); err != nil {
		return err
	}
	serving, err := s.issueServingCerts()
	if err != nil {
		return err
	}
	names := []string{apiServerBinary}
	if s.serverURL == "" {
		names = append(names, etcdBinary)
	}
	if err := extractBinaries(s.paths.imagesDir(), s.paths.binDir(), names...); err != nil {
		return err
	}

	sup := &supervisor{
		log: s.log, ca: s.ca, secret: s.secret, saKeyPEM: s.saKeyPEM,
		apiServerURL:  "https://" + net.JoinHostPort(s.advertise, strconv.Itoa(APIServerPort)),
		etcdEndpoints: s.etcdAdvertised,
		serviceCIDR:   s.serviceCIDR, clusterCIDR: s.clusterCIDR,
	}
	if err := sup.serve(runCtx, net.JoinHostPort(s.bind, strconv.Itoa(SupervisorPort)), serving.cert, serving.key); err != nil {
		return err
	}

	if s.serverURL == "" {
		if err := s.startEtcd(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	admin, err := s.startAPIServer(ctx, serving)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.writeKubeconfigs(admin); err != nil {
		return err
	}

	adminCfg := restConfig("https://"+net.JoinHostPort(s.local, strconv.Itoa(APIServerPort)), s.ca.certPEM, admin.cert, admin.key, "")
	dyn, err := dynamic.NewForConfig(adminCfg)
	if err != nil {
		return err
	}
	agent := newNodeAgent(dyn, s.node, s.log)
	if err := s.registerNode(ctx, agent); err != nil {
		return nil // ctx ended
	}
	lifecycle := newNodeLifecycle(dyn, s.log)
	lifecycle.pass(ctx) // lifts the not-ready taint of the node just registered
	if err := sdNotify("READY=1"); err != nil {
		s.log.Warnf("sd_notify: %v", err)
	}
	s.log.Infof("rke2 is up and running")

	httpClient, err := rest.HTTPClientFor(adminCfg)
	if err != nil {
		return err
	}
	dep := &deployer{
		dir: s.paths.manifests(), client: dyn, mapper: newDiscoveryMapper(httpClient, adminCfg),
		log: s.log, applied: map[string][32]byte{},
	}
	go dep.run(runCtx)
	go lifecycle.run(runCtx)
	heartbeatDone := make(chan struct{})
	go func() {
		defer close(heartbeatDone)
		agent.heartbeat(runCtx)
	}()

	var etcdDone <-chan struct{}
	if s.etcd != nil {
		etcdDone = s.etcd.done
	}
	select {
	case <-ctx.Done():
		s.log.Infof("Shutting down")
		cancel()
		<-heartbeatDone // no Ready=True may land after the NotReady below
		fctx, fcancel := context.WithTimeout(context.Background(), finalStatusTimeout)
		agent.markStopped(fctx)
		fcancel()
		return nil
	case <-etcdDone:
		return s.etcd.exitError()
	case <-s.apiserver.done:
		return s.apiserver.exitError()
	}
}

// stopChildren stops kube-apiserver, then etcd.
func (s *serverRun) stopChildren() {
	if s.apiserver != nil && !s.apiserver.exited() {
		s.log.Infof("Stopping kube-apiserver")
		s.apiserver.stop(childStopGrace)
	}
	if s.etcd != nil && !s.etcd.exited() {
		s.log.Infof("Stopping etcd")
		s.etcd.stop(childStopGrace)
	}
}

// registerNode registers the server's Node, retrying until it works; it
// fails only when ctx ends.
func (s *serverRun) registerNode(ctx context.Context, agent *nodeAgent) error {
	var b backoff
	for {
		err := agent.register(ctx)
		if err == nil {
			s.log.Reset("register")
			return nil
		}
		s.log.Oncef("register", "error", "Node registration failed (retrying): %v", err)
		if !b.wait(ctx) {
			return ctx.Err()
		}
	}
}

// initCluster loads or creates the cluster CA and service account key of
// a first server, and sets the etcd endpoints.
func (s *serverRun) initCluster() error {
	certPath, keyPath := s.paths.tls(caCertName), s.paths.tls(caKeyName)
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	switch {
	case errC == nil && errK == nil:
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", certPath, err)
		}
		s.ca, s.caExisted = ca, true
	case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
		ca, err := newCA(fmt.Sprintf("rke2-server-ca@%d", time.Now().Unix()))
		if err != nil {
			return err
		}
		if err := writePair(strings.TrimSuffix(certPath, ".crt"), ca.certPEM, ca.keyPEM); err != nil {
			return err
		}
		s.ca = ca
		s.log.Infof("Created cluster CA %s", certPath)
	default:
		return fmt.Errorf("cluster CA is incomplete: %v / %v", errC, errK)
	}

	saPath := s.paths.tls(saKeyName)
	sa, err := os.ReadFile(saPath)
	if errors.Is(err, os.ErrNotExist) {
		if _, sa, err = newKey(); err != nil {
			return err
		}
		if err := writeFileAtomic(saPath, sa, 0o600); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	s.saKeyPEM = sa

	port := strconv.Itoa(EtcdClientPort)
	s.etcdEndpoints = []string{"https://" + net.JoinHostPort(s.local, port)}
	adv := s.bind
	if net.ParseIP(s.bind).IsUnspecified() {
		adv = s.node.InternalIP
	}
	s.etcdAdvertised = []string{"https://" + net.JoinHostPort(adv, port)}
	return nil
}

// bootstrapJoin fetches the cluster CA and secrets from the server a
// joining server joins, retrying while the server is unreachable.
func (s *serverRun) bootstrapJoin(ctx context.Context) error {
	token, err := s.configToken()
	if err != nil {
		return err
	}
	if token.Secret == "" {
		return errors.New("--token is required to join a cluster")
	}
	jc, err := newJoinClient(s.serverURL, token)
	if err != nil {
		return err
	}
	var bd BootstrapData
	var b backoff
	for {
		err := jc.fetchCA(ctx)
		if err == nil {
			err = jc.getJSON(ctx, pathBootstrap, serverUser, &bd)
		}
		if err == nil {
			break
		}
		if errors.Is(err, errTokenInvalid) {
			return err
		}
		s.log.Oncef("join", "info", "Waiting for server %s to be ready: %v", s.serverURL, err)
		if !b.wait(ctx) {
			return ctx.Err()
		}
	}
	s.log.Reset("join")
	ca, err := parseCA([]byte(bd.CACert), []byte(bd.CAKey))
	if err != nil {
		return fmt.Errorf("bootstrap data: %w", err)
	}
	s.ca, s.caExisted, s.secret = ca, true, token.Secret
	s.saKeyPEM = []byte(bd.ServiceAccountKey)
	if s.cfg.IsSet("service-cidr") && s.serviceCIDR != bd.ServiceCIDR {
		return fmt.Errorf("critical configuration value mismatch: service-cidr %s, the cluster has %s", s.serviceCIDR, bd.ServiceCIDR)
	}
	s.serviceCIDR = bd.ServiceCIDR
	if bd.ClusterCIDR != "" {
		s.clusterCIDR = bd.ClusterCIDR
	}
	s.etcdEndpoints, s.etcdAdvertised = bd.EtcdEndpoints, bd.EtcdEndpoints
	for _, f := range []struct {
		path string
		data string
		mode os.FileMode
	}{
		{s.paths.tls(caCertName), bd.CACert, 0o644},
		{s.paths.tls(caKeyName), bd.CAKey, 0o600},
		{s.paths.tls(saKeyName), bd.ServiceAccountKey, 0o600},
		{s.paths.tls(etcdClientBase + ".crt"), bd.EtcdClientCert, 0o644},
		{s.paths.tls(etcdClientBase + ".key"), bd.EtcdClientKey, 0o600},
	} {
		if err := writeFileAtomic(f.path, []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	s.log.Infof("Joined cluster of %s; using its etcd at %s", s.serverURL, strings.Join(s.etcdEndpoints, ","))
	return nil
}

// configToken returns the token of the config (token or token-file); a
// zero Token when there is none.
func (s *serverRun) configToken() (Token, error) {
	raw := s.cfg.String("token")
	if raw == "" {
		if f := s.cfg.String("token-file"); f != "" {
			b, err := os.ReadFile(rooted(f))
			if err != nil {
				return Token{}, fmt.Errorf("reading token-file: %w", err)
			}
			raw = strings.TrimSpace(string(b))
		}
	}
	if raw == "" {
		return Token{}, nil
	}
	return ParseToken(raw)
}

// writeTokens settles the secret (config token, else the existing token
// file, else a new random one) and writes server/token and
// server/node-token as full tokens.
func (s *serverRun) writeTokens() error {
	if s.secret == "" {
		t, err := s.configToken()
		if err != nil {
			return err
		}
		switch {
		case t.Secret != "":
			if t.CAHash != "" && s.caExisted && t.CAHash != CAHash(s.ca.certPEM) {
				return fmt.Errorf("%w: the token's CA hash does not match this cluster's CA", errTokenInvalid)
			}
			s.secret = t.Secret
		default:
			if b, err := os.ReadFile(s.paths.tokenFile()); err == nil {
				if old, err := ParseToken(string(b)); err == nil {
					s.secret = old.Secret
				}
			}
			if s.secret == "" {
				secret, err := randomSecret()
				if err != nil {
					return err
				}
				s.secret = secret
			}
		}
	}
	full := []byte(FormatToken(s.ca.certPEM, s.secret) + "\n")
	for _, p := range []string{s.paths.tokenFile(), s.paths.nodeToken()} {
		if err := writeFileAtomic(p, full, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pemPair is a certificate and its key.
type pemPair struct{ cert, key []byte }

// issueServingCerts (re)issues the kube-apiserver/supervisor serving
// certificate and, on a first server, etcd's, on every start (so that new
// tls-san values apply).
func (s *serverRun) issueServingCerts() (pemPair, error) {
	domain := s.cfg.String("cluster-domain")
	if domain == "" {
		domain = "cluster.local"
	}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain, s.node.Name}
	if s.node.Hostname != s.node.Name {
		dns = append(dns, s.node.Hostname)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP(s.node.InternalIP), net.ParseIP(s.advertise)}
	if b := net.ParseIP(s.bind); !b.IsUnspecified() {
		ips = append(ips, b)
	}
	if s.node.ExternalIP != "" {
		ips = append(ips, net.ParseIP(s.node.ExternalIP))
	}
	if ip := firstServiceIP(s.serviceCIDR); ip != nil {
		ips = append(ips, ip)
	}
	for _, san := range s.cfg.List("tls-san") {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	var p pemPair
	var err error
	if p.cert, p.key, err = s.ca.issue(certRequest{cn: "kube-apiserver", dns: dedupe(dns), ips: dedupeIPs(ips), server: true}); err != nil {
		return p, err
	}
	if err := writePair(s.paths.tls(servingBase), p.cert, p.key); err != nil {
		return p, err
	}
	if s.serverURL == "" {
		ec, ek, err := s.ca.issue(certRequest{cn: "etcd-server", dns: dedupe([]string{"localhost", s.node.Name}), ips: dedupeIPs(ips), server: true, client: true})
		if err != nil {
			return p, err
		}
		if err := writePair(s.paths.tls(etcdServingBase), ec, ek); err != nil {
			return p, err
		}
		cc, ck, err := s.ca.issue(certRequest{cn: "etcd-client", client: true})
		if err != nil {
			return p, err
		}
		if err := writePair(s.paths.tls(etcdClientBase), cc, ck); err != nil {
			return p, err
		}
	}
	return p, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func dedupeIPs(in []net.IP) []net.IP {
	seen := map[string]bool{}
	var out []net.IP
	for _, ip := range in {
		if ip == nil || seen[ip.String()] {
			continue
		}
		seen[ip.String()] = true
		out = append(out, ip)
	}
	return out
}

// startEtcd starts etcd and waits until it is healthy.
func (s *serverRun) startEtcd(ctx context.Context) error {
	port, peerPort := strconv.Itoa(EtcdClientPort), strconv.Itoa(EtcdPeerPort)
	peerHost := s.bind
	listen := []string{"https://" + net.JoinHostPort(s.local, port)}
	if net.ParseIP(s.bind).IsUnspecified() {
		peerHost = s.node.InternalIP
		if s.node.InternalIP != s.local {
			listen = append(listen, "https://"+net.JoinHostPort(s.node.InternalIP, port))
		}
	}
	peerURL := "https://" + net.JoinHostPort(peerHost, peerPort)
	tf := s.paths.tls
	if err := os.MkdirAll(s.paths.etcdDataDir(), 0o700); err != nil {
		return err
	}
	args := []string{
		"--name=" + s.node.Name,
		"--data-dir=" + s.paths.etcdDataDir(),
		"--listen-client-urls=" + strings.Join(listen, ","),
		"--advertise-client-urls=" + strings.Join(s.etcdAdvertised, ","),
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + s.node.Name + "=" + peerURL,
		"--initial-cluster-state=new",
		"--cert-file=" + tf(etcdServingBase+".crt"),
		"--key-file=" + tf(etcdServingBase+".key"),
		"--trusted-ca-file=" + tf(caCertName),
		"--client-cert-auth=true",
		"--peer-cert-file=" + tf(etcdServingBase+".crt"),
		"--peer-key-file=" + tf(etcdServingBase+".key"),
		"--peer-trusted-ca-file=" + tf(caCertName),
		"--peer-client-cert-auth=true",
		"--logger=zap",
		"--log-outputs=stderr",
	}
	args = append(args, extraArgs(s.cfg.List("etcd-arg"))...)
	c, err := s.spawner.start("etcd", filepath.Join(s.paths.binDir(), etcdBinary), filepath.Join(s.paths.logDir(), "etcd.log"), args)
	if err != nil {
		return err
	}
	s.etcd = c
	s.log.Infof("Running etcd (pid %d), clients on %s", c.pid(), strings.Join(listen, ","))

	pair, err := tlsPair(tf(etcdClientBase))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: s.ca.pool(), Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
	}}}
	defer client.CloseIdleConnections()
	url := s.etcdEndpoints[0] + "/health"
	return s.waitFor(ctx, c, "etcd", func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	})
}

// tlsPair loads <base>.crt and <base>.key.
func tlsPair(base string) (tls.Certificate, error) {
	return tls.LoadX509KeyPair(base+".crt", base+".key")
}

// extraArgs turns kube-apiserver-arg/etcd-arg items "name=value" into
// "--name=value", as RKE2 does.
func extraArgs(items []string) []string {
	var out []string
	for _, a := range items {
		out = append(out, "--"+strings.TrimLeft(a, "-"))
	}
	return out
}

// waitFor polls probe until it succeeds, the child exits, ctx ends or
// startTimeout passes.
func (s *serverRun) waitFor(ctx context.Context, c *child, what string, probe func() error) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for {
		if c.exited() {
			return c.exitError()
		}
		if last = probe(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; last lines of %s:\n%s", what, startTimeout, last, c.logPath, c.logTail(2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
		case <-time.After(probeInterval):
		}
	}
}

// startAPIServer issues the admin certificate, starts kube-apiserver and
// waits until it is ready and the kube-system namespace exists. It returns
// the admin credentials.
func (s *serverRun) startAPIServer(ctx context.Context, serving pemPair) (pemPair, error) {
	var admin pemPair
	var err error
	if admin.cert, admin.key, err = s.ca.issue(certRequest{cn: "system:admin", orgs: []string{"system:masters"}, client: true}); err != nil {
		return admin, err
	}
	if err := writePair(s.paths.tls(adminBase), admin.cert, admin.key); err != nil {
		return admin, err
	}
	tf := s.paths.tls
	args := []string{
		"--advertise-address=" + s.advertise,
		"--bind-address=" + s.bind,
		"--secure-port=" + strconv.Itoa(APIServerPort),
		"--allow-privileged=true",
		"--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		// No controller-manager creates the default service accounts.
		"--disable-admission-plugins=ServiceAccount",
		"--client-ca-file=" + tf(caCertName),
		"--tls-cert-file=" + tf(servingBase+".crt"),
		"--tls-private-key-file=" + tf(servingBase+".key"),
		"--cert-dir=" + tf("temporary-certs"),
		"--etcd-servers=" + strings.Join(s.etcdEndpoints, ","),
		"--etcd-cafile=" + tf(caCertName),
		"--etcd-certfile=" + tf(etcdClientBase+".crt"),
		"--etcd-keyfile=" + tf(etcdClientBase+".key"),
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + tf(saKeyName),
		"--service-account-signing-key-file=" + tf(saKeyName),
		"--api-audiences=" + serviceAccountIssuer + ",rke2",
		"--service-cluster-ip-range=" + s.serviceCIDR,
		"--profiling=false",
	}
	if r := s.cfg.String("service-node-port-range"); r != "" {
		args = append(args, "--service-node-port-range="+r)
	}
	args = append(args, extraArgs(s.cfg.List("kube-apiserver-arg"))...)
	c, err := s.spawner.start("kube-apiserver", filepath.Join(s.paths.binDir(), apiServerBinary), filepath.Join(s.paths.logDir(), "kube-apiserver.log"), args)
	if err != nil {
		return admin, err
	}
	s.apiserver = c
	url := "https://" + net.JoinHostPort(s.local, strconv.Itoa(APIServerPort))
	s.log.Infof("Running kube-apiserver (pid %d) on %s", c.pid(), url)

	cfg := restConfig(url, s.ca.certPEM, admin.cert, admin.key, "")
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return admin, err
	}
	defer client.CloseIdleConnections()
	err = s.waitFor(ctx, c, "kube-apiserver", func() error {
		for _, path := range []string{"/readyz", "/api/v1/namespaces/kube-system"} {
			status, body, err := rawGet(ctx, client, cfg, path)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d: %.200s", path, status, body)
			}
		}
		return nil
	})
	if err == nil {
		s.log.Infof("kube-apiserver is ready")
	}
	return admin, err
}

// writeKubeconfigs writes rke2.yaml (server https://127.0.0.1:6443, mode
// from write-kubeconfig-mode) and server/cred/admin.kubeconfig (the
// address the server listens on).
func (s *serverRun) writeKubeconfigs(admin pemPair) error {
	mode, err := parseFileMode(s.cfg.String("write-kubeconfig-mode"), 0o600)
	if err != nil {
		return err
	}
	path := s.cfg.String("write-kubeconfig")
	if path == "" {
		path = DefaultKubeconfigPath
	}
	path = rooted(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	server := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(APIServerPort))
	if err := writeKubeconfig(path, server, s.ca.certPEM, admin.cert, admin.key, uint32(mode)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	s.log.Infof("Wrote kubeconfig %s", path)
	local := "https://" + net.JoinHostPort(s.local, strconv.Itoa(APIServerPort))
	return writeKubeconfig(filepath.Join(s.paths.credDir(), "admin.kubeconfig"), local, s.ca.certPEM, admin.cert, admin.key, 0o600)
}
