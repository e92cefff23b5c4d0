package rke2sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// flagKind is how a flag's values are kept.
type flagKind int

const (
	kindString flagKind = iota // the last value wins
	kindList                   // values accumulate; each is split at commas
	kindBool
)

// Flags of real RKE2 (server and agent), by name without "--". The
// simulator acts on a few of them (see Config's users) and accepts the
// others without effect, so that a config written for real RKE2 does not
// produce warnings. Keys that are not flags of the command get the
// "Unknown flag" warning real RKE2 prints and are ignored.
var (
	commonFlags = map[string]flagKind{
		"config": kindString, "debug": kindBool, "data-dir": kindString,
		"token": kindString, "token-file": kindString, "server": kindString,
		"node-name": kindString, "with-node-id": kindBool,
		"node-label": kindList, "node-taint": kindList,
		"node-ip": kindList, "node-external-ip": kindList,
		"node-internal-dns": kindList, "node-external-dns": kindList,
		"bind-address":                      kindString,
		"image-credential-provider-bin-dir": kindString, "image-credential-provider-config": kindString,
		"container-runtime-endpoint": kindString, "default-runtime": kindString,
		"disable-default-registry-endpoint": kindBool, "snapshotter": kindString,
		"private-registry": kindString, "system-default-registry": kindString,
		"airgap-extra-registry": kindList, "resolv-conf": kindString,
		"kubelet-arg": kindList, "kube-proxy-arg": kindList,
		"protect-kernel-defaults": kindBool, "enable-pprof": kindBool, "selinux": kindBool,
		"lb-server-port": kindString, "kube-proxy-image": kindString,
		"pause-image": kindString, "runtime-image": kindString, "kubelet-path": kindString,
		"cloud-provider-name": kindString, "cloud-provider-config": kindString,
		"profile": kindString, "ingress-controller": kindList,
		"kube-proxy-extra-mount": kindList, "kube-proxy-extra-env": kindList,
		"vpn-auth": kindString, "vpn-auth-file": kindString,
	}
	serverFlags = map[string]flagKind{
		"advertise-address": kindString, "tls-san": kindList, "tls-san-security": kindBool,
		"cluster-cidr": kindList, "service-cidr": kindList,
		"service-node-port-range": kindString, "cluster-dns": kindList, "cluster-domain": kindString,
		"egress-selector-mode": kindString, "servicelb-namespace": kindString,
		"write-kubeconfig": kindString, "write-kubeconfig-mode": kindString,
		"write-kubeconfig-group": kindString, "helm-job-image": kindString,
		"agent-token": kindString, "agent-token-file": kindString,
		"cluster-reset": kindBool, "cluster-reset-restore-path": kindString,
		"kube-apiserver-arg": kindList, "etcd-arg": kindList,
		"kube-controller-manager-arg": kindList, "kube-scheduler-arg": kindList,
		"kube-cloud-controller-manager-arg": kindList,
		"kube-apiserver-extra-mount":        kindList, "kube-apiserver-extra-env": kindList,
		"kube-scheduler-extra-mount": kindList, "kube-scheduler-extra-env": kindList,
		"kube-controller-manager-extra-mount": kindList, "kube-controller-manager-extra-env": kindList,
		"etcd-extra-mount": kindList, "etcd-extra-env": kindList,
		"cloud-controller-manager-extra-mount": kindList, "cloud-controller-manager-extra-env": kindList,
		"datastore-endpoint": kindString, "datastore-cafile": kindString,
		"datastore-certfile": kindString, "datastore-keyfile": kindString,
		"etcd-expose-metrics": kindBool, "etcd-disable-snapshots": kindBool,
		"etcd-snapshot-name": kindString, "etcd-snapshot-schedule-cron": kindString,
		"etcd-snapshot-retention": kindString, "etcd-snapshot-dir": kindString,
		"etcd-snapshot-compress": kindBool, "etcd-s3": kindBool,
		"etcd-s3-endpoint": kindString, "etcd-s3-endpoint-ca": kindString,
		"etcd-s3-skip-ssl-verify": kindBool, "etcd-s3-access-key": kindString,
		"etcd-s3-secret-key": kindString, "etcd-s3-bucket": kindString,
		"etcd-s3-region": kindString, "etcd-s3-folder": kindString,
		"etcd-s3-proxy": kindString, "etcd-s3-config-secret": kindString,
		"etcd-s3-insecure": kindBool, "etcd-s3-timeout": kindString,
		"disable": kindList, "disable-scheduler": kindBool, "disable-cloud-controller": kindBool,
		"disable-kube-proxy": kindBool, "disable-apiserver": kindBool,
		"disable-controller-manager": kindBool, "disable-etcd": kindBool,
		"embedded-registry": kindBool, "supervisor-metrics": kindBool,
		"cni": kindList, "enable-servicelb": kindBool,
		"kube-apiserver-image": kindString, "kube-controller-manager-image": kindString,
		"kube-cloud-controller-manager-image": kindString, "kube-scheduler-image": kindString,
		"etcd-image": kindString, "audit-policy-file": kindString,
		"pod-security-admission-config-file": kindString,
		"control-plane-resource-requests":    kindString, "control-plane-resource-limits": kindString,
		"control-plane-probe-configuration": kindString,
		"secrets-encryption":                kindBool, "secrets-encryption-provider": kindString,
	}
	agentFlags = map[string]flagKind{}
)

// envFlags maps RKE2's environment variables to the flags they set. They
// apply when neither the command line nor a config file sets the flag.
var envFlags = map[string]string{
	"RKE2_TOKEN":             "token",
	"RKE2_TOKEN_FILE":        "token-file",
	"RKE2_URL":               "server",
	"RKE2_NODE_NAME":         "node-name",
	"RKE2_DEBUG":             "debug",
	"RKE2_KUBECONFIG_MODE":   "write-kubeconfig-mode",
	"RKE2_KUBECONFIG_OUTPUT": "write-kubeconfig",
	"RKE2_SELINUX":           "selinux",
}

// shortFlags are the one-letter aliases of the command line.
var shortFlags = map[string]string{"c": "config", "t": "token", "s": "server", "d": "data-dir", "o": "write-kubeconfig"}

// flagsFor returns the flags of command ("server" or "agent").
func flagsFor(command string) map[string]flagKind {
	out := map[string]flagKind{}
	for k, v := range commonFlags {
		out[k] = v
	}
	extra := agentFlags
	if command == "server" {
		extra = serverFlags
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// Config is the merged configuration of one `rke2 server` or `rke2 agent`
// run: command line over config files over environment.
type Config struct {
	command string
	kinds   map[string]flagKind
	values  map[string][]string
	// Warnings are the messages about ignored keys, in file order.
	Warnings []string
	// Files are the config files that were read, in order.
	Files []string
}

// String returns the value of a string flag ("" when unset).
func (c *Config) String(key string) string {
	v := c.values[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// List returns the values of a list flag, each split at commas and
// trimmed, empty items dropped.
func (c *Config) List(key string) []string {
	var out []string
	for _, v := range c.values[key] {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// Bool returns the value of a bool flag; unparsable values are false.
func (c *Config) Bool(key string) bool {
	b, _ := strconv.ParseBool(c.String(key))
	return b
}

// IsSet reports whether key was given anywhere.
func (c *Config) IsSet(key string) bool {
	_, ok := c.values[key]
	return ok
}

// set stores vals for key, appending for list flags when appendMode is set
// (a "key+:" in a config file, or a repeated command line flag).
func (c *Config) set(key string, vals []string, appendMode bool) {
	if appendMode {
		c.values[key] = append(append([]string(nil), c.values[key]...), vals...)
		return
	}
	c.values[key] = vals
}

// cliArg is one flag parsed from the command line.
type cliArg struct {
	key   string
	value string
}

// parseArgs parses the flags after `rke2 server|agent`: --key=value,
// --key value, -k value, and bool flags alone (--debug). Unknown flags and
// positional arguments are errors, as in real RKE2.
func parseArgs(command string, args []string) ([]cliArg, error) {
	kinds := flagsFor(command)
	var out []cliArg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		if long, ok := shortFlags[name]; ok && !strings.HasPrefix(a, "--") {
			name = long
		}
		kind, ok := kinds[name]
		if !ok {
			return nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if !hasValue {
			if kind == kindBool {
				value = "true"
			} else {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: -%s", name)
				}
				i++
				value = args[i]
			}
		}
		out = append(out, cliArg{key: name, value: value})
	}
	return out, nil
}

// LoadConfig merges the configuration of command ("server" or "agent"):
// the environment variables of envFlags, then the config file (--config,
// $RKE2_CONFIG_FILE or /etc/rancher/rke2/config.yaml, under RKE2_SIM_ROOT)
// and the *.yaml files of "<config file>.d" in lexical order, then args.
// A config key replaces the value of an earlier file; "key+:" appends to
// it. Keys that are not flags of command are skipped with a warning
// (Config.Warnings). A missing default config file is not an error.
func LoadConfig(command string, args []string, getenv func(string) string) (*Config, error) {
	if command != "server" && command != "agent" {
		return nil, fmt.Errorf("unknown command %q", command)
	}
	cli, err := parseArgs(command, args)
	if err != nil {
		return nil, err
	}
	c := &Config{command: command, kinds: flagsFor(command), values: map[string][]string{}}

	configPath, explicit := DefaultConfigPath, false
	if v := getenv("RKE2_CONFIG_FILE"); v != "" {
		configPath, explicit = v, true
	}
	for _, a := range cli {
		if a.key == "config" {
			configPath, explicit = a.value, true
		}
	}
	configPath = rooted(configPath)
	files := []string{configPath}
	dropins, err := filepath.Glob(filepath.Join(configPath+".d", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dropins)
	for _, f := range dropins {
		if ext := filepath.Ext(f); ext == ".yaml" || ext == ".yml" {
			files = append(files, f)
		}
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if i == 0 && !explicit && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		if err := c.mergeFile(f, data); err != nil {
			return nil, err
		}
		c.Files = append(c.Files, f)
	}

	seen := map[string]bool{}
	for _, a := range cli {
		if a.key == "config" {
			continue
		}
		// Repeated list flags accumulate, and accumulate onto config
		// file values (real RKE2 turns config keys into flags too).
		c.set(a.key, []string{a.value}, c.kinds[a.key] == kindList || seen[a.key])
		seen[a.key] = true
	}

	envNames := make([]string, 0, len(envFlags))
	for name := range envFlags {
		envNames = append(envNames, name)
	}
	sort.Strings(envNames)
	for _, name := range envNames {
		key := envFlags[name]
		if _, known := c.kinds[key]; !known || c.IsSet(key) {
			continue
		}
		if v := getenv(name); v != "" {
			c.set(key, []string{v}, false)
		}
	}
	return c, nil
}

// mergeFile merges one YAML config file into c.
func (c *Config) mergeFile(path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parsing config file %s: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: want a map of flag names to values", path)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		keyNode, valNode := root.Content[i], root.Content[i+1]
		key := strings.TrimPrefix(keyNode.Value, "--")
		appendMode := strings.HasSuffix(key, "+")
		key = strings.TrimSuffix(key, "+")
		if _, known := c.kinds[key]; !known || key == "config" {
			// Real rke2/k3s names config.yaml whatever the file.
			c.Warnings = append(c.Warnings, fmt.Sprintf("Unknown flag --%s found in config.yaml, skipping", key))
			continue
		}
		vals, err := scalarValues(valNode)
		if err != nil {
			return fmt.Errorf("config file %s: key %s: %w", path, key, err)
		}
		c.set(key, vals, appendMode)
	}
	return nil
}

// scalarValues returns the raw text of a scalar, or of each scalar of a
// sequence (raw, so that write-kubeconfig-mode: 0644 stays "0644").
func scalarValues(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return []string{""}, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := []string{}
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return nil, errors.New("list items must be scalars")
			}
			out = append(out, item.Value)
		}
		return out, nil
	case yaml.AliasNode:
		return scalarValues(n.Alias)
	default:
		return nil, errors.New("value must be a scalar or a list of scalars")
	}
}

// parseFileMode parses write-kubeconfig-mode ("0644", "644", "0o640");
// empty gives def.
func parseFileMode(s string, def os.FileMode) (os.FileMode, error) {
	if s == "" {
		return def, nil
	}
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	m, err := strconv.ParseUint(t, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("invalid file mode %q: want octal permissions such as 0644", s)
	}
	return os.FileMode(m), nil
}
