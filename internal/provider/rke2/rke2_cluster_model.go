// Conversions of the model into the rke2 client's node specs, and the
// secrets and names the plan and apply need from it.

package rke2

import (
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// defaultEndpoint is the first server's node-ip, else its ssh host.
func (m *rke2ClusterModel) defaultEndpoint() (string, bool) {
	if len(m.Servers) == 0 {
		return "", false
	}
	s := m.Servers[0]
	cfg, ok := knownStrings(s.Config)
	if !ok {
		return "", false
	}
	if ip := strings.TrimSpace(strings.Split(cfg[rke2.KeyNodeIP], ",")[0]); ip != "" {
		return ip, true
	}
	if s.SSH == nil || s.SSH.Host.IsUnknown() || s.SSH.Host.IsNull() {
		return "", false
	}
	return s.SSH.Host.ValueString(), true
}

// clusterInputs are the cluster-wide values every node's config depends on.
type clusterInputs struct {
	endpoint  string
	cluster   map[string]string
	sensitive map[string]string
	typed     rke2.Config
}

func (m *rke2ClusterModel) inputs() (clusterInputs, bool) {
	var in clusterInputs
	if m.APIEndpoint.IsUnknown() || m.APIEndpoint.IsNull() {
		return in, false
	}
	in.endpoint = m.APIEndpoint.ValueString()
	var ok bool
	if in.cluster, ok = knownStrings(m.Config); !ok {
		return in, false
	}
	if in.sensitive, ok = knownStrings(m.SensitiveConfig); !ok {
		return in, false
	}
	in.typed = rke2.Config{}
	for _, s := range []struct {
		key string
		v   types.String
	}{{"cni", m.CNI}, {"cluster-cidr", m.ClusterCIDR}, {"service-cidr", m.ServiceCIDR}} {
		if s.v.IsUnknown() {
			return in, false
		}
		if !s.v.IsNull() {
			in.typed[s.key] = s.v.ValueString()
		}
	}
	for _, l := range []struct {
		key string
		v   types.List
	}{{"disable", m.Disable}, {"tls-san", m.TLSSAN}} {
		vals, ok := knownList(l.v)
		if !ok {
			return in, false
		}
		if len(vals) > 0 {
			in.typed[l.key] = vals
		}
	}
	return in, true
}

// spec is a node's config without its token; known is false while any
// input is unknown.
func (in clusterInputs) spec(role rke2.Role, n *rke2NodeModel, first bool) (rke2.NodeSpec, bool) {
	s := rke2.NodeSpec{Role: role, Cluster: in.cluster, ClusterSensitive: in.sensitive, ServerTyped: in.typed, ExtraSANs: []string{in.endpoint}}
	if n.Name.IsUnknown() {
		return s, false
	}
	s.Name = n.Name.ValueString()
	if !first {
		s.JoinURL = rke2.JoinURL(in.endpoint)
	}
	var ok bool
	if s.Labels, ok = knownStrings(n.Labels); !ok {
		return s, false
	}
	if s.Taints, ok = knownList(n.Taints); !ok {
		return s, false
	}
	if s.Node, ok = knownStrings(n.Config); !ok {
		return s, false
	}
	if s.NodeSensitive, ok = knownStrings(n.SensitiveConfig); !ok {
		return s, false
	}
	return s, true
}

// plannedHash is the config_sha256 and sensitive_config_sha256 a node
// will have once apply wrote its config.
func plannedHash(s rke2.NodeSpec) (rke2.Hashes, error) {
	return rke2.HashRendered(rke2.Build(s), s.SensitiveKeys()...)
}

// sensitiveKeys are the keys of the cluster's and the node's
// sensitive_config maps (as known; unknown values count as keys).
func (m *rke2ClusterModel) sensitiveKeys(n *rke2NodeModel) []string {
	var out []string
	for _, mp := range []types.Map{m.SensitiveConfig, n.SensitiveConfig} {
		for k := range mp.Elements() {
			out = append(out, k)
		}
	}
	return out
}

// sensitiveValues are the values of every sensitive_config map, to be
// masked in logs and error texts. Values shorter than 4 characters are
// left out: masking them would garble every log line and hide nothing.
func (m *rke2ClusterModel) sensitiveValues() []string {
	var out []string
	maps := []types.Map{m.SensitiveConfig}
	for _, l := range [][]rke2NodeModel{m.Servers, m.Agents} {
		for i := range l {
			maps = append(maps, l[i].SensitiveConfig)
		}
	}
	for _, mp := range maps {
		for _, v := range mp.Elements() {
			if s, ok := v.(types.String); ok && len(s.ValueString()) >= 4 {
				out = append(out, s.ValueString())
			}
		}
	}
	return out
}

// serversChanging reports whether apply would restart, add or remove a
// server, or move the API endpoint.
func serversChanging(state, plan *rke2ClusterModel) bool {
	if !state.APIEndpoint.Equal(plan.APIEndpoint) || len(state.Servers) != len(plan.Servers) {
		return true
	}
	for i := range plan.Servers {
		p, s := &plan.Servers[i], &state.Servers[i]
		if !p.Name.Equal(s.Name) || !p.InstalledVersion.Equal(s.InstalledVersion) || !p.ConfigSHA256.Equal(s.ConfigSHA256) || !p.SecretsSHA256.Equal(s.SecretsSHA256) {
			return true
		}
	}
	return false
}

func modelNames(nodes []rke2NodeModel) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name.ValueString())
	}
	return strings.Join(s, ", ")
}

func nodesByName(nodes []rke2NodeModel) map[string]*rke2NodeModel {
	out := map[string]*rke2NodeModel{}
	for i := range nodes {
		out[nodes[i].Name.ValueString()] = &nodes[i]
	}
	return out
}
