package rke2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

var _ resource.ResourceWithImportState = (*rke2ClusterResource)(nil)

// rke2ImportExample is shown with an import ID that cannot be read.
const rke2ImportExample = "\n\nThe ID names the server that initialized the cluster by the address it is reached at over SSH: " +
	"`server-host`, `server-host:node-name` or `server-host:ssh-port:node-name` (node-name, when given, is checked). " +
	"Example: terraform import homelab_rke2_cluster.k8s 192.168.1.21"

// ImportState adopts a running cluster: the first server is reached at
// the import ID's host with the provider's ssh block; the other nodes are
// found in the cluster's node list and reached at their InternalIP with
// the same credentials; each node's config.yaml gives its name, labels,
// taints and settings, the first server's its cluster-wide settings.
func (r *rke2ClusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := connection.ParseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import RKE2 cluster "+req.ID, err.Error()+rke2ImportExample)
		return
	}
	if id.Host == "" {
		// A plain "server-host".
		id.Host, id.Name = id.Name, ""
	}
	summary := "Unable to import RKE2 cluster at " + id.Host
	ctx, cancel := context.WithTimeout(ctx, rke2ReadTimeout)
	defer cancel()
	m := &rke2ClusterModel{
		Channel: types.StringNull(), InstallScriptURL: types.StringValue(rke2DefaultInstallScript),
		TokenWO: types.StringNull(), TokenWOVersion: types.StringNull(),
		Config: types.MapNull(types.StringType), SensitiveConfig: types.MapNull(types.StringType),
		CNI: types.StringNull(), ClusterCIDR: types.StringNull(), ServiceCIDR: types.StringNull(),
		Disable: types.ListNull(types.StringType), TLSSAN: types.ListNull(types.StringType),
		Manifests: types.MapNull(types.StringType), Drain: types.BoolValue(true), DrainTimeout: types.StringValue(rke2DefaultDrainTimeout),
		DrainEmptyDir: types.BoolValue(false), KeepOnDestroy: types.BoolValue(false), ForceDestroy: types.BoolValue(false),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
	}
	op, ctx := r.newOp(ctx, m)
	if err := r.discover(ctx, op, m, id); err != nil {
		op.failure(&resp.Diagnostics, summary, fmt.Errorf("%w\n\nNothing was changed on the nodes and nothing was imported.%s", err, rke2ImportExample))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

// importNode reads one node's config.yaml into a node model.
func importNode(ctx context.Context, n *clusterNode, role rke2.Role) (rke2.Found, error) {
	cfg, err := n.ReadConfig(ctx)
	if errors.Is(err, rke2.ErrNotFound) {
		return rke2.Found{}, fmt.Errorf("node %s (%s) is in the cluster but has no %s: it was not installed the way RKE2 documents, or this is not the machine of that node", n.Name, n.target, rke2.ConfigPath)
	}
	if err != nil {
		return rke2.Found{}, err
	}
	f := rke2.Split(cfg, role)
	n.model.Labels, n.model.Taints = types.MapNull(types.StringType), types.ListNull(types.StringType)
	if len(f.Labels) > 0 {
		n.model.Labels = tfhelp.StringMap(f.Labels)
	}
	if len(f.Taints) > 0 {
		n.model.Taints = tfhelp.StringList(f.Taints)
	}
	n.model.Config, n.model.SensitiveConfig = types.MapNull(types.StringType), types.MapNull(types.StringType)
	if len(f.Plain) > 0 {
		n.model.Config = tfhelp.StringMap(f.Plain)
	}
	if len(f.Secret) > 0 {
		n.model.SensitiveConfig = tfhelp.StringMap(f.Secret)
	}
	return f, nil
}

// discover fills m from the running cluster.
func (r *rke2ClusterResource) discover(ctx context.Context, op *rke2Op, m *rke2ClusterModel, id connection.ImportID) error {
	first := rke2NodeModel{SSH: id.SSHForImport()}
	m.Servers = []rke2NodeModel{first}
	servers, _, diags := op.connect(m)
	if diags.HasError() {
		return fmt.Errorf("connecting to %s: %s", id.Host, diagText(diags))
	}
	s0 := servers[0]
	st, err := s0.Inspect(ctx)
	if err != nil {
		return err
	}
	if !st.Installed || !st.ConfigExists {
		return fmt.Errorf("%s has no RKE2 server: %s", s0.target, map[bool]string{true: rke2.ConfigPath + " is missing", false: "rke2 is not installed"}[st.Installed])
	}
	f, err := importNode(ctx, s0, rke2.Server)
	if err != nil {
		return err
	}
	if f.JoinURL != "" {
		return fmt.Errorf("%s is a server that joined the cluster through %s, not the one that initialized it. "+
			"Import with the address of the server whose config.yaml has no `server:` key: it is the first server block, the one the others join", s0.target, f.JoinURL)
	}
	name := f.Name
	if name == "" {
		res, err := s0.Runner.Run(ctx, remote.Command("hostname"))
		if err != nil {
			return fmt.Errorf("reading the hostname of %s (its config.yaml sets no node-name, so the node is named after it): %w", s0.target, err)
		}
		name = strings.TrimSpace(string(res.Stdout))
	}
	if id.Name != "" && id.Name != name {
		return fmt.Errorf("the server at %s is node %s, not %s as the import ID says", s0.target, name, id.Name)
	}
	s0.Name, s0.model.Name = name, types.StringValue(name)
	for k, v := range f.Typed {
		switch x := v.(type) {
		case string:
			*map[string]*types.String{"cni": &m.CNI, "cluster-cidr": &m.ClusterCIDR, "service-cidr": &m.ServiceCIDR}[k] = types.StringValue(x)
		case []string:
			*map[string]*types.List{"disable": &m.Disable, "tls-san": &m.TLSSAN}[k] = tfhelp.StringList(x)
		}
	}
	// The API is first reached at the first server's own address.
	endpoint, _ := m.defaultEndpoint()
	if _, _, err := op.kube(ctx, servers, endpoint); err != nil {
		return err
	}
	uid, err := op.client().NamespaceUID(ctx, "kube-system")
	if err != nil {
		return fmt.Errorf("asking the cluster at %s for its identity: %w", op.client().Host(), err)
	}
	nodes, err := op.client().Nodes(ctx)
	if err != nil {
		return fmt.Errorf("listing the cluster's nodes at %s: %w", op.client().Host(), err)
	}
	found := false
	for _, n := range nodes {
		if n.Name == name {
			found = true
			continue
		}
		if len(n.InternalIPs) == 0 {
			return fmt.Errorf("node %s of the cluster reports no InternalIP to reach it at over SSH", n.Name)
		}
		nm := rke2NodeModel{Name: types.StringValue(n.Name), SSH: &connection.SSHModel{}}
		nm.SSH.Host = types.StringValue(n.InternalIPs[0])
		if isServerNode(n) {
			m.Servers = append(m.Servers, nm)
		} else {
			m.Agents = append(m.Agents, nm)
		}
	}
	if !found {
		return fmt.Errorf("the cluster at %s has no node %s (its nodes: %s): the server at %s belongs to another cluster", op.client().Host(), name, strings.Join(nodeInfoNames(nodes), ", "), s0.target)
	}
	sort.SliceStable(m.Servers[1:], func(i, j int) bool { return m.Servers[1+i].Name.ValueString() < m.Servers[1+j].Name.ValueString() })
	servers, agents, diags := op.connect(m)
	if diags.HasError() {
		return fmt.Errorf("connecting to the nodes: %s", diagText(diags))
	}
	// The endpoint the other nodes join through, when they agree on one.
	joins := map[string]bool{}
	for _, n := range append(append([]*clusterNode{}, servers[1:]...), agents...) {
		nf, err := importNode(ctx, n, n.Role)
		if err != nil {
			return err
		}
		if nf.JoinURL != "" {
			ep, err := rke2.EndpointOf(nf.JoinURL)
			if err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
			joins[ep] = true
		}
	}
	m.APIEndpoint = types.StringValue(endpoint)
	if len(joins) == 1 {
		for ep := range joins {
			m.APIEndpoint = types.StringValue(ep)
		}
	}
	// The provider appends api_endpoint to the servers' tls-san itself:
	// found last there (a file the provider wrote), it is not part of the
	// configured tls_san, so that importing a managed cluster again reads
	// what its configuration says.
	if sans, _ := knownList(m.TLSSAN); len(sans) > 0 && sans[len(sans)-1] == m.APIEndpoint.ValueString() {
		m.TLSSAN = types.ListNull(types.StringType)
		if len(sans) > 1 {
			m.TLSSAN = tfhelp.StringList(sans[:len(sans)-1])
		}
	}
	if _, down, err := op.readBack(ctx, append(append([]*clusterNode{}, servers...), agents...)); err != nil || len(down) > 0 {
		if err == nil {
			err = firstReachErr(down)
		}
		return err
	}
	// s0 was connected before the node list grew: its model is a stale
	// copy; the first server's read-back is in m.
	s0 = servers[0]
	m.Version = s0.model.InstalledVersion
	if m.Version.ValueString() == "" {
		return fmt.Errorf("rke2 --version on %s printed no version", s0.target)
	}
	token, err := s0.ReadToken(ctx)
	if err != nil {
		return err
	}
	m.Token = types.StringValue(rke2.TokenSecret(token))
	data, err := s0.ReadKubeconfig(ctx)
	if err != nil {
		return err
	}
	creds, err := rke2.RewriteKubeconfig(data, m.APIEndpoint.ValueString())
	if err != nil {
		return fmt.Errorf("node %s: %w", s0.Name, err)
	}
	m.setCredentials(creds)
	m.ID, m.ClusterID = types.StringValue(uid), types.StringValue(uid)
	return nil
}

// isServerNode reports whether a Node runs RKE2's control plane.
func isServerNode(n kube.NodeInfo) bool {
	return n.Labels["node-role.kubernetes.io/control-plane"] == "true" || n.Labels["node-role.kubernetes.io/etcd"] == "true"
}

func nodeInfoNames(nodes []kube.NodeInfo) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// diagText is the text of diagnostics' errors.
func diagText(d diag.Diagnostics) string {
	var out []string
	for _, e := range d.Errors() {
		out = append(out, e.Summary()+": "+e.Detail())
	}
	return strings.Join(out, "; ")
}
