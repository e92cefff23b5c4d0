package rke2sim

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels of server nodes.
var serverRoleLabels = []string{
	"node-role.kubernetes.io/control-plane",
	"node-role.kubernetes.io/etcd",
	"node-role.kubernetes.io/master",
}

// Taint is a node taint from node-taint.
type Taint struct {
	Key, Value, Effect string
}

func (t Taint) String() string {
	if t.Value == "" {
		return t.Key + ":" + t.Effect
	}
	return t.Key + "=" + t.Value + ":" + t.Effect
}

// ParseLabels parses node-label values "key=value" ("key=" is an empty
// value). Keys must be qualified names and values valid label values.
func ParseLabels(items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("invalid node label %q: want key=value", item)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("invalid node label %q: key: %s", item, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("invalid node label %q: value: %s", item, strings.Join(errs, "; "))
		}
		out[k] = v
	}
	return out, nil
}

// ParseTaints parses node-taint values "key=value:Effect" or "key:Effect";
// Effect is NoSchedule, PreferNoSchedule or NoExecute.
func ParseTaints(items []string) ([]Taint, error) {
	var out []Taint
	seen := map[string]bool{}
	for _, item := range items {
		i := strings.LastIndex(item, ":")
		if i < 0 {
			return nil, fmt.Errorf("invalid node taint %q: want key=value:Effect", item)
		}
		kv, effect := item[:i], item[i+1:]
		switch effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			return nil, fmt.Errorf("invalid node taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", item, effect)
		}
		k, v, _ := strings.Cut(kv, "=")
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("invalid node taint %q: key: %s", item, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("invalid node taint %q: value: %s", item, strings.Join(errs, "; "))
		}
		id := k + ":" + effect
		if seen[id] {
			return nil, fmt.Errorf("duplicate node taint %s", id)
		}
		seen[id] = true
		out = append(out, Taint{Key: k, Value: v, Effect: effect})
	}
	return out, nil
}

// nodeSpec is what a simulated node registers.
type nodeSpec struct {
	Name       string
	Hostname   string
	InternalIP string
	ExternalIP string
	Labels     map[string]string // from node-label, plus role labels for servers
	Taints     []Taint
	Server     bool
}

// nodeSpecFrom derives the node from the config. hostname is the
// machine's host name.
func nodeSpecFrom(c *Config, hostname string, server bool) (nodeSpec, error) {
	n := nodeSpec{Server: server, Hostname: hostname}
	n.Name = strings.ToLower(c.String("node-name"))
	if n.Name == "" {
		n.Name = strings.ToLower(hostname)
	}
	if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
		return n, fmt.Errorf("invalid node name %q: %s", n.Name, strings.Join(errs, "; "))
	}
	labels, err := ParseLabels(c.List("node-label"))
	if err != nil {
		return n, err
	}
	if n.Taints, err = ParseTaints(c.List("node-taint")); err != nil {
		return n, err
	}
	if server {
		for _, l := range serverRoleLabels {
			labels[l] = "true"
		}
	}
	n.Labels = labels
	ips := c.List("node-ip")
	if len(ips) > 0 {
		n.InternalIP = ips[0]
	} else if a := c.String("advertise-address"); a != "" {
		n.InternalIP = a
	} else if b := c.String("bind-address"); b != "" && b != "0.0.0.0" {
		n.InternalIP = b
	} else {
		n.InternalIP = defaultIP()
	}
	if net.ParseIP(n.InternalIP) == nil {
		return n, fmt.Errorf("invalid node-ip %q", n.InternalIP)
	}
	if ext := c.List("node-external-ip"); len(ext) > 0 {
		n.ExternalIP = ext[0]
		if net.ParseIP(n.ExternalIP) == nil {
			return n, fmt.Errorf("invalid node-external-ip %q", n.ExternalIP)
		}
	}
	return n, nil
}

// sortedLabelKeys lists m's keys in order, for stable logs.
func sortedLabelKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// defaultIP is the address of the interface of the default route, like
// RKE2's default node-ip: found by "connecting" a UDP socket (no packet
// is sent), else the first global unicast IPv4 address, else 127.0.0.1.
func defaultIP() string {
	if c, err := net.Dial("udp4", "203.0.113.1:9"); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
			return a.IP.String()
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// hostname returns the machine's host name, lowercased.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.ToLower(h)
}
