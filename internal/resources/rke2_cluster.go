package resources

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
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

	"github.com/terraform-homelab/terraform-provider-homelab/internal/hostconn"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/providerdata"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

var (
	_ resource.Resource                     = (*RKE2Cluster)(nil)
	_ resource.ResourceWithConfigure        = (*RKE2Cluster)(nil)
	_ resource.ResourceWithConfigValidators = (*RKE2Cluster)(nil)
	_ resource.ResourceWithValidateConfig   = (*RKE2Cluster)(nil)
	_ resource.ResourceWithModifyPlan       = (*RKE2Cluster)(nil)
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

// RKE2Cluster is the homelab_rke2_cluster resource.
type RKE2Cluster struct {
	data *providerdata.Data
}

// NewRKE2Cluster returns the homelab_rke2_cluster resource.
func NewRKE2Cluster() resource.Resource { return &RKE2Cluster{} }

// RKE2ClusterModel is the resource's data.
type RKE2ClusterModel struct {
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
	Airgap            *RKE2AirgapModel `tfsdk:"airgap"`
	Servers           []RKE2NodeModel  `tfsdk:"server"`
	Agents            []RKE2NodeModel  `tfsdk:"agent"`
	Timeouts          timeouts.Value   `tfsdk:"timeouts"`
}

// RKE2AirgapModel is the airgap block.
type RKE2AirgapModel struct {
	ArtifactsDir types.String `tfsdk:"artifacts_dir"`
}

// RKE2NodeModel is a server or agent block.
type RKE2NodeModel struct {
	Name             types.String       `tfsdk:"name"`
	SSH              *hostconn.SSHModel `tfsdk:"ssh"`
	Labels           types.Map          `tfsdk:"labels"`
	Taints           types.List         `tfsdk:"taints"`
	Config           types.Map          `tfsdk:"config"`
	SensitiveConfig  types.Map          `tfsdk:"sensitive_config"`
	InstalledVersion types.String       `tfsdk:"installed_version"`
	ConfigSHA256     types.String       `tfsdk:"config_sha256"`
	SecretsSHA256    types.String       `tfsdk:"sensitive_config_sha256"`
}

func (r *RKE2Cluster) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
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
					Validators: []validator.List{listvalidator.ValueStringsAre(taintValidator{})}},
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
			Blocks: map[string]schema.Block{"ssh": hostconn.RequiredResourceBlock()},
		},
	}
}

func (r *RKE2Cluster) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
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
				Validators: []validator.Map{manifestNamesValidator{}}},
			"drain": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Drain each node (cordon, evict its pods through the Eviction API, skipping DaemonSet and mirror pods) before upgrading it, and uncordon it once it is Ready again. " +
					"Evictions a PodDisruptionBudget refuses are retried for up to `drain_timeout`. A node that is alone in the cluster is not drained. Nodes being removed are always cordoned and drained. " +
					"Pods with `emptyDir` volumes are only evicted with `drain_delete_emptydir_data`."},
			"drain_timeout": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(rke2DefaultDrainTimeout),
				Description: "How long one node's drain may take, as a duration such as `10m` (default " + rke2DefaultDrainTimeout + "). When it runs out, an upgrade fails with the pods still on the node; " +
					"the removal of a node that cannot be reached (a machine gone for good) goes on: its Node is deleted from the cluster and the pods left on it are reported in a warning.",
				Validators: []validator.String{hostconn.DurationValidator()}},
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
			"timeouts": timeoutsBlock(ctx, rke2CreateTimeout, rke2UpdateTimeout, rke2DeleteTimeout),
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

func (r *RKE2Cluster) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("version"), path.MatchRoot("channel")),
		resourcevalidator.Conflicting(path.MatchRoot("airgap"), path.MatchRoot("channel")),
	}
}

func (r *RKE2Cluster) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerdata.Configure(req.ProviderData, &resp.Diagnostics)
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
func (r *RKE2Cluster) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m RKE2ClusterModel
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
		nodes []RKE2NodeModel
	}{{"server", m.Servers}, {"agent", m.Agents}} {
		for i, n := range g.nodes {
			at := path.Root(g.block).AtListIndex(i)
			resp.Diagnostics.Append(hostconn.Warnings(n.SSH, nil, at.AtName("ssh"))...)
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
func sshIdentity(m *hostconn.SSHModel) (string, bool) {
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

// taintValidator checks key=value:Effect.
type taintValidator struct{}

func (taintValidator) Description(context.Context) string {
	return "must be a taint written key=value:Effect or key:Effect"
}
func (v taintValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (taintValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := kube.ParseTaint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid taint", err.Error())
	}
}

// manifestNamesValidator checks the manifest names (they become file names).
type manifestNamesValidator struct{}

func (manifestNamesValidator) Description(context.Context) string {
	return "names must be lowercase letters, digits, '.', '_' and '-', not starting with rke2-"
}
func (v manifestNamesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (manifestNamesValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for k := range req.ConfigValue.Elements() {
		switch {
		case !rke2.ManifestNameRe.MatchString(k):
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), "Invalid manifest name",
				fmt.Sprintf("%q becomes the file name %q: use lowercase letters, digits, '.', '_' and '-'.", k, k+".yaml"))
		case strings.HasPrefix(k, "rke2-"):
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), "Reserved manifest name",
				fmt.Sprintf("%q would replace one of RKE2's own manifests (rke2-*.yaml); choose another name.", k))
		}
	}
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

// defaultEndpoint is the first server's node-ip, else its ssh host.
func (m *RKE2ClusterModel) defaultEndpoint() (string, bool) {
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

func (m *RKE2ClusterModel) inputs() (clusterInputs, bool) {
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
func (in clusterInputs) spec(role rke2.Role, n *RKE2NodeModel, first bool) (rke2.NodeSpec, bool) {
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
func (m *RKE2ClusterModel) sensitiveKeys(n *RKE2NodeModel) []string {
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
func (m *RKE2ClusterModel) sensitiveValues() []string {
	var out []string
	maps := []types.Map{m.SensitiveConfig}
	for _, l := range [][]RKE2NodeModel{m.Servers, m.Agents} {
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
func serversChanging(state, plan *RKE2ClusterModel) bool {
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

func modelNames(nodes []RKE2NodeModel) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name.ValueString())
	}
	return strings.Join(s, ", ")
}

func nodesByName(nodes []RKE2NodeModel) map[string]*RKE2NodeModel {
	out := map[string]*RKE2NodeModel{}
	for i := range nodes {
		out[nodes[i].Name.ValueString()] = &nodes[i]
	}
	return out
}

// ModifyPlan fills in the default api_endpoint and plans each node's
// installed_version and config_sha256 from the configuration, so a node
// whose version or config.yaml was changed out of band (recorded by Read)
// shows as a change.
func (r *RKE2Cluster) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan RKE2ClusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *RKE2ClusterModel
	if !req.State.Raw.IsNull() {
		state = &RKE2ClusterModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	var prior map[string]*RKE2NodeModel
	var priorRole map[string]string
	if state != nil {
		prior, priorRole = map[string]*RKE2NodeModel{}, map[string]string{}
		for role, nodes := range map[string][]RKE2NodeModel{"server": state.Servers, "agent": state.Agents} {
			for name, n := range nodesByName(nodes) {
				prior[name], priorRole[name] = n, role
			}
		}
	}
	// The node blocks as configured, to tell a silent map from a set one.
	var cfgModel RKE2ClusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfgModel)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfgNodes := map[string][]RKE2NodeModel{"server": cfgModel.Servers, "agent": cfgModel.Agents}
	for block, nodes := range map[string][]RKE2NodeModel{"server": plan.Servers, "agent": plan.Agents} {
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
		nodes []RKE2NodeModel
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
func keepNodeSettings(n, prior *RKE2NodeModel, cfg []RKE2NodeModel, i int) {
	var c *RKE2NodeModel
	if i < len(cfg) {
		c = &cfg[i]
	}
	maps := []struct {
		p     *types.Map
		cfg   func(*RKE2NodeModel) types.Map
		prior func(*RKE2NodeModel) types.Map
	}{
		{&n.Labels, func(m *RKE2NodeModel) types.Map { return m.Labels }, func(m *RKE2NodeModel) types.Map { return m.Labels }},
		{&n.Config, func(m *RKE2NodeModel) types.Map { return m.Config }, func(m *RKE2NodeModel) types.Map { return m.Config }},
		{&n.SensitiveConfig, func(m *RKE2NodeModel) types.Map { return m.SensitiveConfig }, func(m *RKE2NodeModel) types.Map { return m.SensitiveConfig }},
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
func planFixedAtInstall(ctx context.Context, req resource.ModifyPlanRequest, state, plan *RKE2ClusterModel) diag.Diagnostics {
	var diags diag.Diagnostics
	fields := func(m *RKE2ClusterModel) map[string]*types.String {
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
		s    func(*RKE2ClusterModel) types.List
	}{{"disable", &plan.Disable, func(m *RKE2ClusterModel) types.List { return m.Disable }}, {"tls_san", &plan.TLSSAN, func(m *RKE2ClusterModel) types.List { return m.TLSSAN }}} {
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
func renamesOnSameHost(state, plan *RKE2ClusterModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if state == nil {
		return diags
	}
	planned := map[string]bool{}
	for _, l := range [][]RKE2NodeModel{plan.Servers, plan.Agents} {
		for _, n := range l {
			planned[n.Name.ValueString()] = true
		}
	}
	// The hosts of the nodes whose blocks are gone.
	leaving := map[string]string{}
	for _, l := range [][]RKE2NodeModel{state.Servers, state.Agents} {
		for _, n := range l {
			if id, ok := sshIdentity(n.SSH); ok && !planned[n.Name.ValueString()] {
				leaving[id] = n.Name.ValueString()
			}
		}
	}
	inState := map[string]bool{}
	for _, l := range [][]RKE2NodeModel{state.Servers, state.Agents} {
		for _, n := range l {
			inState[n.Name.ValueString()] = true
		}
	}
	for _, g := range []struct {
		block string
		nodes []RKE2NodeModel
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

// ---------------------------------------------------------------------
// Apply machinery.

// clusterNode is one node being worked on.
type clusterNode struct {
	*rke2.Node
	model *RKE2NodeModel
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
	r       *RKE2Cluster
	m       *RKE2ClusterModel
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

func (r *RKE2Cluster) newOp(ctx context.Context, m *RKE2ClusterModel, secrets ...string) (*rke2Op, context.Context) {
	secrets = append(secrets, m.sensitiveValues()...)
	ctx = providerdata.MaskSecrets(ctx, secrets...)
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
	ctx = providerdata.MaskSecrets(ctx, op.secrets...)
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
func (op *rke2Op) connect(m *RKE2ClusterModel) (servers, agents []*clusterNode, diags diag.Diagnostics) {
	mk := func(block string, role rke2.Role, models []RKE2NodeModel) []*clusterNode {
		var out []*clusterNode
		for i := range models {
			n := &models[i]
			at := path.Root(block).AtListIndex(i)
			runner, target, d := hostconn.Connect(op.r.data.Conn(), n.SSH, at.AtName("ssh"))
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
func (op *rke2Op) syncMetadata(ctx context.Context, n *clusterNode, prior *RKE2NodeModel) error {
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
func (op *rke2Op) saveFailed(ctx context.Context, m *RKE2ClusterModel, all []*clusterNode) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_, _, _ = op.readBack(rctx, all)
	for _, v := range []*types.String{&m.ID, &m.ClusterID, &m.Kubeconfig, &m.CACertificate, &m.ClientCertificate, &m.ClientKey, &m.APIEndpoint, &m.Token} {
		if v.IsUnknown() {
			*v = types.StringNull()
		}
	}
	for _, l := range [][]RKE2NodeModel{m.Servers, m.Agents} {
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
func (m *RKE2ClusterModel) setCredentials(c *rke2.Credentials) {
	m.Kubeconfig = types.StringValue(string(c.Kubeconfig))
	m.CACertificate = types.StringValue(c.CACertificate)
	m.ClientCertificate = types.StringValue(c.ClientCertificate)
	m.ClientKey = types.StringValue(c.ClientKey)
}

// failure adds an error diagnostic with advice.
func (op *rke2Op) failure(diags *diag.Diagnostics, summary string, err error) {
	detail := op.redact(explain(err))
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

func (r *RKE2Cluster) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m, cfg RKE2ClusterModel
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

func (r *RKE2Cluster) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, cfg, prior RKE2ClusterModel
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
	priorByName := map[string]*RKE2NodeModel{}
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
func (r *RKE2Cluster) update(ctx context.Context, op *rke2Op, prior *RKE2ClusterModel, servers, agents, priorServers, priorAgents []*clusterNode) error {
	m := op.m
	priorNodes := map[string]*RKE2NodeModel{}
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
func needsInstall(prior, m *RKE2ClusterModel, p *RKE2NodeModel) bool {
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

func (r *RKE2Cluster) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m RKE2ClusterModel
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

func (r *RKE2Cluster) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m RKE2ClusterModel
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
