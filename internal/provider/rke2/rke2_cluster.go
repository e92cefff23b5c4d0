// The CRUD methods of homelab_rke2_cluster, each an rke2Op.

package rke2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

func (r *rke2ClusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m, cfg rke2ClusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := m.Timeouts.Create(ctx, rke2CreateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	summary := "Unable to create RKE2 cluster at " + m.APIEndpoint.ValueString()

	token := cfg.TokenWO.ValueString()
	if token == "" {
		t, err := rke2.GenerateToken()
		if err != nil {
			resp.Diagnostics.AddError(summary, err.Error())
			return
		}
		token = t
		m.Token = types.StringValue(t)
	} else {
		m.Token = types.StringNull()
	}
	op, ctx := r.newOp(ctx, &m, token)
	servers, agents, cd := op.connect(&m)
	resp.Diagnostics.Append(cd...)
	if resp.Diagnostics.HasError() {
		return
	}
	all := append(append([]*clusterNode{}, servers...), agents...)
	// Every node must be reachable before anything is installed.
	if err := parallel(all, func(n *clusterNode) error { _, err := n.Inspect(ctx); return err }); err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	// From here on, a failure leaves RKE2 on nodes: the state is saved so
	// that Terraform marks the cluster tainted and the next apply
	// uninstalls it before creating it again.
	fail := func(err error) {
		op.failure(&resp.Diagnostics, summary, err)
		op.saveFailed(ctx, &m, all)
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	}
	creds, uid, err := op.initFirst(ctx, servers[0], token)
	if err != nil {
		fail(err)
		return
	}
	if len(all) > 1 {
		if _, err := op.clusterToken(ctx, servers[:1]); err != nil {
			fail(err)
			return
		}
		ctx = op.ctx
		refreshSecrets(op, servers, agents)
	}
	for _, s := range servers[1:] {
		if err := op.join(ctx, s, servers[:1], ""); err != nil {
			fail(err)
			return
		}
	}
	if err := parallel(agents, func(n *clusterNode) error { return op.join(ctx, n, servers, "") }); err != nil {
		fail(err)
		return
	}
	m.setCredentials(creds)
	m.ClusterID, m.ID = types.StringValue(uid), types.StringValue(uid)
	if _, down, err := op.readBack(ctx, all); err != nil || len(down) > 0 {
		if err == nil {
			err = firstReachErr(down)
		}
		fail(err)
		return
	}
	logging.Info(ctx, "RKE2 cluster is up", map[string]any{"cluster_id": uid, "servers": len(servers), "agents": len(agents)})
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *rke2ClusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, cfg, prior rke2ClusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := m.Timeouts.Update(ctx, rke2UpdateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	summary := "Unable to update RKE2 cluster at " + m.APIEndpoint.ValueString()
	op, ctx := r.newOp(ctx, &m, append([]string{prior.Token.ValueString(), cfg.TokenWO.ValueString()}, prior.sensitiveValues()...)...)
	servers, agents, cd := op.connect(&m)
	// The nodes being removed, reached through their prior ssh blocks.
	priorOp := &rke2Op{r: r, m: &prior, ctx: ctx, log: op.log, arts: map[string]*rke2.Artifacts{}}
	priorServers, priorAgents, pd := priorOp.connect(&prior)
	resp.Diagnostics.Append(cd...)
	resp.Diagnostics.Append(pd...)
	if resp.Diagnostics.HasError() {
		return
	}
	defer func() { resp.Diagnostics.Append(op.takeWarnings()...) }()
	if err := r.update(ctx, op, &prior, servers, agents, priorServers, priorAgents); err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	ctx = op.ctx
	all := append(append([]*clusterNode{}, servers...), agents...)
	_, down, err := op.readBack(ctx, all)
	if err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	// A node that went down after the changes (none of which needed it:
	// a change to it fails) keeps what was known of it.
	priorByName := map[string]*rke2NodeModel{}
	for _, n := range append(append([]*clusterNode{}, priorServers...), priorAgents...) {
		priorByName[n.Name] = n.model
	}
	for _, n := range down {
		if p := priorByName[n.Name]; p != nil {
			n.model.InstalledVersion, n.model.ConfigSHA256 = p.InstalledVersion, p.ConfigSHA256
		} else {
			op.failure(&resp.Diagnostics, summary, n.reachErr)
			return
		}
	}
	op.warnUnreachable(down)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// update moves the cluster from prior to op.m.
func (r *rke2ClusterResource) update(ctx context.Context, op *rke2Op, prior *rke2ClusterModel, servers, agents, priorServers, priorAgents []*clusterNode) error {
	m := op.m
	priorNodes := map[string]*rke2NodeModel{}
	for _, n := range append(append([]*clusterNode{}, priorServers...), priorAgents...) {
		priorNodes[n.Name] = n.model
	}
	// The servers that are already part of the cluster: the source of the
	// join token and the kubeconfig.
	var kept []*clusterNode
	for _, s := range servers {
		if p := priorNodes[s.Name]; p != nil && p.InstalledVersion.ValueString() != "" {
			kept = append(kept, s)
		}
	}
	if p := priorNodes[servers[0].Name]; p == nil {
		return fmt.Errorf("the first server %s is not a server of the cluster yet; the first server block must be an existing server (add new servers after it)", servers[0].Name)
	}
	if len(kept) == 0 {
		return fmt.Errorf("none of the configured servers is a running member of the cluster (the servers in state are %s); "+
			"keep at least one existing server when replacing servers, and add the others in a later apply", names(priorServers))
	}
	want := map[string]bool{}
	for _, n := range append(append([]*clusterNode{}, servers...), agents...) {
		want[n.Name] = true
	}
	var removed []*clusterNode
	for _, n := range append(append([]*clusterNode{}, priorAgents...), priorServers...) {
		if !want[n.Name] {
			removed = append(removed, n)
		}
	}
	// Before anything changes: no joining node may be a machine that
	// already runs another node of this cluster (a rename under another
	// address of the same host, which the plan cannot see).
	if err := parallel(append(append([]*clusterNode{}, servers...), agents...), func(n *clusterNode) error {
		if priorNodes[n.Name] != nil {
			return nil
		}
		cur, err := n.ReadConfig(ctx)
		if err != nil {
			return nil // the join reports an unreachable node
		}
		other, _ := cur[rke2.KeyNodeName].(string)
		if other != "" && other != n.Name && priorNodes[other] != nil {
			return &sameMachineError{node: n.Name, other: other, target: n.target}
		}
		return nil
	}); err != nil {
		return err
	}
	// The API is reached at the endpoint the servers' certificates already
	// carry until every server has been reconfigured.
	if _, _, err := op.kube(ctx, kept, prior.APIEndpoint.ValueString()); err != nil {
		return err
	}
	if _, err := op.waitAPI(ctx); err != nil {
		return err
	}
	// Nor may a drain this apply will run meet pods it must not evict.
	nodeCount := len(priorServers) + len(priorAgents)
	var toDrain []string
	for _, n := range removed {
		toDrain = append(toDrain, n.Name)
	}
	if m.Drain.ValueBool() && nodeCount > 1 {
		for _, n := range append(append([]*clusterNode{}, servers...), agents...) {
			if p := priorNodes[n.Name]; p != nil && needsInstall(prior, m, p) {
				toDrain = append(toDrain, n.Name)
			}
		}
	}
	for _, name := range toDrain {
		if err := op.client().CheckDrain(ctx, name, op.drainOptions()); err != nil && !errors.Is(err, kube.ErrNotFound) {
			return err
		}
	}
	if t, err := op.clusterToken(ctx, kept); err != nil {
		return err
	} else if m.Token.IsUnknown() {
		m.Token = types.StringValue(rke2.TokenSecret(t))
	}
	ctx = op.ctx
	refreshSecrets(op, servers, agents, priorServers, priorAgents)

	version := op.versionToWait()
	// A node needs installing when its version differs from the plan
	// (or the channel changed), a config rewrite when its hash does.
	reconcile := func(n *clusterNode) error {
		p := priorNodes[n.Name]
		if p == nil || (p.InstalledVersion.ValueString() == "" && p.ConfigSHA256.ValueString() == "") {
			if n.first && p != nil {
				return fmt.Errorf("node %s initialized the cluster and RKE2 is gone from it; restore it, or remove its block so that the next server comes first", n.Name)
			}
			return op.join(ctx, n, kept, "")
		}
		needInstall := needsInstall(prior, m, p)
		needConfig := !p.ConfigSHA256.Equal(n.model.ConfigSHA256) || n.model.ConfigSHA256.IsUnknown() ||
			!p.SecretsSHA256.Equal(n.model.SecretsSHA256) || n.model.SecretsSHA256.IsUnknown()
		metaChanged := !p.Labels.Equal(n.model.Labels) || !p.Taints.Equal(n.model.Taints)
		if !needInstall && !needConfig {
			if metaChanged {
				return op.syncMetadata(ctx, n, p)
			}
			return nil
		}
		token, err := op.tokenFor(ctx, n, kept)
		if err != nil {
			return err
		}
		drained := false
		if needInstall && m.Drain.ValueBool() && nodeCount > 1 {
			info, err := op.client().Node(ctx, n.Name)
			if err == nil && !info.Unschedulable {
				op.log("draining node before its upgrade", map[string]any{"node": n.Name})
				if err := op.drain(ctx, n.Name); err != nil {
					return err
				}
				drained = true
			} else if err != nil && !errors.Is(err, kube.ErrNotFound) {
				return fmt.Errorf("reading node %s: %w", n.Name, err)
			}
		}
		if needInstall {
			op.log("upgrading node", map[string]any{"node": n.Name, "from": p.InstalledVersion.ValueString(), "to": version})
			if err := op.install(ctx, n); err != nil {
				return err
			}
		}
		cfg, err := op.config(n, token)
		if err != nil {
			return err
		}
		if needConfig {
			op.log("writing config.yaml", map[string]any{"node": n.Name})
		}
		if err := n.WriteConfig(ctx, cfg); err != nil {
			return err
		}
		if err := op.start(ctx, n, version); err != nil {
			return err
		}
		if drained {
			if err := op.client().Cordon(ctx, n.Name, false); err != nil {
				return fmt.Errorf("uncordoning node %s: %w", n.Name, err)
			}
		}
		return op.syncMetadata(ctx, n, p)
	}

	// Servers one at a time, then the API at its new endpoint.
	for _, s := range servers {
		if err := reconcile(s); err != nil {
			return err
		}
		if err := op.writeManifests(ctx, s, prior.Manifests); err != nil {
			return err
		}
	}
	if !prior.APIEndpoint.Equal(m.APIEndpoint) {
		if _, _, err := op.kube(ctx, kept, m.APIEndpoint.ValueString()); err != nil {
			return err
		}
		if _, err := op.waitAPI(ctx); err != nil {
			return err
		}
	}
	// New agents join in parallel; existing ones roll one at a time.
	var joining, existing []*clusterNode
	for _, a := range agents {
		if priorNodes[a.Name] == nil {
			joining = append(joining, a)
		} else {
			existing = append(existing, a)
		}
	}
	if err := parallel(joining, func(n *clusterNode) error { return op.join(ctx, n, kept, "") }); err != nil {
		return err
	}
	for _, a := range existing {
		if err := reconcile(a); err != nil {
			return err
		}
	}
	// Nodes removed from the configuration: agents, then servers.
	for _, n := range removed {
		if err := op.remove(ctx, n); err != nil {
			return err
		}
	}
	// Read the credentials and the cluster ID back.
	_, creds, err := op.kube(ctx, servers, m.APIEndpoint.ValueString())
	if err != nil {
		return err
	}
	uid, err := op.waitAPI(ctx)
	if err != nil {
		return err
	}
	m.setCredentials(creds)
	m.ClusterID, m.ID = types.StringValue(uid), types.StringValue(uid)
	return nil
}

// needsInstall reports whether a node in state p must be (re)installed to
// match the plan m.
func needsInstall(prior, m *rke2ClusterModel, p *rke2NodeModel) bool {
	return p.InstalledVersion.ValueString() == "" ||
		(!m.Version.IsNull() && p.InstalledVersion.ValueString() != m.Version.ValueString()) ||
		(m.Version.IsNull() && !prior.Channel.IsNull() && !prior.Channel.Equal(m.Channel))
}

// sameMachineError is a joining node whose machine already runs another
// node of the cluster.
type sameMachineError struct {
	node, other, target string
}

func (e *sameMachineError) Error() string {
	return fmt.Sprintf("node %s is to join on %s, but that machine already runs node %s of this cluster (its config.yaml has node-name %s): "+
		"this is a rename of %s under another address of the same host. A node's name cannot change in place, and joining %s there and removing %s "+
		"would uninstall RKE2 from that very machine. Nothing was changed. Keep the name %s (and its ssh host); to rename the node, remove its block in one apply "+
		"and add it back under the new name in another", e.node, e.target, e.other, e.other, e.other, e.node, e.other, e.other)
}

func names(nodes []*clusterNode) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name)
	}
	return strings.Join(s, ", ")
}

func (r *rke2ClusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m rke2ClusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rke2ReadTimeout)
	defer cancel()
	op, ctx := r.newOp(ctx, &m, m.Token.ValueString())
	servers, agents, diags := op.connect(&m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	summary := "Unable to read RKE2 cluster at " + m.APIEndpoint.ValueString()
	all := append(append([]*clusterNode{}, servers...), agents...)
	installed, down, err := op.readBack(ctx, all)
	if err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	// One node down is a warning and the rest of the cluster is read; with
	// no server to read, nothing can be said about the cluster: an error
	// that keeps the state.
	var upServers []*clusterNode
	for _, s := range servers {
		if !s.unreachable {
			upServers = append(upServers, s)
		}
	}
	if len(upServers) == 0 {
		op.failure(&resp.Diagnostics, summary, fmt.Errorf("no server of the cluster could be reached: %w", firstReachErr(servers)))
		return
	}
	op.warnUnreachable(down)
	resp.Diagnostics.Append(op.takeWarnings()...)
	if installed == 0 && len(upServers) == len(servers) {
		logging.Warn(ctx, "RKE2 is not installed on any server of the cluster any more, removing it from state", map[string]any{"servers": names(servers)})
		resp.State.RemoveResource(ctx)
		return
	}
	// The credentials from the first server that has them.
	for _, s := range upServers {
		data, err := s.ReadKubeconfig(ctx)
		if err != nil {
			continue
		}
		if creds, err := rke2.RewriteKubeconfig(data, m.APIEndpoint.ValueString()); err == nil {
			m.setCredentials(creds)
			break
		}
	}
	if err := op.readManifests(ctx, servers); err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *rke2ClusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m rke2ClusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.KeepOnDestroy.ValueBool() {
		logging.Warn(ctx, "keep_on_destroy is set: RKE2 stays installed and running on every node", map[string]any{"api_endpoint": m.APIEndpoint.ValueString()})
		return
	}
	d, diags := m.Timeouts.Delete(ctx, rke2DeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	op, ctx := r.newOp(ctx, &m, m.Token.ValueString())
	servers, agents, cd := op.connect(&m)
	resp.Diagnostics.Append(cd...)
	if resp.Diagnostics.HasError() {
		return
	}
	summary := "Unable to uninstall RKE2 cluster at " + m.APIEndpoint.ValueString()
	if !m.ForceDestroy.ValueBool() {
		// Destroy loses every workload and its data: refused while there
		// are any, or while the cluster cannot tell.
		workloads, err := op.workloads(ctx, servers)
		if err != nil {
			resp.Diagnostics.AddError("Unable to destroy RKE2 cluster at "+m.APIEndpoint.ValueString(),
				op.redact(err.Error())+"\n\nDestroy checks that the cluster runs no workloads before uninstalling RKE2, and the cluster could not be asked. Nothing was uninstalled. "+
					"Bring a server back, or, if the cluster may be lost with whatever runs on it, set force_destroy = true and apply before destroying "+
					"(keep_on_destroy = true forgets the cluster and leaves RKE2 running).")
			return
		}
		if len(workloads) > 0 {
			shown := workloads
			if len(shown) > rke2WorkloadsShown {
				shown = append(shown[:rke2WorkloadsShown:rke2WorkloadsShown], fmt.Sprintf("and %d more", len(workloads)-rke2WorkloadsShown))
			}
			resp.Diagnostics.AddError("Unable to destroy RKE2 cluster at "+m.APIEndpoint.ValueString(),
				fmt.Sprintf("The cluster runs workloads that destroying it would lose, with their data: %s.\n\nNothing was uninstalled. "+
					"Move or back them up and delete them first; or, if they may be lost, set force_destroy = true and apply before destroying; "+
					"or set keep_on_destroy = true to forget the cluster and leave RKE2 running on its nodes.", strings.Join(shown, ", ")))
			return
		}
	}
	uninstall := func(n *clusterNode) error {
		ran, err := n.Uninstall(ctx)
		if err == nil && !ran {
			logging.Info(ctx, "RKE2 was not installed on the node", map[string]any{"node": n.Name})
		}
		return err
	}
	// Agents first, so none is left trying to reach servers that are gone.
	if err := parallel(agents, uninstall); err != nil {
		op.failure(&resp.Diagnostics, summary, err)
		return
	}
	if err := parallel(servers, uninstall); err != nil {
		op.failure(&resp.Diagnostics, summary, err)
	}
}
