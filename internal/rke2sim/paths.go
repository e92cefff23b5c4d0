package rke2sim

import (
	"os"
	"path/filepath"
)

// RootEnv names the environment variable whose value prefixes every
// absolute path the simulator uses (host-side tests run several simulated
// nodes side by side this way). Unset or empty: the real paths.
const RootEnv = "RKE2_SIM_ROOT"

// Paths of real RKE2, before RootEnv is applied.
const (
	DefaultConfigPath     = "/etc/rancher/rke2/config.yaml"
	DefaultDataDir        = "/var/lib/rancher/rke2"
	DefaultKubeconfigPath = "/etc/rancher/rke2/rke2.yaml"
)

// Ports of an RKE2 server.
const (
	SupervisorPort = 9345
	APIServerPort  = 6443
	EtcdClientPort = 2379 // SIM: the simulator's etcd
	EtcdPeerPort   = 2380
)

// rooted returns p under $RKE2_SIM_ROOT when p is absolute and the
// variable is set; otherwise p.
func rooted(p string) string {
	root := os.Getenv(RootEnv)
	if root == "" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// dataPaths are the files and directories below the data dir
// (/var/lib/rancher/rke2 by default), already rooted.
type dataPaths struct {
	dataDir string
}

func (d dataPaths) join(elem ...string) string {
	return filepath.Join(append([]string{d.dataDir}, elem...)...)
}

func (d dataPaths) serverDir() string      { return d.join("server") }
func (d dataPaths) tlsDir() string         { return d.join("server", "tls") }
func (d dataPaths) tokenFile() string      { return d.join("server", "token") }
func (d dataPaths) nodeToken() string      { return d.join("server", "node-token") }
func (d dataPaths) manifests() string      { return d.join("server", "manifests") }
func (d dataPaths) etcdDataDir() string    { return d.join("server", "db", "etcd") }
func (d dataPaths) logDir() string         { return d.join("server", "logs") }
func (d dataPaths) credDir() string        { return d.join("server", "cred") }
func (d dataPaths) agentDir() string       { return d.join("agent") }
func (d dataPaths) imagesDir() string      { return d.join("agent", "images") }
func (d dataPaths) binDir() string         { return d.join("data", Version, "bin") }
func (d dataPaths) tls(name string) string { return filepath.Join(d.tlsDir(), name) }

// osMode converts permission bits to an os.FileMode.
func osMode(m uint32) os.FileMode { return os.FileMode(m) & os.ModePerm }
