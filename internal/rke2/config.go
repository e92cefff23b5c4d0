package rke2

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Paths and ports RKE2 uses.
const (
	ConfigPath     = "/etc/rancher/rke2/config.yaml"
	KubeconfigPath = "/etc/rancher/rke2/rke2.yaml"
	TokenPath      = "/var/lib/rancher/rke2/server/token"
	ManifestsDir   = "/var/lib/rancher/rke2/server/manifests"
	ImagesDir      = "/var/lib/rancher/rke2/agent/images"
	// StagingDir is where airgap artifacts are uploaded on a node. It lives
	// under RKE2's data directory so rke2-uninstall.sh removes it too.
	StagingDir = "/var/lib/rancher/rke2/homelab-artifacts"

	SupervisorPort = 9345
	APIPort        = 6443
)

// Role is what a node runs: a server (control plane and etcd) or an agent.
type Role string

const (
	Server Role = "server"
	Agent  Role = "agent"
)

// Unit is the systemd unit of the role.
func (r Role) Unit() string { return "rke2-" + string(r) }

// Keys of config.yaml that the provider sets itself from other attributes;
// they may not appear in user-supplied config maps.
const (
	KeyToken     = "token"
	KeyServer    = "server"
	KeyNodeName  = "node-name"
	KeyNodeLabel = "node-label"
	KeyNodeTaint = "node-taint"
	KeyNodeIP    = "node-ip"
	KeyTLSSAN    = "tls-san"
)

// ManagedKeys are set by the provider (from name, labels, taints, the
// join address and the token) and refused in user config maps.
var ManagedKeys = []string{KeyToken, KeyServer, KeyNodeName, KeyNodeLabel, KeyNodeTaint}

// ServerOnlyKeys are flags that only rke2 server accepts. Cluster-wide
// config keys listed here are written to servers only, so changing one
// does not restart agents (an agent would only warn and ignore them).
var ServerOnlyKeys = map[string]bool{
	"cni": true, "disable": true, "tls-san": true, "cluster-cidr": true, "service-cidr": true,
	"cluster-dns": true, "cluster-domain": true, "service-node-port-range": true,
	"write-kubeconfig-mode": true, "write-kubeconfig": true, "advertise-address": true,
	"egress-selector-mode": true, "disable-cloud-controller": true, "disable-kube-proxy": true,
	"disable-scheduler": true, "disable-apiserver": true, "disable-controller-manager": true, "disable-etcd": true,
	"kube-apiserver-arg": true, "kube-scheduler-arg": true, "kube-controller-manager-arg": true,
	"kube-cloud-controller-manager-arg": true, "etcd-arg": true, "etcd-expose-metrics": true,
	"etcd-snapshot-schedule-cron": true, "etcd-snapshot-retention": true, "etcd-snapshot-dir": true,
	"etcd-disable-snapshots": true, "etcd-snapshot-name": true, "etcd-snapshot-compress": true,
	"etcd-s3": true, "etcd-s3-endpoint": true, "etcd-s3-bucket": true, "etcd-s3-folder": true,
	"etcd-s3-region": true, "etcd-s3-access-key": true, "etcd-s3-secret-key": true,
	"cluster-init": true, "cluster-reset": true, "secrets-encryption": true, "embedded-registry": true,
	"enable-servicelb": true, "ingress-controller": true, "audit-policy-file": true, "pod-security-admission-config-file": true,
}

// IsManagedKey reports whether k is set by the provider.
func IsManagedKey(k string) bool {
	for _, m := range ManagedKeys {
		if k == m {
			return true
		}
	}
	return false
}

// Config is the content of config.yaml: flag names to a string or a list
// of strings (values read back from a node may be any YAML value).
type Config map[string]any

// NodeSpec is everything that goes into one node's config.yaml.
type NodeSpec struct {
	Role Role
	Name string
	// JoinURL is "https://<api_endpoint>:9345" for every node but the one
	// that initializes the cluster, which has "".
	JoinURL string
	// Token is written as the token key; it is never part of the hash.
	Token  string
	Labels map[string]string
	// Taints in RKE2's syntax, key=value:Effect.
	Taints []string
	// ServerTyped are server-only keys from typed attributes (cni, disable,
	// tls-san, cluster-cidr, service-cidr), each a string or []string.
	ServerTyped Config
	// Cluster holds the cluster-wide config map; ServerOnlyKeys in it go
	// to servers only.
	Cluster map[string]string
	// Node is the node's own config map; it wins over Cluster.
	Node map[string]string
	// ClusterSensitive and NodeSensitive are the sensitive_config maps:
	// merged like Cluster and Node (each over its plain twin, which may
	// not hold the same keys), but their values are secrets: see
	// SensitiveKeys and Hash.
	ClusterSensitive, NodeSensitive map[string]string
	// ExtraSANs are appended to tls-san on servers (the API endpoint).
	ExtraSANs []string
}

// Build renders the spec into a Config.
func Build(s NodeSpec) Config {
	c := Config{}
	for _, m := range []map[string]string{s.Cluster, s.ClusterSensitive} {
		for k, v := range m {
			if s.Role == Agent && ServerOnlyKeys[k] {
				continue
			}
			c[k] = v
		}
	}
	if s.Role == Server {
		for k, v := range s.ServerTyped {
			c[k] = v
		}
	}
	for _, m := range []map[string]string{s.Node, s.NodeSensitive} {
		for k, v := range m {
			c[k] = v
		}
	}
	if s.Role == Server && len(s.ExtraSANs) > 0 {
		sans := toList(c[KeyTLSSAN])
		for _, san := range s.ExtraSANs {
			if san != "" && !contains(sans, san) {
				sans = append(sans, san)
			}
		}
		c[KeyTLSSAN] = sans
	}
	c[KeyNodeName] = s.Name
	if s.JoinURL != "" {
		c[KeyServer] = s.JoinURL
	}
	if s.Token != "" {
		c[KeyToken] = s.Token
	}
	if len(s.Labels) > 0 {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		labels := make([]string, len(keys))
		for i, k := range keys {
			labels[i] = k + "=" + s.Labels[k]
		}
		c[KeyNodeLabel] = labels
	}
	if len(s.Taints) > 0 {
		c[KeyNodeTaint] = append([]string(nil), s.Taints...)
	}
	return c
}

// SensitiveKeys are the keys of the spec's sensitive_config maps.
func (s NodeSpec) SensitiveKeys() []string {
	var out []string
	for _, m := range []map[string]string{s.ClusterSensitive, s.NodeSensitive} {
		for k := range m {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// toList turns a config value that may be a list or a comma-separated
// string (as RKE2 accepts for list flags) into a list.
func toList(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case []string:
		return append([]string(nil), x...)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case string:
		var out []string
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

const header = "# Written by terraform-provider-homelab (homelab_rke2_cluster). Changes made here\n" +
	"# show as drift in the next plan and are reverted by apply.\n"

// Render returns config.yaml's content: a comment and the map as YAML
// with sorted keys.
func Render(c Config) ([]byte, error) {
	out, err := yaml.Marshal(map[string]any(c))
	if err != nil {
		return nil, fmt.Errorf("rendering config.yaml: %w", err)
	}
	return append([]byte(header), out...), nil
}

// Parse reads config.yaml's content. An empty file is an empty Config.
func Parse(data []byte) (Config, error) {
	c := Config{}
	if err := yaml.Unmarshal(data, (*map[string]any)(&c)); err != nil {
		return nil, fmt.Errorf("parsing config.yaml: %w", err)
	}
	if c == nil {
		c = Config{}
	}
	return c, nil
}

// Hashes are the two hashes of a config.yaml by which drift is seen.
type Hashes struct {
	// Config is "sha256:<hex>" of the config without its token and with
	// the value of every secret-bearing key replaced by a placeholder: a
	// secret key added, removed or renamed counts, its value does not.
	// It is stored in plain state, so no secret may reach it.
	Config string
	// Secrets is "sha256:<hex>" of the secret-bearing keys and their
	// values (never the token), "" when there are none. It is stored as a
	// sensitive attribute, so that a secret changed on the node is drift
	// too.
	Secrets string
}

// redactedValue stands for a secret's value in Hashes.Config.
const redactedValue = "(sensitive)"

// Hash hashes c in canonical form: the JSON of the map (sorted keys) as
// YAML parsing yields it, so comments, key order and quoting do not
// count. The token is in neither hash. Secret-bearing keys are those of
// SecretKeysOf(c, sensitiveKeys...). Use HashRendered for a Config built
// by Build, so that it is compared in the same form as one read back from
// a node.
func Hash(c Config, sensitiveKeys ...string) (Hashes, error) {
	secret := map[string]bool{}
	for _, k := range SecretKeysOf(c, sensitiveKeys...) {
		secret[k] = true
	}
	public, secrets := make(map[string]any, len(c)), map[string]any{}
	for k, v := range c {
		switch {
		case k == KeyToken:
		case secret[k]:
			public[k] = redactedValue
			secrets[k] = v
		default:
			public[k] = v
		}
	}
	var h Hashes
	var err error
	if h.Config, err = sum(public); err != nil {
		return Hashes{}, err
	}
	if len(secrets) > 0 {
		if h.Secrets, err = sum(secrets); err != nil {
			return Hashes{}, err
		}
	}
	return h, nil
}

func sum(m map[string]any) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("hashing config.yaml: %w", err)
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:]), nil
}

// HashRendered renders c and hashes it as it will read back from the node.
func HashRendered(c Config, sensitiveKeys ...string) (Hashes, error) {
	data, err := Render(c)
	if err != nil {
		return Hashes{}, err
	}
	return HashFile(data, sensitiveKeys...)
}

// HashFile hashes the content of a config.yaml file.
func HashFile(data []byte, sensitiveKeys ...string) (Hashes, error) {
	c, err := Parse(data)
	if err != nil {
		return Hashes{}, err
	}
	return Hash(c, sensitiveKeys...)
}

// HashFileOf hashes the config.yaml of node name. A file without
// node-name (written by hand: RKE2 then names the node after its
// hostname, under which the cluster knows it) hashes as if it named the
// node, the way the provider writes it, so that adopting a cluster does
// not rewrite every node's file to add the name it already has.
func HashFileOf(data []byte, name string, sensitiveKeys ...string) (Hashes, error) {
	c, err := Parse(data)
	if err != nil {
		return Hashes{}, err
	}
	if _, ok := c[KeyNodeName]; !ok && name != "" {
		c[KeyNodeName] = name
	}
	return Hash(c, sensitiveKeys...)
}

// Token returns the token key of a config, "" when there is none.
func (c Config) Token() string {
	if s, ok := c[KeyToken].(string); ok {
		return s
	}
	return ""
}

// HostPort joins a host and a port, bracketing IPv6 addresses.
func HostPort(host string, port int) string {
	return net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
}

// JoinURL is the supervisor URL joining nodes register with.
func JoinURL(endpoint string) string { return "https://" + HostPort(endpoint, SupervisorPort) }

// APIURL is the Kubernetes API URL of the endpoint.
func APIURL(endpoint string) string { return "https://" + HostPort(endpoint, APIPort) }
