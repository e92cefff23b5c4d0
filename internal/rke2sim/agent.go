package rke2sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/client-go/dynamic"
)

// Files under agent/ (as real RKE2 names them).
const (
	agentCAName         = "server-ca.crt"
	agentClientBase     = "client-kubelet"
	agentKubeconfigName = "kubelet.kubeconfig"
)

// runAgent runs `rke2 agent` until ctx ends (0) or it fails (1): join the
// server with the token, then register and heartbeat the Node.
func runAgent(ctx context.Context, cfg *Config, log *logger) int {
	if err := agentRun(ctx, cfg, log); err != nil {
		log.Fatalf("%v", err)
		return 1
	}
	return 0
}

func agentRun(ctx context.Context, cfg *Config, log *logger) error {
	server := cfg.String("server")
	if server == "" {
		return errors.New("--server is required")
	}
	raw := cfg.String("token")
	if raw == "" {
		if f := cfg.String("token-file"); f != "" {
			b, err := os.ReadFile(rooted(f))
			if err != nil {
				return fmt.Errorf("reading token-file: %w", err)
			}
			raw = strings.TrimSpace(string(b))
		}
	}
	if raw == "" {
		return errors.New("--token is required")
	}
	token, err := ParseToken(raw)
	if err != nil {
		return err
	}
	node, err := nodeSpecFrom(cfg, hostname(), false)
	if err != nil {
		return err
	}
	dataDir := cfg.String("data-dir")
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	paths := dataPaths{dataDir: rooted(dataDir)}
	jc, err := newJoinClient(server, token)
	if err != nil {
		return err
	}
	log.Infof("Starting rke2 agent %s (simulator); node %s, node-ip %s, server %s", Version, node.Name, node.InternalIP, server)

	var creds NodeCredentials
	var b backoff
	for {
		err := jc.fetchCA(ctx)
		if err == nil {
			err = jc.getJSON(ctx, pathNodeCredentials+"?node="+node.Name, nodeUser, &creds)
		}
		if err == nil {
			break
		}
		if errors.Is(err, errTokenInvalid) {
			return err
		}
		log.Oncef("join", "info", "Waiting to retrieve agent configuration; server is not ready: %v", err)
		if !b.wait(ctx) {
			return nil
		}
	}
	log.Reset("join")
	agentDir := paths.agentDir()
	for _, f := range []struct {
		name string
		data string
		mode os.FileMode
	}{
		{agentCAName, creds.CACert, 0o644},
		{agentClientBase + ".crt", creds.ClientCert, 0o644},
		{agentClientBase + ".key", creds.ClientKey, 0o600},
	} {
		if err := writeFileAtomic(filepath.Join(agentDir, f.name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	// The API server of the server the agent joined: the host of the
	// server URL, port 6443. Its certificate names "kubernetes" whatever
	// address is used.
	apiURL := "https://" + net.JoinHostPort(jc.host(), strconv.Itoa(APIServerPort))
	if err := writeKubeconfig(filepath.Join(agentDir, agentKubeconfigName), apiURL, []byte(creds.CACert), []byte(creds.ClientCert), []byte(creds.ClientKey), 0o600); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(restConfig(apiURL, []byte(creds.CACert), []byte(creds.ClientCert), []byte(creds.ClientKey), "kubernetes"))
	if err != nil {
		return err
	}
	agent := newNodeAgent(dyn, node, log)
	b = backoff{}
	for {
		err := agent.register(ctx)
		if err == nil {
			break
		}
		log.Oncef("register", "error", "Node registration failed (retrying): %v", err)
		if !b.wait(ctx) {
			return nil
		}
	}
	log.Reset("register")
	if err := sdNotify("READY=1"); err != nil {
		log.Warnf("sd_notify: %v", err)
	}
	log.Infof("rke2 agent is up and running")
	agent.heartbeat(ctx)
	log.Infof("Shutting down")
	fctx, cancel := context.WithTimeout(context.Background(), finalStatusTimeout)
	defer cancel()
	agent.markStopped(fctx)
	return nil
}
