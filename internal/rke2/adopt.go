package rke2

import (
	"fmt"
	"net/url"
	"strings"
)

// Found is what a node's config.yaml says, split the way the resource
// models it. It is read when an existing cluster is imported.
type Found struct {
	// Name is node-name, "" when the file does not set it (RKE2 then
	// uses the hostname).
	Name string
	// JoinURL is the server key, "" on the server that initialized the
	// cluster.
	JoinURL string
	// Labels from node-label (key=value), Taints from node-taint.
	Labels map[string]string
	Taints []string
	// Typed are the server-only keys the resource has typed attributes
	// for: cni, cluster-cidr, service-cidr as strings; disable and tls-san
	// as lists. Empty on agents.
	Typed Config
	// Plain are the other keys (list values joined with commas, as the
	// resource's config maps take them); Secret those of them that carry
	// a secret (SecretKeysOf), which go to sensitive_config.
	Plain, Secret map[string]string
}

// TypedKeys are the config.yaml keys of the resource's typed attributes.
var TypedKeys = []string{"cni", "cluster-cidr", "service-cidr", "disable", "tls-san"}

// Split reads a config.yaml of a node of role into the resource's parts.
// The token is left out: it is read from the server's token file.
func Split(c Config, role Role) Found {
	f := Found{Labels: map[string]string{}, Typed: Config{}, Plain: map[string]string{}, Secret: map[string]string{}}
	secret := map[string]bool{}
	for _, k := range SecretKeysOf(c) {
		secret[k] = true
	}
	typed := map[string]bool{}
	for _, k := range TypedKeys {
		typed[k] = true
	}
	for k, v := range c {
		switch {
		case k == KeyToken:
		case k == KeyNodeName:
			f.Name = fmt.Sprint(v)
		case k == KeyServer:
			f.JoinURL = fmt.Sprint(v)
		case k == KeyNodeLabel:
			for _, l := range toList(v) {
				key, val, _ := strings.Cut(l, "=")
				f.Labels[key] = val
			}
		case k == KeyNodeTaint:
			f.Taints = toList(v)
		case typed[k] && role == Server:
			if k == "disable" || k == KeyTLSSAN {
				f.Typed[k] = toList(v)
			} else {
				f.Typed[k] = fmt.Sprint(v)
			}
		case typed[k]:
			// A server-only key on an agent: RKE2 ignores it there.
			f.Plain[k] = scalar(v)
		case secret[k]:
			f.Secret[k] = scalar(v)
		default:
			f.Plain[k] = scalar(v)
		}
	}
	return f
}

// scalar is a config value as the config maps hold it: lists joined with
// commas (RKE2 accepts both forms for list flags).
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any, []string:
		return strings.Join(toList(v), ",")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// EndpointOf is the host of a join URL (https://<host>:9345).
func EndpointOf(joinURL string) (string, error) {
	u, err := url.Parse(joinURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("the server key %q is not a URL such as https://<host>:9345", joinURL)
	}
	return u.Hostname(), nil
}
