// Package provider defines the homelab provider: its configuration (the
// ssh, bmc and kubernetes defaults every resource can override) and the
// registration of its resources and data sources.
package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/host"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/metallb"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/node"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/restic"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/rke2"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/zfs"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	zfsclient "github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// TypeName is the provider's type name, the prefix of its resources.
const TypeName = "homelab"

// Model is the provider block.
type Model struct {
	SSH        *connection.ProviderSSHModel `tfsdk:"ssh"`
	BMC        *connection.BMCModel         `tfsdk:"bmc"`
	Kubernetes *connection.KubernetesModel  `tfsdk:"kubernetes"`
}

// Provider is the homelab provider. One instance lives per provider process;
// it owns the SSH connection pool every resource and data source shares.
type Provider struct {
	version string
	pool    *remote.Pool
}

var (
	_ provider.Provider                   = (*Provider)(nil)
	_ provider.ProviderWithValidateConfig = (*Provider)(nil)
)

// New returns a constructor for the provider at the given version.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &Provider{version: version, pool: remote.NewPool(logging.Pool)}
	}
}

func (p *Provider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = TypeName
	resp.Version = p.version
}

func (p *Provider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	const desc = "Manages a homelab from bare metal up: servers through their BMC, ZFS pools and datasets, " +
		"restic backups, MetalLB address pools and RKE2 clusters, over SSH and the hosts' own tools."
	bmcDesc := map[string]string{
		"block":        "Defaults for the `bmc` blocks of `homelab_node`.",
		"username":     "BMC user name.",
		"password":     "BMC password.",
		"protocol":     "How to talk to BMCs: `ipmi`, `redfish`, or `auto` (try Redfish, then IPMI). Defaults to `auto`.",
		"insecure_tls": "Accept self-signed TLS certificates from Redfish BMCs, which most ship with.",
		"timeout": "How long one BMC operation (a power or boot-device read or change, with its retries) may take, as a Go duration (`30s`, `2m`). " +
			"A BMC that stops answering (hung, overloaded, a dead network path) fails the refresh or apply with a \"did not answer within\" error that keeps the state, instead of hanging it. " +
			"With `protocol = \"auto\"` the first operation also spends up to one timeout detecting the protocol. Defaults to `30s`.",
	}
	kubeDesc := map[string]string{
		"block":           "How to reach the Kubernetes API for Kubernetes-backed resources. A resource's own `kubeconfig` overrides it, so a cluster built in the same apply can be used.",
		"kubeconfig_path": "Path of a kubeconfig file. Defaults to `$KUBECONFIG`, then `~/.kube/config`.",
		"kubeconfig":      "Content of a kubeconfig, instead of a path.",
		"context":         "Context of the kubeconfig to use. Defaults to its current context.",
		"timeout": "How long one request to the Kubernetes API may take, from connecting to the last byte of the answer, as a Go duration (`30s`, `2m`). " +
			"An API server (or its etcd) that stops answering fails the refresh or apply with a \"did not answer within\" error that keeps the state, instead of hanging it. " +
			"Applies to resources using their own `kubeconfig` too. Defaults to `30s`.",
	}
	resp.Schema = schema.Schema{
		Description: desc, MarkdownDescription: desc,
		Blocks: map[string]schema.Block{
			"ssh": connection.ProviderBlock(),
			"bmc": schema.SingleNestedBlock{
				Description: bmcDesc["block"], MarkdownDescription: bmcDesc["block"],
				Attributes: map[string]schema.Attribute{
					"username": schema.StringAttribute{Optional: true, Description: bmcDesc["username"], MarkdownDescription: bmcDesc["username"]},
					"password": schema.StringAttribute{Optional: true, Sensitive: true, Description: bmcDesc["password"], MarkdownDescription: bmcDesc["password"]},
					"protocol": schema.StringAttribute{Optional: true, Description: bmcDesc["protocol"], MarkdownDescription: bmcDesc["protocol"],
						Validators: []validator.String{stringvalidator.OneOf("auto", "ipmi", "redfish")}},
					"insecure_tls": schema.BoolAttribute{Optional: true, Description: bmcDesc["insecure_tls"], MarkdownDescription: bmcDesc["insecure_tls"]},
					"timeout": schema.StringAttribute{Optional: true, Description: bmcDesc["timeout"], MarkdownDescription: bmcDesc["timeout"],
						Validators: []validator.String{validators.Duration()}},
				},
			},
			"kubernetes": schema.SingleNestedBlock{
				Description: kubeDesc["block"], MarkdownDescription: kubeDesc["block"],
				Attributes: map[string]schema.Attribute{
					"kubeconfig_path": schema.StringAttribute{Optional: true, Description: kubeDesc["kubeconfig_path"], MarkdownDescription: kubeDesc["kubeconfig_path"],
						Validators: []validator.String{stringvalidator.ConflictsWith(path.MatchRelative().AtParent().AtName("kubeconfig"))}},
					"kubeconfig": schema.StringAttribute{Optional: true, Sensitive: true, Description: kubeDesc["kubeconfig"], MarkdownDescription: kubeDesc["kubeconfig"]},
					"context":    schema.StringAttribute{Optional: true, Description: kubeDesc["context"], MarkdownDescription: kubeDesc["context"]},
					"timeout": schema.StringAttribute{Optional: true, Description: kubeDesc["timeout"], MarkdownDescription: kubeDesc["timeout"],
						Validators: []validator.String{validators.Duration()}},
				},
			},
		},
	}
}

// ValidateConfig warns about provider-wide settings that weaken security.
func (p *Provider) ValidateConfig(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var m Model
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if m.SSH != nil && m.SSH.InsecureIgnoreHostKey.ValueBool() {
		resp.Diagnostics.AddAttributeWarning(path.Root("ssh").AtName("insecure_ignore_host_key"), "Host key verification is disabled",
			"insecure_ignore_host_key = true in the provider's ssh block: no host's identity is checked, so anyone on the network path "+
				"can impersonate a host and read everything sent, including secrets. Record host keys in known_hosts or pin `host_key` per host instead.")
	}
}

// Configure hands the defaults and the shared connection pool to resources
// and data sources. Unknown values are passed on as unknown: they only
// matter once a resource actually connects.
func (p *Provider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m Model
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "password", "private_key", "kubeconfig")
	logging.Debug(ctx, "configuring homelab provider", map[string]any{"version": p.version, "ssh_defaults": m.SSH != nil})
	data := &connection.Data{
		Defaults: connection.Defaults{Pool: p.pool, SSH: m.SSH, BMC: m.BMC, Kubernetes: m.Kubernetes},
		ZFS:      zfsclient.NewRegistry(),
	}
	resp.DataSourceData = data
	resp.ResourceData = data
}

func (p *Provider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		zfs.NewZPool,
		zfs.NewZFSDataset,
		metallb.NewMetalLBPool,
		node.NewNode,
		restic.NewResticRepo,
		restic.NewResticBackup,
		rke2.NewRKE2Cluster,
	}
}

func (p *Provider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		host.NewHost,
		zfs.NewZPoolDataSource,
		zfs.NewZFSDatasets,
		restic.NewResticSnapshots,
	}
}
