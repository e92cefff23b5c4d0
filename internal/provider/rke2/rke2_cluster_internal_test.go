package rke2

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

func TestRKE2ClusterSchemaIsValid(t *testing.T) {
	var resp resource.SchemaResponse
	NewRKE2Cluster().Schema(context.Background(), resource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if d := resp.Schema.ValidateImplementation(context.Background()); d.HasError() {
		t.Fatal(d)
	}
}

func strMap(kv ...string) types.Map {
	m := map[string]attr.Value{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = types.StringValue(kv[i+1])
	}
	return types.MapValueMust(types.StringType, m)
}

func rke2TestModel() *rke2ClusterModel {
	node := func(name, host string, cfg types.Map) rke2NodeModel {
		return rke2NodeModel{Name: types.StringValue(name), SSH: &connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringValue(host)}},
			Labels: types.MapNull(types.StringType), Taints: types.ListNull(types.StringType), Config: cfg,
			InstalledVersion: types.StringValue("v1.31.4+rke2r1")}
	}
	return &rke2ClusterModel{
		APIEndpoint: types.StringNull(),
		Config:      strMap("disable", "rke2-ingress-nginx", "kubelet-arg", "max-pods=200"),
		CNI:         types.StringValue("cilium"), ClusterCIDR: types.StringNull(), ServiceCIDR: types.StringNull(),
		Disable: types.ListNull(types.StringType), TLSSAN: types.ListValueMust(types.StringType, []attr.Value{types.StringValue("k8s.lan")}),
		Servers: []rke2NodeModel{node("cp1", "cp1.lan", strMap("node-ip", "10.0.0.1,fd00::1")), node("cp2", "cp2.lan", types.MapNull(types.StringType))},
		Agents:  []rke2NodeModel{node("w1", "w1.lan", types.MapNull(types.StringType))},
	}
}

func TestRKE2DefaultEndpoint(t *testing.T) {
	m := rke2TestModel()
	if ep, ok := m.defaultEndpoint(); !ok || ep != "10.0.0.1" {
		t.Fatalf("node-ip: %q %v", ep, ok)
	}
	m.Servers[0].Config = types.MapNull(types.StringType)
	if ep, ok := m.defaultEndpoint(); !ok || ep != "cp1.lan" {
		t.Fatalf("ssh host: %q %v", ep, ok)
	}
	m.Servers[0].SSH.Host = types.StringUnknown()
	if _, ok := m.defaultEndpoint(); ok {
		t.Fatal("an unknown host gave an endpoint")
	}
	m.Servers[0].Config = types.MapValueMust(types.StringType, map[string]attr.Value{"node-ip": types.StringUnknown()})
	if _, ok := m.defaultEndpoint(); ok {
		t.Fatal("an unknown node-ip gave an endpoint")
	}
}

// Which nodes a change of the cluster-wide configuration affects.
func TestRKE2PlannedHashes(t *testing.T) {
	hashes := func(m *rke2ClusterModel) []string {
		m.APIEndpoint = types.StringValue("10.0.0.1")
		in, ok := m.inputs()
		if !ok {
			t.Fatal("inputs unknown")
		}
		var out []string
		for i := range m.Servers {
			s, ok := in.spec(rke2.Server, &m.Servers[i], i == 0)
			if !ok {
				t.Fatal("spec unknown")
			}
			h, err := plannedHash(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Config+" "+h.Secrets)
		}
		for i := range m.Agents {
			s, _ := in.spec(rke2.Agent, &m.Agents[i], false)
			h, _ := plannedHash(s)
			out = append(out, h.Config+" "+h.Secrets)
		}
		return out
	}
	base := hashes(rke2TestModel())
	if base[0] == base[1] {
		t.Fatal("the first server and a joining server have the same config")
	}
	// A server-only key: servers change, the agent does not.
	m := rke2TestModel()
	m.CNI = types.StringValue("calico")
	got := hashes(m)
	if got[0] == base[0] || got[1] == base[1] || got[2] != base[2] {
		t.Fatalf("cni change: %v -> %v", base, got)
	}
	m = rke2TestModel()
	m.Config = strMap("disable", "rke2-metrics-server", "kubelet-arg", "max-pods=200")
	if got := hashes(m); got[2] != base[2] || got[0] == base[0] {
		t.Fatalf("cluster-wide server-only key restarted the agent: %v -> %v", base, got)
	}
	// A key for every node.
	m = rke2TestModel()
	m.Config = strMap("disable", "rke2-ingress-nginx", "kubelet-arg", "max-pods=300")
	if got := hashes(m); got[0] == base[0] || got[2] == base[2] {
		t.Fatalf("kubelet-arg change: %v -> %v", base, got)
	}
	// One node's own config: that node only.
	m = rke2TestModel()
	m.Agents[0].Labels = strMap("tier", "worker")
	if got := hashes(m); got[0] != base[0] || got[1] != base[1] || got[2] == base[2] {
		t.Fatalf("agent labels: %v -> %v", base, got)
	}
	// A secret of the cluster-wide sensitive_config (server-only): the
	// servers' sensitive hash changes, their plain hash does not, and no
	// secret is hashed into the plain one.
	m = rke2TestModel()
	m.SensitiveConfig = strMap("etcd-s3-secret-key", "first-secret-value")
	withSecret := hashes(m)
	m.SensitiveConfig = strMap("etcd-s3-secret-key", "second-secret-value")
	changed := hashes(m)
	for i := range changed {
		plainBefore, secretBefore, _ := strings.Cut(withSecret[i], " ")
		plainAfter, secretAfter, _ := strings.Cut(changed[i], " ")
		switch {
		case plainBefore != plainAfter:
			t.Fatalf("node %d: a secret's value changed the plain hash", i)
		case i < 2 && (secretBefore == secretAfter || secretAfter == ""):
			t.Fatalf("server %d: the secret's change is not in the sensitive hash", i)
		case i == 2 && (changed[i] != base[i]):
			t.Fatalf("the agent's hashes changed for a server-only secret: %s -> %s", base[i], changed[i])
		}
	}
	if p, _, _ := strings.Cut(withSecret[0], " "); p == strings.Fields(base[0])[0] {
		t.Fatal("adding a secret key did not change the plain hash")
	}
	// A node's own secret: that node only.
	m = rke2TestModel()
	m.Agents[0].SensitiveConfig = strMap("node-external-ip", "203.0.113.7")
	if got := hashes(m); got[0] != base[0] || got[1] != base[1] || got[2] == base[2] {
		t.Fatalf("agent's sensitive_config: %v -> %v", base, got)
	}
	m = rke2TestModel()
	m.SensitiveConfig = strMap("agent-token", "0123456789", "x", "ab")
	m.Servers[1].SensitiveConfig = strMap("etcd-s3-access-key", "AKIAIOSFODNN7EXAMPLE")
	if got := strings.Join(m.sensitiveValues(), ","); !strings.Contains(got, "0123456789") || !strings.Contains(got, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(got, "ab") {
		t.Fatalf("values to mask: %s", got)
	}
	// Unknown inputs leave the hash unknown.
	m = rke2TestModel()
	m.APIEndpoint = types.StringValue("x")
	m.Config = types.MapUnknown(types.StringType)
	if _, ok := m.inputs(); ok {
		t.Fatal("unknown config map gave inputs")
	}
	for _, h := range base {
		if !strings.HasPrefix(h, "sha256:") {
			t.Fatal(h)
		}
	}
}

func TestRKE2ServersChanging(t *testing.T) {
	state := rke2TestModel()
	state.APIEndpoint = types.StringValue("10.0.0.1")
	plan := rke2TestModel()
	plan.APIEndpoint = types.StringValue("10.0.0.1")
	if serversChanging(state, plan) {
		t.Fatal("no change reported as a change")
	}
	plan.Agents[0].ConfigSHA256 = types.StringValue("sha256:other")
	if serversChanging(state, plan) {
		t.Fatal("an agent change counts as a server change")
	}
	plan.Servers[1].InstalledVersion = types.StringValue("v1.31.5+rke2r1")
	if !serversChanging(state, plan) {
		t.Fatal("a server upgrade is not a server change")
	}
	plan = rke2TestModel()
	plan.APIEndpoint = types.StringValue("k8s.lan")
	if !serversChanging(state, plan) {
		t.Fatal("a new endpoint is not a change")
	}
}

// A block whose name changes while its host stays is a rename, refused at
// plan time (issue 13 item 1); a node that moves to another host, a new
// node on a new host and a removed node are not.
func TestRKE2RenameOnSameHostIsRefused(t *testing.T) {
	state := rke2TestModel()
	rename := rke2TestModel()
	rename.Agents[0].Name = types.StringValue("w1-new")
	d := renamesOnSameHost(state, rename)
	if !d.HasError() || len(d) != 1 {
		t.Fatalf("rename on the same host: %v", d)
	}
	for _, want := range []string{`agent "w1-new"`, `node "w1"`, "rke2-uninstall.sh", `Keep the name "w1"`, "remove its block in one apply"} {
		if !strings.Contains(d[0].Detail(), want) {
			t.Errorf("detail lacks %q:\n%s", want, d[0].Detail())
		}
	}
	if got := d[0].(interface{ Path() path.Path }).Path().String(); got != "agent[0].name" {
		t.Errorf("path %s", got)
	}
	// The host spelled differently (case, trailing dot) is the same host.
	rename.Agents[0].SSH.Host = types.StringValue("W1.lan.")
	if d := renamesOnSameHost(state, rename); !d.HasError() {
		t.Error("a respelled host was not recognised")
	}
	// Same name, or a new host, or another port: no rename.
	for name, edit := range map[string]func(m *rke2ClusterModel){
		"unchanged": func(*rke2ClusterModel) {},
		"new host": func(m *rke2ClusterModel) {
			m.Agents[0].Name, m.Agents[0].SSH.Host = types.StringValue("w2"), types.StringValue("w2.lan")
		},
		"other port": func(m *rke2ClusterModel) {
			m.Agents[0].Name, m.Agents[0].SSH.Port = types.StringValue("w2"), types.Int64Value(2222)
		},
		"unknown host": func(m *rke2ClusterModel) {
			m.Agents[0].Name, m.Agents[0].SSH.Host = types.StringValue("w2"), types.StringUnknown()
		},
		"removed": func(m *rke2ClusterModel) { m.Agents = nil },
		"moved":   func(m *rke2ClusterModel) { m.Agents[0].SSH.Host = types.StringValue("w9.lan") },
	} {
		m := rke2TestModel()
		edit(m)
		if d := renamesOnSameHost(state, m); d.HasError() {
			t.Errorf("%s: %v", name, d)
		}
	}
	if d := renamesOnSameHost(nil, rename); d.HasError() {
		t.Errorf("create: %v", d)
	}
}

func TestRKE2SSHIdentity(t *testing.T) {
	for _, c := range []struct {
		m    *connection.SSHModel
		id   string
		okay bool
	}{
		{&connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringValue("Node1.LAN.")}}, "node1.lan", true},
		{&connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringValue("10.0.0.1"), Port: types.Int64Value(2201)}}, "10.0.0.1:2201", true},
		{&connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringValue("10.0.0.1"), Bastion: &connection.BastionModel{Host: types.StringValue("Jump")}}}, "jump:<null> > 10.0.0.1", true},
		{&connection.SSHModel{Local: types.BoolValue(true)}, "local", true},
		{&connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringUnknown()}}, "", false},
		{&connection.SSHModel{ProviderSSHModel: connection.ProviderSSHModel{Host: types.StringValue("a"), Port: types.Int64Unknown()}}, "", false},
		{nil, "", false},
	} {
		if id, ok := sshIdentity(c.m); id != c.id || ok != c.okay {
			t.Errorf("%+v: %q %v, want %q %v", c.m, id, ok, c.id, c.okay)
		}
	}
}

// A node block that leaves its maps out keeps what the node of that name
// has (issue 21); a new node gets nothing; a configured map wins.
func TestRKE2KeepNodeSettings(t *testing.T) {
	prior := rke2TestModel().Servers[0]
	prior.Labels = strMap("zone", "attic")
	prior.Taints = types.ListValueMust(types.StringType, []attr.Value{types.StringValue("gpu=true:NoSchedule")})
	silent := rke2NodeModel{Name: prior.Name, Labels: types.MapUnknown(types.StringType), Taints: types.ListUnknown(types.StringType),
		Config: types.MapUnknown(types.StringType), SensitiveConfig: types.MapUnknown(types.StringType)}
	cfg := []rke2NodeModel{{Name: prior.Name, Labels: types.MapNull(types.StringType), Taints: types.ListNull(types.StringType),
		Config: types.MapNull(types.StringType), SensitiveConfig: types.MapNull(types.StringType)}}
	n := silent
	keepNodeSettings(&n, &prior, cfg, 0)
	if !n.Labels.Equal(prior.Labels) || !n.Taints.Equal(prior.Taints) || !n.Config.Equal(prior.Config) || !n.SensitiveConfig.IsNull() {
		t.Fatalf("silent block of an existing node: %v %v %v %v", n.Labels, n.Taints, n.Config, n.SensitiveConfig)
	}
	n = silent
	keepNodeSettings(&n, nil, cfg, 0)
	if !n.Labels.IsNull() || !n.Taints.IsNull() || !n.Config.IsNull() || !n.SensitiveConfig.IsNull() {
		t.Fatalf("silent block of a new node: %v %v %v %v", n.Labels, n.Taints, n.Config, n.SensitiveConfig)
	}
	n = silent
	n.Labels = types.MapValueMust(types.StringType, map[string]attr.Value{})
	cfg[0].Labels = n.Labels
	keepNodeSettings(&n, &prior, cfg, 0)
	if len(n.Labels.Elements()) != 0 || n.Labels.IsNull() {
		t.Fatalf("labels = {} did not clear the labels: %v", n.Labels)
	}
}
