// ModifyPlan of homelab_rke2_cluster: what is kept, what is refused at plan
// time (settings fixed at install, renames on the same machine).

package rke2

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// ModifyPlan fills in the default api_endpoint and plans each node's
// installed_version and config_sha256 from the configuration, so a node
// whose version or config.yaml was changed out of band (recorded by Read)
// shows as a change.
func (r *rke2ClusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan rke2ClusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *rke2ClusterModel
	if !req.State.Raw.IsNull() {
		state = &rke2ClusterModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	var prior map[string]*rke2NodeModel
	var priorRole map[string]string
	if state != nil {
		prior, priorRole = map[string]*rke2NodeModel{}, map[string]string{}
		for role, nodes := range map[string][]rke2NodeModel{"server": state.Servers, "agent": state.Agents} {
			for name, n := range nodesByName(nodes) {
				prior[name], priorRole[name] = n, role
			}
		}
	}
	// The node blocks as configured, to tell a silent map from a set one.
	var cfgModel rke2ClusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfgModel)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfgNodes := map[string][]rke2NodeModel{"server": cfgModel.Servers, "agent": cfgModel.Agents}
	for block, nodes := range map[string][]rke2NodeModel{"server": plan.Servers, "agent": plan.Agents} {
		for i := range nodes {
			keepNodeSettings(&nodes[i], prior[nodes[i].Name.ValueString()], cfgNodes[block], i)
		}
	}
	var cfgEndpoint, cfgTokenVersion types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("api_endpoint"), &cfgEndpoint)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("token_wo_version"), &cfgTokenVersion)...)
	if cfgEndpoint.IsNull() {
		// An endpoint the cluster has that is not derived from its first
		// server (a VIP read at import) is kept; a derived one follows
		// the first server.
		priorDefault, derived := "", false
		if state != nil {
			priorDefault, derived = state.defaultEndpoint()
		}
		switch ep, ok := plan.defaultEndpoint(); {
		case state != nil && state.APIEndpoint.ValueString() != "" && !(derived && priorDefault == state.APIEndpoint.ValueString()):
			plan.APIEndpoint = state.APIEndpoint
		case ok:
			plan.APIEndpoint = types.StringValue(ep)
		default:
			plan.APIEndpoint = types.StringUnknown()
		}
	}
	resp.Diagnostics.Append(planFixedAtInstall(ctx, req, state, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !cfgTokenVersion.IsNull() && (state == nil || state.Token.IsNull()) {
		plan.Token = types.StringNull()
	}
	resp.Diagnostics.Append(renamesOnSameHost(state, &plan)...)

	in, inKnown := plan.inputs()
	for _, g := range []struct {
		block string
		role  rke2.Role
		nodes []rke2NodeModel
	}{{"server", rke2.Server, plan.Servers}, {"agent", rke2.Agent, plan.Agents}} {
		for i := range g.nodes {
			n := &g.nodes[i]
			at := path.Root(g.block).AtListIndex(i)
			name := n.Name.ValueString()
			if role, ok := priorRole[name]; ok && !n.Name.IsUnknown() && role != g.block {
				resp.Diagnostics.AddAttributeError(at.AtName("name"), "Node changes role",
					fmt.Sprintf("%q is a node of role %s in the cluster and would become a %s. A node cannot change role in place: remove it in one apply and add it back in another (or give it another name).",
						name, priorRole[name], g.block))
			}
			switch {
			case !plan.Version.IsNull() && !plan.Version.IsUnknown():
				n.InstalledVersion = plan.Version
			case prior[name] != nil && prior[name].InstalledVersion.ValueString() != "" && (state.Channel.Equal(plan.Channel) || state.Channel.IsNull()):
				// The same channel, or a cluster that had a version (as
				// import records it) switching to a channel: nothing to
				// install.
				n.InstalledVersion = prior[name].InstalledVersion
			default:
				n.InstalledVersion = types.StringUnknown()
			}
			n.ConfigSHA256, n.SecretsSHA256 = types.StringUnknown(), types.StringUnknown()
			if !inKnown {
				continue
			}
			spec, ok := in.spec(g.role, n, g.role == rke2.Server && i == 0)
			if !ok {
				continue
			}
			h, err := plannedHash(spec)
			if err != nil {
				resp.Diagnostics.AddAttributeError(at.AtName("config"), "Invalid RKE2 configuration", err.Error())
				continue
			}
			n.ConfigSHA256, n.SecretsSHA256 = types.StringValue(h.Config), types.StringValue(h.Secrets)
		}
	}
	if state != nil && len(plan.Servers) > 0 && !plan.Servers[0].Name.IsUnknown() {
		if prior[plan.Servers[0].Name.ValueString()] == nil || priorRole[plan.Servers[0].Name.ValueString()] != "server" {
			resp.Diagnostics.AddAttributeError(path.Root("server").AtListIndex(0).AtName("name"), "New first server",
				fmt.Sprintf("The first server block is the node the others join, and it must already be a server of the cluster (the servers are %s). "+
					"Add new servers after the existing ones.", modelNames(state.Servers)))
		}
	}
	if state != nil && serversChanging(state, &plan) {
		// A server restart may rewrite the admin kubeconfig; it is read
		// again after apply.
		plan.Kubeconfig, plan.CACertificate = types.StringUnknown(), types.StringUnknown()
		plan.ClientCertificate, plan.ClientKey = types.StringUnknown(), types.StringUnknown()
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// keepNodeSettings plans a node's labels, taints, config and
// sensitive_config: as configured; left out, what the node of the same
// name has in state (issue 21: an imported node keeps what its
// config.yaml says), or nothing for a new node.
func keepNodeSettings(n, prior *rke2NodeModel, cfg []rke2NodeModel, i int) {
	var c *rke2NodeModel
	if i < len(cfg) {
		c = &cfg[i]
	}
	maps := []struct {
		p     *types.Map
		cfg   func(*rke2NodeModel) types.Map
		prior func(*rke2NodeModel) types.Map
	}{
		{&n.Labels, func(m *rke2NodeModel) types.Map { return m.Labels }, func(m *rke2NodeModel) types.Map { return m.Labels }},
		{&n.Config, func(m *rke2NodeModel) types.Map { return m.Config }, func(m *rke2NodeModel) types.Map { return m.Config }},
		{&n.SensitiveConfig, func(m *rke2NodeModel) types.Map { return m.SensitiveConfig }, func(m *rke2NodeModel) types.Map { return m.SensitiveConfig }},
	}
	for _, mp := range maps {
		switch {
		case c == nil || !mp.cfg(c).IsNull():
			// Configured (or unknown): the plan has it.
		case prior != nil:
			*mp.p = mp.prior(prior)
		default:
			*mp.p = types.MapNull(types.StringType)
		}
	}
	switch {
	case c == nil || !c.Taints.IsNull():
	case prior != nil:
		n.Taints = prior.Taints
	default:
		n.Taints = types.ListNull(types.StringType)
	}
}

// planFixedAtInstall plans the settings chosen when the cluster was
// created (issue 21): silent in the configuration, a new cluster gets
// RKE2's default (null) and an existing one keeps its value (the
// attributes' UseStateForUnknown); a configured value that differs from
// the cluster's is refused, since changing the pod or service network or
// the CNI of a running cluster breaks it. disable and tls_san keep the
// cluster's value when silent too, and may change.
func planFixedAtInstall(ctx context.Context, req resource.ModifyPlanRequest, state, plan *rke2ClusterModel) diag.Diagnostics {
	var diags diag.Diagnostics
	fields := func(m *rke2ClusterModel) map[string]*types.String {
		return map[string]*types.String{"cni": &m.CNI, "cluster_cidr": &m.ClusterCIDR, "service_cidr": &m.ServiceCIDR}
	}
	for _, f := range rke2FixedAtInstall {
		var cfg types.String
		diags.Append(req.Config.GetAttribute(ctx, path.Root(f.attr), &cfg)...)
		p := fields(plan)[f.attr]
		if state == nil {
			if cfg.IsNull() {
				*p = types.StringNull()
			}
			continue
		}
		s := fields(state)[f.attr]
		if cfg.IsNull() {
			// The cluster's value, null (RKE2's default) included, which
			// UseStateForUnknown leaves unknown.
			*p = *s
			continue
		}
		if cfg.IsUnknown() {
			continue
		}
		have := s.ValueString()
		if s.IsNull() || s.IsUnknown() {
			have = f.def
		}
		if cfg.ValueString() != have {
			diags.AddAttributeError(path.Root(f.attr), "Setting fixed at install",
				fmt.Sprintf("The cluster runs with %s = %q (what its servers' config.yaml says, or RKE2's default when it says nothing), and the configuration asks for %q. "+
					"It is chosen when the cluster is created: changing it on a running cluster breaks the network of every pod, so the provider does not rewrite it, and it does not reinstall the cluster either. "+
					"Set %s = %q (or leave it out to keep the cluster's value). To change it, build a new cluster.",
					f.attr, have, cfg.ValueString(), f.attr, have))
		}
	}
	for _, l := range []struct {
		attr string
		p    *types.List
		s    func(*rke2ClusterModel) types.List
	}{{"disable", &plan.Disable, func(m *rke2ClusterModel) types.List { return m.Disable }}, {"tls_san", &plan.TLSSAN, func(m *rke2ClusterModel) types.List { return m.TLSSAN }}} {
		var cfg types.List
		diags.Append(req.Config.GetAttribute(ctx, path.Root(l.attr), &cfg)...)
		switch {
		case !cfg.IsNull():
		case state == nil:
			*l.p = types.ListNull(types.StringType)
		default:
			*l.p = l.s(state)
		}
	}
	return diags
}

// renamesOnSameHost refuses a node block whose name is new while its ssh
// host is that of a node of the cluster whose block is gone: a rename.
// RKE2 would register the machine as a new Node, and removing the old
// name would then run rke2-uninstall.sh on that same machine.
func renamesOnSameHost(state, plan *rke2ClusterModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if state == nil {
		return diags
	}
	planned := map[string]bool{}
	for _, l := range [][]rke2NodeModel{plan.Servers, plan.Agents} {
		for _, n := range l {
			planned[n.Name.ValueString()] = true
		}
	}
	// The hosts of the nodes whose blocks are gone.
	leaving := map[string]string{}
	for _, l := range [][]rke2NodeModel{state.Servers, state.Agents} {
		for _, n := range l {
			if id, ok := sshIdentity(n.SSH); ok && !planned[n.Name.ValueString()] {
				leaving[id] = n.Name.ValueString()
			}
		}
	}
	inState := map[string]bool{}
	for _, l := range [][]rke2NodeModel{state.Servers, state.Agents} {
		for _, n := range l {
			inState[n.Name.ValueString()] = true
		}
	}
	for _, g := range []struct {
		block string
		nodes []rke2NodeModel
	}{{"server", plan.Servers}, {"agent", plan.Agents}} {
		for i, n := range g.nodes {
			if n.Name.IsUnknown() || inState[n.Name.ValueString()] {
				continue
			}
			id, ok := sshIdentity(n.SSH)
			if !ok {
				continue
			}
			if old, renamed := leaving[id]; renamed {
				diags.AddAttributeError(path.Root(g.block).AtListIndex(i).AtName("name"), "Node renamed on the same host",
					fmt.Sprintf("%s %q is reached at the same host as node %q of the cluster, whose block is gone: this renames %q to %q. "+
						"A node's name is its Kubernetes Node name (RKE2's node-name) and cannot change in place: the apply would join %q as a new Node on that machine "+
						"and then, removing %q, run rke2-uninstall.sh on the very same machine, wiping the node.\n\n"+
						"Keep the name %q. To rename the node, remove its block in one apply (it is drained and RKE2 is uninstalled from it) and add it back under the new name in another.",
						g.block, n.Name.ValueString(), old, old, n.Name.ValueString(), n.Name.ValueString(), old, old))
			}
		}
	}
	return diags
}
