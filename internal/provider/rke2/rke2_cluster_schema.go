// The homelab_rke2_cluster resource: its model, schema and config validation.

package rke2

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

var (
	_ resource.Resource                     = (*rke2ClusterResource)(nil)
	_ resource.ResourceWithConfigure        = (*rke2ClusterResource)(nil)
	_ resource.ResourceWithConfigValidators = (*rke2ClusterResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*rke2ClusterResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*rke2ClusterResource)(nil)
)

// Default timeouts of homelab_rke2_cluster. Bringing up a control plane
// takes minutes on real hardware and longer on emulated machines; an
// upgrade restarts every node in turn.
const (
	rke2CreateTimeout = 30 * time.Minute
	rke2UpdateTimeout = 60 * time.Minute
	rke2DeleteTimeout = 15 * time.Minute
	// rke2ReadTimeout bounds one refresh (every node over SSH).
	rke2ReadTimeout = 5 * time.Minute
	// rke2DefaultInstallScript is RKE2's documented installer.
	rke2DefaultInstallScript = "https://get.rke2.io"
	// rke2Parallel bounds how many nodes are worked on at once.
	rke2Parallel = 8
	// rke2DefaultDrainTimeout bounds one node's drain.
	rke2DefaultDrainTimeout = "10m"
	// rke2WorkloadsShown is how many workloads a refused destroy names.
	rke2WorkloadsShown = 10
)

// rke2ClusterResource is the homelab_rke2_cluster resource.
type rke2ClusterResource struct {
	data *connection.Data
}

// NewRKE2Cluster returns the homelab_rke2_cluster resource.
func NewRKE2Cluster() resource.Resource { return &rke2ClusterResource{} }

// rke2ClusterModel is the resource's data.
type rke2ClusterModel struct {
	ID                types.String     `tfsdk:"id"`
	Version           types.String     `tfsdk:"version"`
	Channel           types.String     `tfsdk:"channel"`
	InstallScriptURL  types.String     `tfsdk:"install_script_url"`
	APIEndpoint       types.String     `tfsdk:"api_endpoint"`
	Token             types.String     `tfsdk:"token"`
	TokenWO           types.String     `tfsdk:"token_wo"`
	TokenWOVersion    types.String     `tfsdk:"token_wo_version"`
	Config            types.Map        `tfsdk:"config"`
	SensitiveConfig   types.Map        `tfsdk:"sensitive_config"`
	CNI               types.String     `tfsdk:"cni"`
	Disable           types.List       `tfsdk:"disable"`
	TLSSAN            types.List       `tfsdk:"tls_san"`
	ClusterCIDR       types.String     `tfsdk:"cluster_cidr"`
	ServiceCIDR       types.String     `tfsdk:"service_cidr"`
	Manifests         types.Map        `tfsdk:"manifests"`
	Drain             types.Bool       `tfsdk:"drain"`
	DrainTimeout      types.String     `tfsdk:"drain_timeout"`
	DrainEmptyDir     types.Bool       `tfsdk:"drain_delete_emptydir_data"`
	KeepOnDestroy     types.Bool       `tfsdk:"keep_on_destroy"`
	ForceDestroy      types.Bool       `tfsdk:"force_destroy"`
	Kubeconfig        types.String     `tfsdk:"kubeconfig"`
	CACertificate     types.String     `tfsdk:"ca_certificate"`
	ClientCertificate types.String     `tfsdk:"client_certificate"`
	ClientKey         types.String     `tfsdk:"client_key"`
	ClusterID         types.String     `tfsdk:"cluster_id"`
	Airgap            *rke2AirgapModel `tfsdk:"airgap"`
	Servers           []rke2NodeModel  `tfsdk:"server"`
	Agents            []rke2NodeModel  `tfsdk:"agent"`
	Timeouts          timeouts.Value   `tfsdk:"timeouts"`
}

// rke2AirgapModel is the airgap block.
type rke2AirgapModel struct {
	ArtifactsDir types.String `tfsdk:"artifacts_dir"`
}

// rke2NodeModel is a server or agent block.
type rke2NodeModel struct {
	Name             types.String         `tfsdk:"name"`
	SSH              *connection.SSHModel `tfsdk:"ssh"`
	Labels           types.Map            `tfsdk:"labels"`
	Taints           types.List           `tfsdk:"taints"`
	Config           types.Map            `tfsdk:"config"`
	SensitiveConfig  types.Map            `tfsdk:"sensitive_config"`
	InstalledVersion types.String         `tfsdk:"installed_version"`
	ConfigSHA256     types.String         `tfsdk:"config_sha256"`
	SecretsSHA256    types.String         `tfsdk:"sensitive_config_sha256"`
}

func (r *rke2ClusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_rke2_cluster"
}

func rke2NodeBlock(role string) schema.ListNestedBlock {
	var desc string
	if role == "server" {
		desc = "A server (control plane and etcd). The first `server` block initializes the cluster; the others join it one at a time. " +
			"Keep the first one first: it is the one without a `server:` join address. At least one is required."
	} else {
		desc = "An agent (worker). Agents join in parallel once the servers are up."
	}
	return schema.ListNestedBlock{
		Description: desc,
		NestedObject: schema.NestedBlockObject{
			Attributes: map[string]schema.Attribute{
				"name": schema.StringAttribute{Required: true,
					Description: "Name of the node in the cluster (RKE2's `node-name`). Unique among all servers and agents. It is the node's Kubernetes Node name, so it cannot change in place: a block whose name changes while its `ssh` host stays the same is refused at plan time (and at apply, when the host is reached under another address and already runs another node of this cluster), because joining the new name and removing the old one would uninstall RKE2 from that very machine. To rename a node, remove its block in one apply and add it back under the new name in another.",
					Validators:  []validator.String{stringvalidator.RegexMatches(rke2NodeNameRe, "must be a DNS name: lowercase letters, digits, '-' and '.'"), stringvalidator.LengthAtMost(253)}},
				"labels": schema.MapAttribute{Optional: true, Computed: true, ElementType: types.StringType,
					Description: "Node labels (RKE2's `node-label`). Set at registration and kept in line through the Kubernetes API when they change; labels removed here are removed from the node. " +
						"Left out, a node of the cluster keeps the labels it has (an imported node, those of its config.yaml); `{}` removes them."},
				"taints": schema.ListAttribute{Optional: true, Computed: true, ElementType: types.StringType,
					Description: "Node taints as `key=value:Effect` or `key:Effect` (RKE2's `node-taint`). Set at registration and kept in line through the Kubernetes API when they change. " +
						"Left out, a node of the cluster keeps the taints it has (an imported node, those of its config.yaml); `[]` removes them.",
					Validators: []validator.List{listvalidator.ValueStringsAre(validators.Taint())}},
				"config": schema.MapAttribute{Optional: true, Computed: true, ElementType: types.StringType,
					Description: "Left out, a node of the cluster keeps the keys it has (an imported node, those of its config.yaml that no other attribute models); `{}` removes them. " +
						"This node's own `config.yaml` keys (flag names without `--`), over the cluster-wide `config`; e.g. `{ \"node-ip\" = \"192.168.1.21\" }`. " +
						"List flags take comma-separated values. `token`, `server`, `node-name`, `node-label` and `node-taint` are set by the provider and not allowed here. " +
						"Not sensitive: keys that carry secrets are refused here (see the cluster's `sensitive_config`) and go in `sensitive_config`."},
				"sensitive_config": schema.MapAttribute{Optional: true, Computed: true, Sensitive: true, ElementType: types.StringType,
					Description: "Left out, a node of the cluster keeps the secret-bearing keys it has (an imported node, those read from its config.yaml); `{}` removes them. " +
						"This node's own `config.yaml` keys whose values are secrets, written like `config` (over the cluster-wide maps) but hidden from plans, logs and diagnostics. " +
						"A key may be in this map or in the node's `config`, not both."},
				"installed_version": schema.StringAttribute{Computed: true,
					Description: "RKE2 version the node reports (`rke2 --version`); empty when RKE2 is missing. A version changed out of band shows as a change in the plan, and apply installs the configured one again."},
				"config_sha256": schema.StringAttribute{Computed: true,
					Description: "`sha256:` of the node's `/etc/rancher/rke2/config.yaml` as found on the node, in canonical form, without the `token` key and with the values of the secret-bearing keys " +
						"(those of `sensitive_config` and those `config` refuses) replaced by a placeholder, so no hash of a secret is stored here. " +
						"An out-of-band edit shows as a change in the plan; apply writes the file again and restarts that node only."},
				"sensitive_config_sha256": schema.StringAttribute{Computed: true, Sensitive: true,
					Description: "`sha256:` of the secret-bearing keys of the node's `config.yaml` and their values (never the token); empty when there are none. " +
						"Sensitive. A secret changed on the node shows as a change of this attribute; apply writes the file again and restarts that node only."},
			},
			Blocks: map[string]schema.Block{"ssh": connection.RequiredResourceBlock()},
		},
	}
}

func (r *rke2ClusterResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	useState := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	useStateList := []planmodifier.List{listplanmodifier.UseStateForUnknown()}
	servers := rke2NodeBlock("server")
	servers.Validators = []validator.List{listvalidator.IsRequired(), listvalidator.SizeAtLeast(1)}
	resp.Schema = schema.Schema{
		Description: "An RKE2 Kubernetes cluster installed over SSH on the `server` and `agent` nodes: `config.yaml` written (0600), RKE2 installed " +
			"from airgap artifacts the provider uploads or with RKE2's online installer, `rke2-server`/`rke2-agent` enabled and started, and every node " +
			"waited for until it is registered and Ready. Changing `version` upgrades node by node; nodes added join, nodes removed are drained, deleted and uninstalled; " +
			"config changes restart only the nodes they affect. A node that cannot be reached keeps its attributes and does not stop the rest of the cluster from being read and managed. " +
			"Destroy runs `rke2-uninstall.sh` on every node unless `keep_on_destroy` is set, and is refused while the cluster runs workloads unless `force_destroy` is set.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "The cluster ID (`cluster_id`).", PlanModifiers: useState},
			"version": schema.StringAttribute{Optional: true,
				Description: "RKE2 release to install, e.g. `v1.31.4+rke2r1`. Changing it is a rolling upgrade: servers one at a time, then agents, each drained (see `drain`), restarted and waited for Ready. Exactly one of `version` and `channel`.",
				Validators:  []validator.String{stringvalidator.RegexMatches(rke2.VersionRe, "must be an RKE2 release such as v1.31.4+rke2r1")}},
			"channel": schema.StringAttribute{Optional: true,
				Description: "RKE2 release channel for the online installer (`stable`, `latest`, `v1.31`, ...), instead of `version`. The nodes then run whatever the channel pointed to when they were installed; not usable with `airgap`. " +
					"Switching a cluster from `version` (as import records it) to a channel installs nothing: the nodes keep what they run, and the channel is used for nodes installed later; switching from one channel to another reinstalls every node from the new one.",
				Validators: []validator.String{stringvalidator.RegexMatches(rke2.ChannelRe, "must be stable, latest, testing or a minor version such as v1.31")}},
			"install_script_url": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(rke2DefaultInstallScript),
				Description: "URL of RKE2's installer script, fetched by each node with `curl` when there is no `airgap` block. Defaults to " + rke2DefaultInstallScript + ". The nodes need internet access (or a mirror of the script and of RKE2's releases)."},
			"api_endpoint": schema.StringAttribute{Optional: true, Computed: true,
				Description: "DNS name or address (a VIP or load balancer in HA setups) the nodes join through (`https://<api_endpoint>:9345`) and the `kubeconfig` points at (`https://<api_endpoint>:6443`). " +
					"It is added to every server's `tls-san`. When the configuration leaves it out, a new cluster uses the first server's `node-ip` (from its `config`), else its `ssh.host`, " +
					"and an existing (or imported) cluster keeps the endpoint it has (import reads it from the joining nodes' `server:` address)."},
			"token": schema.StringAttribute{Computed: true, Sensitive: true, PlanModifiers: useState,
				Description: "The cluster's shared secret, generated (32 random bytes, hex) when `token_wo` is not set. Null with `token_wo`."},
			"token_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
				Description: "Cluster token to initialize the first server with, write-only: never stored. Nodes joining later read the token from a server (`/var/lib/rancher/rke2/server/token`) over SSH. " +
					"Used when the cluster is created; this resource does not rotate the token of a running cluster (`rke2 token rotate` does).",
				Validators: []validator.String{stringvalidator.AlsoRequires(path.MatchRoot("token_wo_version")), stringvalidator.LengthAtLeast(16)}},
			"token_wo_version": schema.StringAttribute{Optional: true,
				Description: "Any string; set it with `token_wo`."},
			"config": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				Description: "Cluster-wide `config.yaml` keys (RKE2 flag names without `--`) and their values, written to every node; server-only flags (such as `cni`, `disable`, `tls-san`, the CIDRs, " +
					"`write-kubeconfig-mode`, `kube-apiserver-arg`, `etcd-*`) go to servers only, so changing one does not restart agents. List flags take comma-separated values. " +
					"A node's own `config` wins. Keys the provider sets (`token`, `server`, `node-name`, `node-label`, `node-taint`) and keys of the typed attributes below are not allowed here. " +
					"Not sensitive, so keys that carry secrets are refused at plan time and belong in `sensitive_config`: " + secretKeysDoc + "."},
			"sensitive_config": schema.MapAttribute{Optional: true, Sensitive: true, ElementType: types.StringType,
				Description: "Cluster-wide `config.yaml` keys whose values are secrets (e.g. `etcd-s3-access-key`, `etcd-s3-secret-key`, `agent-token`, a `datastore-endpoint` with a password), " +
					"written to the nodes exactly like `config` (server-only flags to servers only) but sensitive: hidden in plans, masked in logs and diagnostics, and hashed only into each node's sensitive `sensitive_config_sha256`. " +
					"A key may be in this map or in `config`, not both. The token is not set here: use `token_wo` (or the generated `token`)."},
			"cni": fixedAtInstall("CNI plugin (`canal`, `calico`, `cilium`, `none`, ...; RKE2's `cni`). Servers only. RKE2's default is canal."),
			"disable": schema.ListAttribute{Optional: true, Computed: true, ElementType: types.StringType, PlanModifiers: useStateList,
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				Description: "Bundled components not to deploy, e.g. `[\"rke2-ingress-nginx\"]` (RKE2's `disable`). Servers only. " +
					"When the configuration leaves it out, the value the servers have is kept (an imported cluster keeps its own); a change rewrites the servers' config.yaml and restarts them."},
			"tls_san": schema.ListAttribute{Optional: true, Computed: true, ElementType: types.StringType, PlanModifiers: useStateList,
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				Description: "Extra names and addresses for the API server certificate (RKE2's `tls-san`); `api_endpoint` is always added. Servers only. " +
					"When the configuration leaves it out, the value the servers have is kept (an imported cluster keeps its own); a change rewrites the servers' config.yaml and restarts them."},
			"cluster_cidr": fixedAtInstall("Pod network CIDR (RKE2's `cluster-cidr`, default " + rke2DefaultClusterCIDR + "). Servers only."),
			"service_cidr": fixedAtInstall("Service network CIDR (RKE2's `service-cidr`, default " + rke2DefaultServiceCIDR + "). Servers only."),
			"manifests": schema.MapAttribute{Optional: true, Sensitive: true, ElementType: types.StringType,
				Description: "Kubernetes manifests (name to YAML, multi-document allowed) written to `/var/lib/rancher/rke2/server/manifests/<name>.yaml` on every server, which RKE2 applies and re-applies when they change " +
					"(e.g. MetalLB, cert-manager, kube-vip). Removing an entry deletes the file, not the objects. A file changed or deleted on a server shows as drift. Sensitive, as manifests often carry secrets.",
				Validators: []validator.Map{validators.ManifestNames()}},
			"drain": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Drain each node (cordon, evict its pods through the Eviction API, skipping DaemonSet and mirror pods) before upgrading it, and uncordon it once it is Ready again. " +
					"Evictions a PodDisruptionBudget refuses are retried for up to `drain_timeout`. A node that is alone in the cluster is not drained. Nodes being removed are always cordoned and drained. " +
					"Pods with `emptyDir` volumes are only evicted with `drain_delete_emptydir_data`."},
			"drain_timeout": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(rke2DefaultDrainTimeout),
				Description: "How long one node's drain may take, as a duration such as `10m` (default " + rke2DefaultDrainTimeout + "). When it runs out, an upgrade fails with the pods still on the node; " +
					"the removal of a node that cannot be reached (a machine gone for good) goes on: its Node is deleted from the cluster and the pods left on it are reported in a warning.",
				Validators: []validator.String{validators.Duration()}},
			"drain_delete_emptydir_data": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Let a drain evict pods that keep data in `emptyDir` volumes, deleting that data (kubectl drain's `--delete-emptydir-data`). Defaults to false: " +
					"a drain that would evict such a pod (an upgrade with `drain`, or a node removed) fails before anything is changed and names the pods."},
			"keep_on_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "On destroy, leave RKE2 installed and running on every node and only forget the cluster. Defaults to false: destroy runs `rke2-uninstall.sh` on every node (see `force_destroy`)."},
			"force_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Let destroy uninstall a cluster that runs workloads: pods outside `kube-system`, `kube-public` and `kube-node-lease`, or PersistentVolumeClaims. " +
					"Without it, destroy (unless `keep_on_destroy`) first asks the cluster, and fails naming what runs there when it finds workloads or cannot be asked; nothing is uninstalled then. " +
					"Set it and apply before destroying."},
			"kubeconfig": schema.StringAttribute{Computed: true, Sensitive: true, PlanModifiers: useState,
				Description: "Admin kubeconfig of the cluster (RKE2's `/etc/rancher/rke2/rke2.yaml` from the first server), with its server rewritten to `https://<api_endpoint>:6443`."},
			"ca_certificate": schema.StringAttribute{Computed: true, PlanModifiers: useState,
				Description: "PEM of the cluster CA that signs the API server's certificate."},
			"client_certificate": schema.StringAttribute{Computed: true, PlanModifiers: useState,
				Description: "PEM of the admin client certificate (`system:admin`, group `system:masters`)."},
			"client_key": schema.StringAttribute{Computed: true, Sensitive: true, PlanModifiers: useState,
				Description: "PEM of the admin client key."},
			"cluster_id": schema.StringAttribute{Computed: true, PlanModifiers: useState,
				Description: "UID of the cluster's `kube-system` namespace, which identifies the cluster."},
		},
		Blocks: map[string]schema.Block{
			"server": servers,
			"agent":  rke2NodeBlock("agent"),
			"airgap": schema.SingleNestedBlock{
				Description: "Install from airgap artifacts instead of the online installer: the provider uploads them from this machine to each node (into `" + rke2.StagingDir + "`, " +
					"skipping files already there), checks them there with `sha256sum -c`, checks that they are the release `version` names, extracts the tarball under `/usr/local` " +
					"and copies the images into `" + rke2.ImagesDir + "`. Requires `version`.",
				Attributes: map[string]schema.Attribute{
					"artifacts_dir": schema.StringAttribute{Optional: true,
						Description: "Local directory holding the release's `rke2.linux-<arch>.tar.gz`, `rke2-images.linux-<arch>.tar.gz` and `sha256sum-<arch>.txt` (as published on RKE2's release page), " +
							"for each architecture of the nodes. Required in the block. Changing `version` together with the directory's content is an upgrade."},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, rke2CreateTimeout, rke2UpdateTimeout, rke2DeleteTimeout),
		},
	}
}

// RKE2's defaults of the settings fixed at install.
const (
	rke2DefaultCNI         = "canal"
	rke2DefaultClusterCIDR = "10.42.0.0/16"
	rke2DefaultServiceCIDR = "10.43.0.0/16"
)

// rke2FixedAtInstall are the attributes a running cluster cannot change
// (its pod and service networks, its CNI), with RKE2's default for a
// cluster whose config.yaml does not set them.
var rke2FixedAtInstall = []struct{ attr, def string }{
	{"cni", rke2DefaultCNI}, {"cluster_cidr", rke2DefaultClusterCIDR}, {"service_cidr", rke2DefaultServiceCIDR},
}

// fixedAtInstall is a setting chosen when the cluster is created:
// Optional+Computed, keeping the cluster's value when the configuration
// is silent, and a differing value is refused at plan time (ModifyPlan).
func fixedAtInstall(desc string) schema.StringAttribute {
	return schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
		Description: desc + " Fixed when the cluster is created: when the configuration leaves it out, the cluster's value is kept (null means RKE2's default); " +
			"a configured value that differs from the cluster's is refused at plan time, because changing it on a running cluster breaks its network (nothing is reinstalled)."}
}

var rke2NodeNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

func (r *rke2ClusterResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("version"), path.MatchRoot("channel")),
		resourcevalidator.Conflicting(path.MatchRoot("airgap"), path.MatchRoot("channel")),
	}
}

func (r *rke2ClusterResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

// secretKeysDoc lists, for the schema, what `config` refuses as secret
// (besides `token`, which the provider sets).
var secretKeysDoc = func() string {
	var keys []string
	for _, k := range rke2.SecretKeys {
		if k != rke2.KeyToken {
			keys = append(keys, k)
		}
	}
	return "`" + strings.Join(keys, "`, `") + "`, keys ending in `" + strings.Join(rke2.SecretSuffixes, "`, `") +
		"` unless the value is a file path, and any value embedding credentials (a password in a URL such as a `datastore-endpoint`, a MySQL DSN, `password=`)"
}()

// typedKeys maps the typed attributes to their config.yaml keys.
var typedKeys = map[string]string{"cni": "cni", "disable": "disable", "tls_san": "tls-san", "cluster_cidr": "cluster-cidr", "service_cidr": "service-cidr"}

// ValidateConfig checks what the schema cannot: unique node names, keys
// of the config maps, label syntax, airgap requirements.
func (r *rke2ClusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m rke2ClusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.Airgap != nil {
		if m.Airgap.ArtifactsDir.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("airgap").AtName("artifacts_dir"), "Missing artifacts directory",
				"The `airgap` block needs `artifacts_dir`: the local directory holding the release's artifacts.")
		}
		if m.Version.IsNull() && !m.Channel.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root("version"), "Airgap install needs a version",
				"Airgap artifacts are one release: set `version` to it.")
		}
	}
	// Keys of the cluster-wide map that a typed attribute or the provider sets.
	set := map[string]bool{"cni": !m.CNI.IsNull(), "disable": !m.Disable.IsNull(), "tls_san": !m.TLSSAN.IsNull(),
		"cluster_cidr": !m.ClusterCIDR.IsNull(), "service_cidr": !m.ServiceCIDR.IsNull()}
	checkMap := func(at path.Path, mp types.Map, typed bool, twin types.Map, sensitive bool) {
		if mp.IsNull() || mp.IsUnknown() {
			return
		}
		twinName := "sensitive_config"
		if sensitive {
			twinName = "config"
		}
		for k, v := range mp.Elements() {
			if rke2.IsManagedKey(k) {
				resp.Diagnostics.AddAttributeError(at.AtMapKey(k), "Key set by the provider",
					fmt.Sprintf("%q is written by the provider: use the node's `name`, `labels` and `taints`; the join address comes from `api_endpoint` and the token from `token`/`token_wo`. Remove it from this map.", k))
				continue
			}
			if strings.HasPrefix(k, "-") || strings.ContainsAny(k, " =:") || k == "" {
				resp.Diagnostics.AddAttributeError(at.AtMapKey(k), "Invalid config key",
					fmt.Sprintf("%q is not an RKE2 flag name: write it without dashes in front, e.g. \"node-ip\".", k))
				continue
			}
			if typed {
				for a, key := range typedKeys {
					if key == k && set[a] {
						resp.Diagnostics.AddAttributeError(at.AtMapKey(k), "Key set twice",
							fmt.Sprintf("%q is also set by the `%s` attribute: set it in one place.", k, a))
					}
				}
			}
			if _, dup := twin.Elements()[k]; dup && !sensitive {
				resp.Diagnostics.AddAttributeError(at.AtMapKey(k), "Key set twice",
					fmt.Sprintf("%q is also in `%s`: set it in one place.", k, twinName))
			}
			if sensitive {
				continue
			}
			// Never the value in a diagnostic: it may be the secret.
			str, _ := v.(types.String)
			if reason := rke2.SecretReason(k, str.ValueString(), !str.IsUnknown()); reason != "" {
				resp.Diagnostics.AddAttributeError(at.AtMapKey(k), "Secret in a non-sensitive map",
					fmt.Sprintf("%q looks like it carries a secret: %s. Values of `config` are shown in plans and stored unmasked in the state. "+
						"Move this entry, unchanged, to `%s` (written to config.yaml the same way, but sensitive).", k, reason, twinName))
			}
		}
	}
	checkMap(path.Root("config"), m.Config, true, m.SensitiveConfig, false)
	checkMap(path.Root("sensitive_config"), m.SensitiveConfig, true, m.Config, true)
	seen, hosts := map[string]string{}, map[string]string{}
	for _, g := range []struct {
		block string
		nodes []rke2NodeModel
	}{{"server", m.Servers}, {"agent", m.Agents}} {
		for i, n := range g.nodes {
			at := path.Root(g.block).AtListIndex(i)
			resp.Diagnostics.Append(connection.Warnings(n.SSH, nil, at.AtName("ssh"))...)
			checkMap(at.AtName("config"), n.Config, false, n.SensitiveConfig, false)
			checkMap(at.AtName("sensitive_config"), n.SensitiveConfig, false, n.Config, true)
			if !n.Name.IsNull() && !n.Name.IsUnknown() {
				name := n.Name.ValueString()
				if prev, dup := seen[name]; dup {
					resp.Diagnostics.AddAttributeError(at.AtName("name"), "Duplicate node name",
						fmt.Sprintf("%q is also the name of %s: every server and agent needs its own name.", name, prev))
				}
				seen[name] = fmt.Sprintf("%s %d", g.block, i)
			}
			if id, ok := sshIdentity(n.SSH); ok {
				if prev, dup := hosts[id]; dup {
					resp.Diagnostics.AddAttributeError(at.AtName("ssh").AtName("host"), "Two nodes on one host",
						fmt.Sprintf("This node is reached at the same address as %s. One machine runs one RKE2 node: the second block would rewrite the first one's config.yaml under another name.", prev))
				}
				hosts[id] = fmt.Sprintf("%s %d (%q)", g.block, i, n.Name.ValueString())
			}
			if !n.Labels.IsNull() && !n.Labels.IsUnknown() {
				for k, v := range n.Labels.Elements() {
					if !kube.LabelKeyRe.MatchString(k) {
						resp.Diagnostics.AddAttributeError(at.AtName("labels").AtMapKey(k), "Invalid label key",
							fmt.Sprintf("%q is not a Kubernetes label key (an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.').", k))
					}
					if s, ok := v.(types.String); ok && !s.IsUnknown() && !kube.LabelValueRe.MatchString(s.ValueString()) {
						resp.Diagnostics.AddAttributeError(at.AtName("labels").AtMapKey(k), "Invalid label value",
							fmt.Sprintf("%q is not a Kubernetes label value (up to 63 letters, digits, '-', '_' or '.').", s.ValueString()))
					}
				}
			}
		}
	}
}

// sshIdentity names the machine an ssh block reaches, as far as the
// configuration tells: its host (lowercase, without a trailing dot), port
// and bastion, or "local". ok is false while any of them is unknown.
// Two blocks with the same identity reach the same machine; the converse
// does not hold (a name and an address of one host differ), which apply
// checks on the machine itself.
func sshIdentity(m *connection.SSHModel) (string, bool) {
	if m == nil || m.Local.IsUnknown() || m.Host.IsUnknown() || m.Port.IsUnknown() {
		return "", false
	}
	if m.Local.ValueBool() {
		return "local", true
	}
	if m.Host.IsNull() {
		return "", false
	}
	id := strings.TrimSuffix(strings.ToLower(m.Host.ValueString()), ".")
	if !m.Port.IsNull() {
		id += fmt.Sprintf(":%d", m.Port.ValueInt64())
	}
	if b := m.Bastion; b != nil {
		if b.Host.IsUnknown() || b.Port.IsUnknown() {
			return "", false
		}
		id = strings.ToLower(b.Host.ValueString()) + ":" + b.Port.String() + " > " + id
	}
	return id, true
}

// knownStrings returns a map's entries; known is false while the map or
// one of its values is unknown.
func knownStrings(m types.Map) (map[string]string, bool) {
	if m.IsUnknown() {
		return nil, false
	}
	out := map[string]string{}
	for k, v := range m.Elements() {
		s, ok := v.(types.String)
		if !ok || s.IsUnknown() {
			return nil, false
		}
		if !s.IsNull() {
			out[k] = s.ValueString()
		}
	}
	return out, true
}

// knownList returns a list's strings; known is false while it is unknown.
func knownList(l types.List) ([]string, bool) {
	if l.IsUnknown() {
		return nil, false
	}
	var out []string
	for _, v := range l.Elements() {
		s, ok := v.(types.String)
		if !ok || s.IsUnknown() {
			return nil, false
		}
		out = append(out, s.ValueString())
	}
	return out, true
}
