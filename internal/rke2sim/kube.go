package rke2sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeRequestTimeout bounds one request of the simulator to kube-apiserver.
const kubeRequestTimeout = 10 * time.Second

// restConfig is a client configuration for url authenticated by a client
// certificate. serverName, when set, is the name checked in the serving
// certificate (instead of the URL's host).
func restConfig(url string, caPEM, certPEM, keyPEM []byte, serverName string) *rest.Config {
	return &rest.Config{
		Host: url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:     caPEM,
			CertData:   certPEM,
			KeyData:    keyPEM,
			ServerName: serverName,
		},
		Timeout:   kubeRequestTimeout,
		QPS:       50,
		Burst:     100,
		UserAgent: "rke2-simulator/" + Version,
	}
}

// rawGet sends a GET for path with the config's credentials and returns
// the status and body.
func rawGet(ctx context.Context, client *http.Client, cfg *rest.Config, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, body, err
}

// writeKubeconfig writes a kubeconfig whose cluster, user and context are
// all named "default", as rke2.yaml is.
func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte, mode uint32) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, osMode(mode))
}

// resourceInfo is how a kind is served.
type resourceInfo struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// errNoKindMatch reports a kind the API server does not serve (yet).
var errNoKindMatch = errors.New("no matches for kind")

// discoveryMapper maps kinds to resources by reading the API server's
// discovery documents (/api/v1, /apis/<group>/<version>), caching one
// document per group version until invalidated.
type discoveryMapper struct {
	client *http.Client
	cfg    *rest.Config

	mu    sync.Mutex
	cache map[schema.GroupVersion]map[string]resourceInfo // kind -> resource
}

func newDiscoveryMapper(client *http.Client, cfg *rest.Config) *discoveryMapper {
	return &discoveryMapper{client: client, cfg: cfg, cache: map[schema.GroupVersion]map[string]resourceInfo{}}
}

// invalidate forgets the cached document of gv.
func (m *discoveryMapper) invalidate(gv schema.GroupVersion) {
	m.mu.Lock()
	delete(m.cache, gv)
	m.mu.Unlock()
}

// resourceFor returns how gvk is served, or an error wrapping
// errNoKindMatch when it is not.
func (m *discoveryMapper) resourceFor(ctx context.Context, gvk schema.GroupVersionKind) (resourceInfo, error) {
	gv := gvk.GroupVersion()
	m.mu.Lock()
	kinds, ok := m.cache[gv]
	m.mu.Unlock()
	if !ok {
		path := "/apis/" + gv.Group + "/" + gv.Version
		if gv.Group == "" {
			path = "/api/" + gv.Version
		}
		status, body, err := rawGet(ctx, m.client, m.cfg, path)
		if err != nil {
			return resourceInfo{}, fmt.Errorf("discovering %s: %w", gv, err)
		}
		kinds = map[string]resourceInfo{}
		switch status {
		case http.StatusOK:
			var list struct {
				Resources []struct {
					Name       string `json:"name"`
					Kind       string `json:"kind"`
					Namespaced bool   `json:"namespaced"`
				} `json:"resources"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				return resourceInfo{}, fmt.Errorf("discovering %s: %w", gv, err)
			}
			for _, r := range list.Resources {
				if strings.Contains(r.Name, "/") {
					continue // subresource
				}
				kinds[r.Kind] = resourceInfo{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced}
			}
		case http.StatusNotFound:
			// group version not served (yet): cached as empty until invalidated
		default:
			return resourceInfo{}, fmt.Errorf("discovering %s: HTTP %d", gv, status)
		}
		m.mu.Lock()
		m.cache[gv] = kinds
		m.mu.Unlock()
	}
	info, ok := kinds[gvk.Kind]
	if !ok {
		return resourceInfo{}, fmt.Errorf("%w %q in version %q", errNoKindMatch, gvk.Kind, gv.String())
	}
	return info, nil
}
