// The apply machinery of homelab_rke2_cluster: rke2Op, one Create, Update,
// Read or Delete, connects to the nodes and installs, joins, starts, waits
// for, reads back and removes them through the rke2 and kube clients.

package rke2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// clusterNode is one node being worked on.
type clusterNode struct {
	*rke2.Node
	model *rke2NodeModel
	first bool
	// target names the host in messages (user@host:port).
	target string
	// unreachable is set when the last read could not reach the node;
	// reachErr is why.
	unreachable bool
	reachErr    error
}

// rke2Op is one Create, Update, Read or Delete.
type rke2Op struct {
	r       *rke2ClusterResource
	m       *rke2ClusterModel
	ctx     context.Context
	log     rke2.Logger
	secrets []string

	mu        sync.Mutex
	arts      map[string]*rke2.Artifacts
	kc        *kube.Client
	joinToken string
	// warnings are reported with the operation's result.
	warnings diag.Diagnostics
}

// warn adds a warning to the operation's result (from any goroutine).
func (op *rke2Op) warn(summary, detail string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.warnings.AddWarning(summary, detail)
}

func (op *rke2Op) takeWarnings() diag.Diagnostics {
	op.mu.Lock()
	defer op.mu.Unlock()
	w := op.warnings
	op.warnings = nil
	return w
}

// drainTimeout is drain_timeout (validated by the schema).
func (op *rke2Op) drainTimeout() time.Duration {
	d, err := time.ParseDuration(op.m.DrainTimeout.ValueString())
	if err != nil || d <= 0 {
		d, _ = time.ParseDuration(rke2DefaultDrainTimeout)
	}
	return d
}

func (op *rke2Op) drainOptions() kube.DrainOptions {
	return kube.DrainOptions{DeleteEmptyDirData: op.m.DrainEmptyDir.ValueBool()}
}

// drain drains a node within drain_timeout.
func (op *rke2Op) drain(ctx context.Context, name string) error {
	dctx, cancel := context.WithTimeout(ctx, op.drainTimeout())
	defer cancel()
	return op.client().Drain(dctx, name, op.drainOptions(), op.log)
}

func (r *rke2ClusterResource) newOp(ctx context.Context, m *rke2ClusterModel, secrets ...string) (*rke2Op, context.Context) {
	secrets = append(secrets, m.sensitiveValues()...)
	ctx = connection.MaskSecrets(ctx, secrets...)
	op := &rke2Op{r: r, m: m, secrets: secrets, arts: map[string]*rke2.Artifacts{}}
	op.ctx = ctx
	op.log = func(msg string, f map[string]any) { logging.Info(ctx, msg, f) }
	return op, ctx
}

// addSecret masks another secret from logs and error texts.
func (op *rke2Op) addSecret(ctx context.Context, s ...string) context.Context {
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, v := range s {
		if v != "" {
			op.secrets = append(op.secrets, v)
		}
	}
	ctx = connection.MaskSecrets(ctx, op.secrets...)
	op.ctx = ctx
	op.log = func(msg string, f map[string]any) { logging.Info(ctx, msg, f) }
	return ctx
}

// redact removes secrets from a text shown to the user.
func (op *rke2Op) redact(s string) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, sec := range op.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// connect resolves the nodes of the model.
func (op *rke2Op) connect(m *rke2ClusterModel) (servers, agents []*clusterNode, diags diag.Diagnostics) {
	mk := func(block string, role rke2.Role, models []rke2NodeModel) []*clusterNode {
		var out []*clusterNode
		for i := range models {
			n := &models[i]
			at := path.Root(block).AtListIndex(i)
			runner, target, d := op.r.data.Runner(n.SSH, at.AtName("ssh"), connection.HostRequired)
			diags.Append(d...)
			if d.HasError() {
				continue
			}
			out = append(out, &clusterNode{
				Node:  &rke2.Node{Name: n.Name.ValueString(), Role: role, Runner: runner, Log: op.logger(), Secrets: op.secretList()},
				model: n, first: role == rke2.Server && i == 0, target: target.String(),
			})
		}
		return out
	}
	return mk("server", rke2.Server, m.Servers), mk("agent", rke2.Agent, m.Agents), diags
}

func (op *rke2Op) logger() rke2.Logger {
	return func(msg string, f map[string]any) {
		op.mu.Lock()
		l := op.log
		op.mu.Unlock()
		l(msg, f)
	}
}

func (op *rke2Op) secretList() []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]string(nil), op.secrets...)
}

// refreshSecrets hands the current secrets to the nodes.
func refreshSecrets(op *rke2Op, nodes ...[]*clusterNode) {
	s := op.secretList()
	for _, l := range nodes {
		for _, n := range l {
			n.Secrets = s
		}
	}
}

// parallel runs f on every node, at most rke2Parallel at a time, and
// returns every error.
func parallel(nodes []*clusterNode, f func(*clusterNode) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, rke2Parallel)
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// artifacts loads (once per architecture) and checks the airgap artifacts.
func (op *rke2Op) artifacts(ctx context.Context, n *clusterNode) (*rke2.Artifacts, error) {
	arch, err := n.Arch(ctx)
	if err != nil {
		return nil, err
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if a, ok := op.arts[arch]; ok {
		return a, nil
	}
	a, err := rke2.LoadArtifacts(op.m.Airgap.ArtifactsDir.ValueString(), arch)
	if err != nil {
		return nil, fmt.Errorf("airgap artifacts for node %s (%s): %w", n.Name, arch, err)
	}
	op.arts[arch] = a
	return a, nil
}

// install installs the configured release on a node.
func (op *rke2Op) install(ctx context.Context, n *clusterNode) error {
	if op.m.Airgap != nil {
		a, err := op.artifacts(ctx, n)
		if err != nil {
			return err
		}
		return n.InstallAirgap(ctx, a, op.m.Version.ValueString())
	}
	return n.InstallOnline(ctx, rke2.Online{ScriptURL: op.m.InstallScriptURL.ValueString(),
		Version: op.m.Version.ValueString(), Channel: op.m.Channel.ValueString()})
}

// config renders a node's config.yaml with the given token.
func (op *rke2Op) config(n *clusterNode, token string) (rke2.Config, error) {
	in, ok := op.m.inputs()
	if !ok {
		return nil, fmt.Errorf("the configuration of node %s is not known yet; this is a bug in the provider", n.Name)
	}
	spec, ok := in.spec(n.Role, n.model, n.first)
	if !ok {
		return nil, fmt.Errorf("the configuration of node %s is not known yet; this is a bug in the provider", n.Name)
	}
	spec.Token = token
	return rke2.Build(spec), nil
}

// tokenFor is the token to write into a node's config.yaml: the one its
// config already has (a rewrite never changes it), else the cluster's join
// token read from a server.
func (op *rke2Op) tokenFor(ctx context.Context, n *clusterNode, servers []*clusterNode) (string, error) {
	cur, err := n.ReadConfig(ctx)
	if err != nil && remote.IsUnreachable(err) {
		return "", err
	}
	if err == nil && cur.Token() != "" {
		return cur.Token(), nil
	}
	return op.clusterToken(ctx, servers)
}

// clusterToken reads the full join token from the first server that has it.
func (op *rke2Op) clusterToken(ctx context.Context, servers []*clusterNode) (string, error) {
	op.mu.Lock()
	t := op.joinToken
	op.mu.Unlock()
	if t != "" {
		return t, nil
	}
	var errs []error
	for _, s := range servers {
		t, err := s.ReadToken(ctx)
		if err == nil {
			op.mu.Lock()
			op.joinToken = t
			op.mu.Unlock()
			op.addSecret(ctx, t, rke2.TokenSecret(t))
			return t, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no server could give the cluster token (%s): %w", rke2.TokenPath, errors.Join(errs...))
}

// kube returns a client for the API at endpoint, built from a server's
// admin kubeconfig.
func (op *rke2Op) kube(ctx context.Context, servers []*clusterNode, endpoint string) (*kube.Client, *rke2.Credentials, error) {
	var errs []error
	for _, s := range servers {
		data, err := s.ReadKubeconfig(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		creds, err := rke2.RewriteKubeconfig(data, endpoint)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", s.Name, err))
			continue
		}
		c, err := kube.NewClient(kube.Access{Kubeconfig: creds.Kubeconfig})
		if err != nil {
			return nil, nil, err
		}
		op.mu.Lock()
		op.kc = c
		op.mu.Unlock()
		return c, creds, nil
	}
	return nil, nil, fmt.Errorf("no server's admin kubeconfig could be read: %w", errors.Join(errs...))
}

func (op *rke2Op) client() *kube.Client {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.kc
}

// waitAPI waits until the Kubernetes API answers (kube-system readable)
// and returns the cluster ID.
func (op *rke2Op) waitAPI(ctx context.Context) (string, error) {
	c := op.client()
	var uid string
	err := rke2.Poll(ctx, op.logger(), "the Kubernetes API to answer", map[string]any{"url": c.Host()}, func(ctx context.Context) (bool, string, error) {
		id, err := c.NamespaceUID(ctx, "kube-system")
		if err != nil {
			if ctx.Err() != nil {
				return false, "", err
			}
			return false, err.Error(), nil
		}
		uid = id
		return true, "answering", nil
	})
	return uid, err
}

// waitReady waits until the node is registered and Ready (with the
// kubelet of version, when not "").
func (op *rke2Op) waitReady(ctx context.Context, n *clusterNode, version string) error {
	c := op.client()
	return rke2.Poll(ctx, op.logger(), "node "+n.Name+" to be Ready", map[string]any{"node": n.Name, "version": version}, func(ctx context.Context) (bool, string, error) {
		info, err := c.Node(ctx, n.Name)
		switch {
		case errors.Is(err, kube.ErrNotFound):
			return false, "not registered yet", nil
		case err != nil && ctx.Err() == nil:
			return false, "API: " + err.Error(), nil
		case err != nil:
			return false, "", err
		}
		ok := info.Ready && (version == "" || info.KubeletVersion == version)
		return ok, info.Status(), nil
	})
}

// syncMetadata makes the Node carry the configured labels and taints and
// drops those a previous configuration set that are gone from it.
func (op *rke2Op) syncMetadata(ctx context.Context, n *clusterNode, prior *rke2NodeModel) error {
	labels, _ := knownStrings(n.model.Labels)
	taintStrs, _ := knownList(n.model.Taints)
	var taints, dropTaints []kube.Taint
	for _, s := range taintStrs {
		t, err := kube.ParseTaint(s)
		if err != nil {
			return err
		}
		taints = append(taints, t)
	}
	var dropLabels []string
	if prior != nil {
		old, _ := knownStrings(prior.Labels)
		for k := range old {
			dropLabels = append(dropLabels, k)
		}
		oldTaints, _ := knownList(prior.Taints)
		for _, s := range oldTaints {
			if t, err := kube.ParseTaint(s); err == nil {
				dropTaints = append(dropTaints, t)
			}
		}
	}
	if len(labels) == 0 && len(taints) == 0 && len(dropLabels) == 0 && len(dropTaints) == 0 {
		return nil
	}
	return op.client().SetNodeMetadata(ctx, n.Name, labels, dropLabels, taints, dropTaints)
}

// start (re)starts the node's unit and waits until it reports ready and
// the node is Ready in the cluster.
func (op *rke2Op) start(ctx context.Context, n *clusterNode, version string) error {
	before, err := n.Restart(ctx)
	if err != nil {
		return err
	}
	if err := n.WaitActive(ctx, before); err != nil {
		return err
	}
	if op.client() == nil {
		return nil
	}
	return op.waitReady(ctx, n, version)
}

// writeManifests writes every configured manifest on a server.
func (op *rke2Op) writeManifests(ctx context.Context, n *clusterNode, prior types.Map) error {
	want, _ := knownStrings(op.m.Manifests)
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		cur, err := n.ReadManifest(ctx, k)
		if err != nil && !errors.Is(err, rke2.ErrNotFound) {
			return err
		}
		if err == nil && cur == want[k] {
			continue
		}
		op.log("writing manifest", map[string]any{"node": n.Name, "manifest": k})
		if err := n.WriteManifest(ctx, k, want[k]); err != nil {
			return err
		}
	}
	old, _ := knownStrings(prior)
	for k := range old {
		if _, keep := want[k]; !keep {
			op.log("removing manifest", map[string]any{"node": n.Name, "manifest": k})
			if err := n.RemoveManifest(ctx, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// versionToWait is the kubelet version a node must report, "" with a channel.
func (op *rke2Op) versionToWait() string { return op.m.Version.ValueString() }

// join installs RKE2 on a node that is not part of the cluster yet,
// writes its config and starts it.
func (op *rke2Op) join(ctx context.Context, n *clusterNode, servers []*clusterNode, token string) error {
	op.log("joining node", map[string]any{"node": n.Name, "role": string(n.Role)})
	if err := op.install(ctx, n); err != nil {
		return err
	}
	if token == "" {
		t, err := op.clusterToken(ctx, servers)
		if err != nil {
			return err
		}
		token = t
	}
	cfg, err := op.config(n, token)
	if err != nil {
		return err
	}
	if err := n.WriteConfig(ctx, cfg); err != nil {
		return err
	}
	if n.Role == rke2.Server {
		if err := op.writeManifests(ctx, n, types.MapNull(types.StringType)); err != nil {
			return err
		}
	}
	if err := op.start(ctx, n, op.versionToWait()); err != nil {
		return err
	}
	if op.client() != nil {
		return op.syncMetadata(ctx, n, nil)
	}
	return nil
}

// initFirst brings up the first server with the cluster token, then
// waits for its token, kubeconfig, API and Node.
func (op *rke2Op) initFirst(ctx context.Context, n *clusterNode, token string) (*rke2.Credentials, string, error) {
	op.log("initializing the cluster on the first server", map[string]any{"node": n.Name})
	if err := op.join(ctx, n, nil, token); err != nil {
		return nil, "", err
	}
	for _, p := range []string{rke2.TokenPath, rke2.KubeconfigPath} {
		if err := n.WaitFile(ctx, p); err != nil {
			return nil, "", err
		}
	}
	_, creds, err := op.kube(ctx, []*clusterNode{n}, op.m.APIEndpoint.ValueString())
	if err != nil {
		return nil, "", err
	}
	uid, err := op.waitAPI(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := op.waitReady(ctx, n, op.versionToWait()); err != nil {
		return nil, "", err
	}
	if err := op.syncMetadata(ctx, n, nil); err != nil {
		return nil, "", err
	}
	return creds, uid, nil
}

// readBack records what the nodes report: versions and config hashes.
// A node that cannot be reached keeps its model's values and is marked
// unreachable (and returned), so that one node down does not stop the
// others from being read; installedServers counts the servers that
// reported RKE2 installed.
func (op *rke2Op) readBack(ctx context.Context, nodes []*clusterNode) (installedServers int, unreachable []*clusterNode, err error) {
	var mu sync.Mutex
	err = parallel(nodes, func(n *clusterNode) error {
		st, err := n.Inspect(ctx)
		if err != nil && remote.IsUnreachable(err) && ctx.Err() == nil {
			n.unreachable, n.reachErr = true, err
			mu.Lock()
			unreachable = append(unreachable, n)
			mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		n.unreachable, n.reachErr = false, nil
		n.model.InstalledVersion = types.StringValue(st.Version)
		n.model.ConfigSHA256, n.model.SecretsSHA256 = types.StringValue(""), types.StringValue("")
		if st.ConfigExists {
			h, err := rke2.HashFileOf(st.Config, n.Name, op.m.sensitiveKeys(n.model)...)
			if err != nil {
				// No hash of the raw file: it holds the token and secrets.
				h = rke2.Hashes{Config: "unparsable config.yaml"}
			}
			n.model.ConfigSHA256, n.model.SecretsSHA256 = types.StringValue(h.Config), types.StringValue(h.Secrets)
		}
		if n.Role == rke2.Server && (st.Installed || st.ConfigExists) {
			mu.Lock()
			installedServers++
			mu.Unlock()
		}
		return nil
	})
	sort.Slice(unreachable, func(i, j int) bool { return unreachable[i].Name < unreachable[j].Name })
	return installedServers, unreachable, err
}

// warnUnreachable reports nodes that could not be read and whose
// attributes were kept.
func (op *rke2Op) warnUnreachable(nodes []*clusterNode) {
	for _, n := range nodes {
		op.warn("Unable to read RKE2 node "+n.Name,
			fmt.Sprintf("%s\n\nNode %s (%s) could not be reached. Its attributes are kept as they were last read, and the rest of the cluster was read and is managed as usual; "+
				"a change to this node fails until it can be reached again. If the machine is gone for good, remove its block: it is then drained for at most `drain_timeout`, "+
				"its Node object is deleted from the cluster, and a warning says what to clean up by hand should it come back.",
				op.redact(n.reachErr.Error()), n.Name, n.target))
	}
}

// firstReachErr is the error of the first unreachable node.
func firstReachErr(nodes []*clusterNode) error {
	for _, n := range nodes {
		if n.unreachable {
			return n.reachErr
		}
	}
	return nil
}

// saveFailed makes a model that failed half-way storable: what the nodes
// report (best effort, in a short time of its own since the operation's
// may be over) and null for what is still unknown.
func (op *rke2Op) saveFailed(ctx context.Context, m *rke2ClusterModel, all []*clusterNode) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_, _, _ = op.readBack(rctx, all)
	for _, v := range []*types.String{&m.ID, &m.ClusterID, &m.Kubeconfig, &m.CACertificate, &m.ClientCertificate, &m.ClientKey, &m.APIEndpoint, &m.Token} {
		if v.IsUnknown() {
			*v = types.StringNull()
		}
	}
	for _, l := range [][]rke2NodeModel{m.Servers, m.Agents} {
		for i := range l {
			for _, v := range []*types.String{&l[i].InstalledVersion, &l[i].ConfigSHA256, &l[i].SecretsSHA256} {
				if v.IsUnknown() {
					*v = types.StringValue("")
				}
			}
		}
	}
}

// setCredentials stores the kubeconfig and its parts.
func (m *rke2ClusterModel) setCredentials(c *rke2.Credentials) {
	m.Kubeconfig = types.StringValue(string(c.Kubeconfig))
	m.CACertificate = types.StringValue(c.CACertificate)
	m.ClientCertificate = types.StringValue(c.ClientCertificate)
	m.ClientKey = types.StringValue(c.ClientKey)
}

// failure adds an error diagnostic with advice.
func (op *rke2Op) failure(diags *diag.Diagnostics, summary string, err error) {
	detail := op.redact(tfhelp.Explain(err))
	var vm *rke2.VersionMismatchError
	var local *kube.LocalDataError
	var incomplete *kube.DrainIncompleteError
	switch {
	case errors.As(err, &vm):
		diags.AddAttributeError(path.Root("version"), summary, detail)
		return
	case errors.As(err, &local):
		diags.AddAttributeError(path.Root("drain_delete_emptydir_data"), summary, detail+
			"\n\nThe drain this apply needs would delete that data. Nothing was changed. Move those workloads off the node first, "+
			"or, if their emptyDir data may be lost, set drain_delete_emptydir_data = true.")
		return
	case errors.As(err, &incomplete):
		diags.AddAttributeError(path.Root("drain_timeout"), summary, detail+
			"\n\nThe node stays cordoned. A PodDisruptionBudget may refuse the evictions, or the pods take longer to stop: check them, or raise drain_timeout, and apply again.")
		return

	case errors.Is(err, context.DeadlineExceeded):
		detail += "\n\nThe operation ran out of time. Emulated or slow machines may need more: raise the `timeouts` block's values. " +
			"What was done so far stays on the nodes; the next apply continues from there."
	}
	diags.AddError(summary, detail)
}

// remove takes a node out of the cluster: cordon and evict its pods
// (within drain_timeout), delete its Node object (for a server, RKE2 then
// removes its etcd member while the others still have quorum), uninstall
// RKE2 from it, and delete the Node again should its kubelet have
// registered it once more meanwhile.
//
// A node that cannot be reached over SSH is a machine that may be gone for
// good: a drain that runs out of time does not stop its removal (its pods
// no longer run; with the Node deleted the cluster's garbage collector
// removes them), and RKE2 left on it is reported in a warning that says
// how to clean up by hand, instead of failing the apply.
func (op *rke2Op) remove(ctx context.Context, n *clusterNode) error {
	c := op.client()
	op.log("removing node from the cluster", map[string]any{"node": n.Name, "role": string(n.Role)})
	_, probe := n.Inspect(ctx)
	gone := probe != nil && remote.IsUnreachable(probe) && ctx.Err() == nil
	if probe != nil && !gone {
		return probe
	}
	if gone {
		op.log("the node cannot be reached; removing it from the cluster without uninstalling", map[string]any{"node": n.Name, "error": op.redact(probe.Error())})
	}
	if _, err := c.Node(ctx, n.Name); err == nil {
		if err := op.drain(ctx, n.Name); err != nil {
			var incomplete *kube.DrainIncompleteError
			if !gone || ctx.Err() != nil || !(errors.As(err, &incomplete) || errors.Is(err, context.DeadlineExceeded)) {
				return err
			}
			op.warn("Unable to drain RKE2 node "+n.Name,
				fmt.Sprintf("%s\n\nNode %s (%s) cannot be reached, so its pods no longer run; after `drain_timeout` (%s) it was removed anyway and its Node object deleted, "+
					"after which the cluster's garbage collector deletes the pods that were left on it.", op.redact(err.Error()), n.Name, n.target, op.drainTimeout()))
		}
		if err := c.DeleteNode(ctx, n.Name); err != nil {
			return fmt.Errorf("deleting node %s: %w", n.Name, err)
		}
	} else if !errors.Is(err, kube.ErrNotFound) {
		return fmt.Errorf("reading node %s: %w", n.Name, err)
	}
	uninstallErr := probe
	if !gone {
		if _, err := n.Uninstall(ctx); err != nil {
			if !remote.IsUnreachable(err) || ctx.Err() != nil {
				return err
			}
			uninstallErr = err
		}
	}
	if uninstallErr != nil {
		op.warn("Unable to uninstall RKE2 from node "+n.Name,
			fmt.Sprintf("%s\n\nNode %s (%s) could not be reached, so `rke2-uninstall.sh` did not run on it. The node was removed from the cluster (its Node object deleted) and from the state. "+
				"RKE2 is still installed on that machine: should it come back, RKE2 starts again and its kubelet registers node %s once more. "+
				"Clean it up by hand: run `/usr/local/bin/rke2-uninstall.sh` as root on it (`/opt/rke2/bin/rke2-uninstall.sh` where /usr/local is read-only), "+
				"then delete the Node again if it re-registered (`kubectl delete node %s`). To keep it in the cluster instead, add its block back.",
				op.redact(uninstallErr.Error()), n.Name, n.target, n.Name, n.Name))
		logging.Warn(ctx, "RKE2 left on a node that could not be reached; run rke2-uninstall.sh on it by hand", map[string]any{"node": n.Name, "host": n.target})
		return nil
	}
	if err := c.DeleteNode(ctx, n.Name); err != nil {
		return fmt.Errorf("deleting node %s: %w", n.Name, err)
	}
	return nil
}

// workloads lists the cluster's workloads through a server's kubeconfig.
func (op *rke2Op) workloads(ctx context.Context, servers []*clusterNode) ([]string, error) {
	if _, _, err := op.kube(ctx, servers, op.m.APIEndpoint.ValueString()); err != nil {
		return nil, err
	}
	w, err := op.client().Workloads(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the cluster at %s for its workloads: %w", op.client().Host(), err)
	}
	return w, nil
}

// readManifests records, per manifest in state, what the servers hold: a
// manifest missing on a server is dropped from state, one changed there
// is recorded with its content, so either shows as a change.
func (op *rke2Op) readManifests(ctx context.Context, servers []*clusterNode) error {
	want, ok := knownStrings(op.m.Manifests)
	if !ok || len(want) == 0 {
		return nil
	}
	got := map[string]attr.Value{}
	for k, v := range want {
		got[k] = types.StringValue(v)
	}
	for _, s := range servers {
		if s.model.InstalledVersion.ValueString() == "" || s.unreachable {
			continue // drift of the node itself (its manifests are rewritten when it is), or a node down (kept)
		}
		for k, v := range want {
			cur, err := s.ReadManifest(ctx, k)
			if err != nil && !errors.Is(err, rke2.ErrNotFound) {
				return err
			}
			switch {
			case err != nil:
				delete(got, k)
			case cur != v:
				got[k] = types.StringValue(cur)
			}
		}
	}
	op.m.Manifests = types.MapValueMust(types.StringType, got)
	return nil
}
