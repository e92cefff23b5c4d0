package metallb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
)

var (
	_ resource.Resource                   = (*metalLBPoolResource)(nil)
	_ resource.ResourceWithConfigure      = (*metalLBPoolResource)(nil)
	_ resource.ResourceWithImportState    = (*metalLBPoolResource)(nil)
	_ resource.ResourceWithValidateConfig = (*metalLBPoolResource)(nil)
)

// Default timeouts of homelab_metallb_pool: create and update wait for
// MetalLB to finish installing when it is installed in the same apply.
const (
	metallbCreateTimeout = 10 * time.Minute
	metallbUpdateTimeout = 10 * time.Minute
	metallbDeleteTimeout = 5 * time.Minute
)

// metalLBPoolResource is the homelab_metallb_pool resource.
type metalLBPoolResource struct {
	data *connection.Data
}

// NewMetalLBPool returns the homelab_metallb_pool resource.
func NewMetalLBPool() resource.Resource { return &metalLBPoolResource{} }

// metalLBPoolModel is the resource's data.
type metalLBPoolModel struct {
	ID                types.String            `tfsdk:"id"`
	Name              types.String            `tfsdk:"name"`
	Namespace         types.String            `tfsdk:"namespace"`
	Addresses         []types.String          `tfsdk:"addresses"`
	AutoAssign        types.Bool              `tfsdk:"auto_assign"`
	AvoidBuggyIPs     types.Bool              `tfsdk:"avoid_buggy_ips"`
	Kubeconfig        types.String            `tfsdk:"kubeconfig"`
	ClusterID         types.String            `tfsdk:"cluster_id"`
	APIServer         types.String            `tfsdk:"api_server"`
	ServiceAllocation *serviceAllocationModel `tfsdk:"service_allocation"`
	L2                *l2Model                `tfsdk:"l2"`
	BGP               *bgpModel               `tfsdk:"bgp"`
	Timeouts          timeouts.Value          `tfsdk:"timeouts"`
}

// serviceAllocationModel is the service_allocation block.
type serviceAllocationModel struct {
	Priority           types.Int64 `tfsdk:"priority"`
	Namespaces         types.List  `tfsdk:"namespaces"`
	NamespaceSelectors types.List  `tfsdk:"namespace_selectors"`
	ServiceSelectors   types.List  `tfsdk:"service_selectors"`
}

// l2Model is the l2 block.
type l2Model struct {
	Interfaces    types.List `tfsdk:"interfaces"`
	NodeSelectors types.List `tfsdk:"node_selectors"`
}

// bgpModel is the bgp block.
type bgpModel struct {
	Peers               types.List  `tfsdk:"peers"`
	Communities         types.List  `tfsdk:"communities"`
	LocalPref           types.Int64 `tfsdk:"local_pref"`
	AggregationLength   types.Int64 `tfsdk:"aggregation_length"`
	AggregationLengthV6 types.Int64 `tfsdk:"aggregation_length_v6"`
}

var selectorListType = types.ListType{ElemType: types.MapType{ElemType: types.StringType}}

func (r *metalLBPoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_metallb_pool"
}

func (r *metalLBPoolResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	strList := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{ElementType: types.StringType, Optional: true, Description: desc,
			Validators: []validator.List{listvalidator.SizeAtLeast(1)}}
	}
	selList := func(desc string) schema.ListAttribute {
		return schema.ListAttribute{ElementType: types.MapType{ElemType: types.StringType}, Optional: true,
			Description: desc + " Each entry is a label selector's `matchLabels`; entries are ORed.",
			Validators:  []validator.List{listvalidator.SizeAtLeast(1)}}
	}
	resp.Schema = schema.Schema{
		Description: "A MetalLB address pool (IPAddressPool) and its one L2Advertisement or BGPAdvertisement, named after the pool. " +
			"Written with server-side apply as `" + kube.FieldManager + "`, so labels, annotations and fields the resource does not manage are left alone; " +
			"an update makes the fields it manages what the configuration says, removing those it leaves out even when another manager set them (a pool made with kubectl, then imported). " +
			"When MetalLB is installed in the same apply, creation waits for its CRDs and webhook within `timeouts.create`; " +
			"planning never needs them. The pool is tied to the cluster it was created in (`cluster_id`): when the kubeconfig or its current context " +
			"reaches another cluster, or MetalLB's CRDs are missing, refresh, update and destroy fail and keep the state instead of treating the pool as gone.",
		Blocks: map[string]schema.Block{
			"service_allocation": schema.SingleNestedBlock{
				Description: "Which services may get addresses from this pool, and with which priority.",
				Attributes: map[string]schema.Attribute{
					"priority": schema.Int64Attribute{Optional: true, Description: "Priority of this pool among those a service may use; lower wins.",
						Validators: []validator.Int64{int64validator.AtLeast(1)}},
					"namespaces":          strList("Namespaces whose services may use the pool."),
					"namespace_selectors": selList("Namespaces, by labels, whose services may use the pool."),
					"service_selectors":   selList("Services, by labels, that may use the pool."),
				},
			},
			"l2": schema.SingleNestedBlock{
				Description: "Announce the pool's addresses in layer 2 mode (ARP/NDP). Exactly one of `l2` and `bgp` is required.",
				Attributes: map[string]schema.Attribute{
					"interfaces":     strList("Interfaces to announce from; all when empty."),
					"node_selectors": selList("Nodes that may announce."),
				},
			},
			"bgp": schema.SingleNestedBlock{
				Description: "Announce the pool's addresses over BGP. Exactly one of `l2` and `bgp` is required.",
				Attributes: map[string]schema.Attribute{
					"peers":       strList("BGPPeer names to announce to; all when empty."),
					"communities": strList("BGP communities to attach, e.g. `64512:100`."),
					"local_pref": schema.Int64Attribute{Optional: true, Description: "BGP LOCAL_PREF for the announcements (iBGP only).",
						Validators: []validator.Int64{int64validator.Between(1, 4294967295)}},
					"aggregation_length": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(32),
						Description: "Prefix length IPv4 addresses are aggregated to. Defaults to 32 (each address announced alone), as in MetalLB.",
						Validators:  []validator.Int64{int64validator.Between(1, 32)}},
					"aggregation_length_v6": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(128),
						Description: "Prefix length IPv6 addresses are aggregated to. Defaults to 128, as in MetalLB.",
						Validators:  []validator.Int64{int64validator.Between(1, 128)}},
				},
			},
			"timeouts": tfhelp.TimeoutsBlock(ctx, metallbCreateTimeout, metallbUpdateTimeout, metallbDeleteTimeout),
		},
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "`namespace/name`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, Description: "Name of the IPAddressPool and of its advertisement.",
				Validators:    []validator.String{stringvalidator.RegexMatches(dnsLabelRe, "must be a DNS label: lowercase letters, digits and -")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"namespace": schema.StringAttribute{Optional: true, Computed: true,
				Description: "Namespace MetalLB runs in. Unset: `metallb-system` for a new pool; a pool in state (e.g. imported from another namespace) stays where it is, never replaced into `metallb-system`.",
				// A namespace no cluster can have would plan the pool's
				// replacement: its deletion, then a create that cannot succeed.
				Validators:    []validator.String{stringvalidator.RegexMatches(dnsLabelRe, "must be a DNS label: lowercase letters, digits and -")},
				PlanModifiers: []planmodifier.String{unsetNamespace{}, stringplanmodifier.RequiresReplace()}},
			"addresses": schema.ListAttribute{ElementType: types.StringType, Required: true,
				Description: "Addresses to hand out: CIDRs (`192.168.10.0/24`, `fd00:10::/120`) and ranges (`192.168.10.10-192.168.10.20`), IPv4 and IPv6. They must not overlap each other or another pool's.",
				Validators:  []validator.List{listvalidator.SizeAtLeast(1)}},
			"auto_assign": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Assign addresses from this pool to services that do not ask for a pool. Defaults to true."},
			"avoid_buggy_ips": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "Skip addresses ending in .0 and .255, which some old devices mishandle."},
			"kubeconfig": schema.StringAttribute{Optional: true, Sensitive: true,
				Description: "Kubeconfig content for this pool's cluster, overriding the provider's `kubernetes` block; for example `homelab_rke2_cluster.main.kubeconfig`, so a cluster built in the same apply needs no provider configured from it."},
			"cluster_id": schema.StringAttribute{Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Description: "UID of the `kube-system` namespace of the cluster the pool was created in (or imported from), which identifies that cluster. " +
					"Refresh, update and destroy refuse to act, and keep state, when the kubeconfig or its current context now reaches another cluster, " +
					"so switching `kubectl config use-context` cannot make an apply create or delete pools in the wrong cluster."},
			"api_server": schema.StringAttribute{Computed: true, PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Description: "URL of the API server the pool was last read through; informational (the cluster is identified by `cluster_id`, so a new address of the same cluster is fine)."},
		},
	}
}

func (r *metalLBPoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = connection.Configure(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig checks the addresses (syntax, overlaps within the pool)
// and that exactly one advertisement mode is chosen, at plan time.
func (r *metalLBPoolResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m metalLBPoolModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if (m.L2 == nil) == (m.BGP == nil) {
		resp.Diagnostics.AddAttributeError(path.Root("l2"), "Choose L2 or BGP",
			"Exactly one of the `l2` and `bgp` blocks is required: the pool is announced one way. Use two pools to announce addresses both ways.")
	}
	var ranges []kube.Range
	for i, a := range m.Addresses {
		if a.IsUnknown() || a.IsNull() {
			continue
		}
		rg, err := kube.ParseAddress(a.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("addresses").AtListIndex(i), "Invalid address", err.Error())
			continue
		}
		ranges = append(ranges, rg)
	}
	for _, o := range kube.FindOverlaps(ranges, nil) {
		resp.Diagnostics.AddAttributeError(path.Root("addresses"), "Overlapping addresses",
			fmt.Sprintf("%s and %s overlap; MetalLB would refuse the pool. Remove one or make them disjoint.", o.A, o.B))
	}
}

// client builds the Kubernetes client from the resource's kubeconfig or
// the provider's kubernetes block.
func (r *metalLBPoolResource) client(m *metalLBPoolModel) (*kube.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	a := r.data.KubeAccess(m.Kubeconfig)
	c, err := kube.NewClient(a)
	if err != nil {
		diags.AddAttributeError(path.Root("kubeconfig"), "Unable to configure the Kubernetes client",
			err.Error()+"\n\nSet `kubeconfig` on the resource or the provider's `kubernetes` block.")
	}
	return c, diags
}

func (m *metalLBPoolModel) pool(ctx context.Context) (*kube.Pool, diag.Diagnostics) {
	var diags diag.Diagnostics
	p := &kube.Pool{Namespace: m.Namespace.ValueString(), Name: m.Name.ValueString(),
		AutoAssign: m.AutoAssign.ValueBool(), AvoidBuggyIPs: m.AvoidBuggyIPs.ValueBool()}
	for _, a := range m.Addresses {
		p.Addresses = append(p.Addresses, a.ValueString())
	}
	strs := func(l types.List) []string {
		var out []string
		if !l.IsNull() && !l.IsUnknown() {
			diags.Append(l.ElementsAs(ctx, &out, false)...)
		}
		return out
	}
	sels := func(l types.List) []kube.Selector {
		var maps []map[string]string
		if !l.IsNull() && !l.IsUnknown() {
			diags.Append(l.ElementsAs(ctx, &maps, false)...)
		}
		out := make([]kube.Selector, len(maps))
		for i, s := range maps {
			out[i] = kube.Selector(s)
		}
		return out
	}
	if sa := m.ServiceAllocation; sa != nil {
		p.ServiceAllocation = &kube.ServiceAllocation{Priority: sa.Priority.ValueInt64(), Namespaces: strs(sa.Namespaces),
			NamespaceSelectors: sels(sa.NamespaceSelectors), ServiceSelectors: sels(sa.ServiceSelectors)}
	}
	if l2 := m.L2; l2 != nil {
		p.L2 = &kube.L2{Interfaces: strs(l2.Interfaces), NodeSelectors: sels(l2.NodeSelectors)}
	}
	if b := m.BGP; b != nil {
		p.BGP = &kube.BGP{Peers: strs(b.Peers), Communities: strs(b.Communities), LocalPref: b.LocalPref.ValueInt64(),
			AggregationLength: b.AggregationLength.ValueInt64(), AggregationLengthV6: b.AggregationLengthV6.ValueInt64()}
	}
	return p, diags
}

func selList(v []kube.Selector) types.List {
	if len(v) == 0 {
		return types.ListNull(selectorListType.ElemType)
	}
	vals := make([]attr.Value, len(v))
	for i, s := range v {
		m := map[string]attr.Value{}
		for k, val := range s {
			m[k] = types.StringValue(val)
		}
		vals[i] = types.MapValueMust(types.StringType, m)
	}
	return types.ListValueMust(selectorListType.ElemType, vals)
}

func optInt(n int64) types.Int64 {
	if n == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(n)
}

// setFrom writes what the cluster holds into the model.
func (m *metalLBPoolModel) setFrom(p *kube.Pool) {
	m.ID = types.StringValue(p.Namespace + "/" + p.Name)
	m.Name, m.Namespace = types.StringValue(p.Name), types.StringValue(p.Namespace)
	m.Addresses = nil
	for _, a := range p.Addresses {
		m.Addresses = append(m.Addresses, types.StringValue(a))
	}
	m.AutoAssign, m.AvoidBuggyIPs = types.BoolValue(p.AutoAssign), types.BoolValue(p.AvoidBuggyIPs)
	m.ServiceAllocation = nil
	if sa := p.ServiceAllocation; sa != nil {
		m.ServiceAllocation = &serviceAllocationModel{Priority: optInt(sa.Priority), Namespaces: tfhelp.StrList(sa.Namespaces),
			NamespaceSelectors: selList(sa.NamespaceSelectors), ServiceSelectors: selList(sa.ServiceSelectors)}
	}
	m.L2, m.BGP = nil, nil
	if l2 := p.L2; l2 != nil {
		m.L2 = &l2Model{Interfaces: tfhelp.StrList(l2.Interfaces), NodeSelectors: selList(l2.NodeSelectors)}
	}
	if b := p.BGP; b != nil {
		m.BGP = &bgpModel{Peers: tfhelp.StrList(b.Peers), Communities: tfhelp.StrList(b.Communities), LocalPref: optInt(b.LocalPref),
			AggregationLength: optInt(b.AggregationLength), AggregationLengthV6: optInt(b.AggregationLengthV6)}
	}
}

// fetch reads the pool and its advertisements. A definite not-found of the
// pool is kube.ErrNotFound (MetalLB's types are served and the pool is not
// there); a missing CRD is another error (kube.ErrTypeNotServed), never
// not-found. Missing advertisements are not an error.
func fetch(ctx context.Context, c *kube.Client, ns, name string) (*kube.Pool, error) {
	pool, err := c.Get(ctx, kube.IPAddressPools, ns, name)
	if err != nil {
		return nil, err
	}
	var l2, bgp *unstructured.Unstructured
	if l2, err = c.Get(ctx, kube.L2Advertisements, ns, name); errors.Is(err, kube.ErrNotFound) {
		l2, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if bgp, err = c.Get(ctx, kube.BGPAdvertisements, ns, name); errors.Is(err, kube.ErrNotFound) {
		bgp, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	return kube.ParsePool(pool, l2, bgp), nil
}

// clusterIdentity asks the cluster c reaches for its identity and, when
// the state records one (want), checks that it is the same cluster. On
// any failure it adds an error that says nothing was changed, and returns
// ok false; action and name make the summary.
func clusterIdentity(ctx context.Context, c *kube.Client, want types.String, action, name string, diags *diag.Diagnostics) (uid string, ok bool) {
	summary := fmt.Sprintf("Unable to %s MetalLB pool %s", action, name)
	uid, err := c.ClusterID(ctx)
	if err != nil {
		detail := err.Error()
		switch {
		case kube.IsUnreachable(err):
			detail += fmt.Sprintf("\n\nThe Kubernetes API at %s could not be reached; the state was kept and nothing was changed.", c.Host())
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			detail += "\n\nThe provider identifies the cluster by the UID of its kube-system namespace, so that a kubeconfig switched to another cluster " +
				"cannot make it act there. Allow the kubeconfig's user to `get` namespace kube-system. Nothing was changed and the state was kept."
		default:
			detail += "\n\nNothing was changed and the state was kept."
		}
		diags.AddError(summary, detail)
		return "", false
	}
	if w := want.ValueString(); w != "" && w != uid {
		diags.AddError(summary, fmt.Sprintf("The pool belongs to the cluster whose kube-system namespace has UID %s, but the kubeconfig (or its current context) "+
			"now points at another cluster: the API server at %s, kube-system UID %s. Acting there could create or delete pools in the wrong cluster, "+
			"so nothing was changed and the state was kept.\n\n"+
			"Switch the kubeconfig back to the pool's cluster (e.g. `kubectl config use-context`), or pin it with the provider's `kubernetes { context = ... }` "+
			"or the pool's `kubeconfig`. If the pool's cluster was rebuilt and this is its replacement, remove the pool from state (`tofu state rm`) "+
			"and import or create it again.", w, c.Host(), uid))
		return "", false
	}
	return uid, true
}

// write applies the pool and its advertisement, waiting for MetalLB to be
// ready within ctx, after checking the addresses against the other pools.
// force takes over fields another field manager changed; see DESIGN.md
// ("MetalLB pools: server-side apply and conflicts") for when it is set.
func (r *metalLBPoolResource) write(ctx context.Context, c *kube.Client, p *kube.Pool, force bool) error {
	return kube.Retry(ctx, kube.IsNotReady, func(attempt int, err error) {
		logging.Info(ctx, "MetalLB is not ready yet, retrying", map[string]any{"pool": p.Name, "attempt": attempt, "reason": err.Error()})
	}, func() error {
		if err := checkOtherPools(ctx, c, p); err != nil {
			return err
		}
		poolObj := p.PoolObject()
		got, err := c.Apply(ctx, kube.IPAddressPools, poolObj, force)
		if err != nil {
			return err
		}
		if err := removeStray(ctx, c, kube.IPAddressPools, poolObj, got, force); err != nil {
			return err
		}
		gvr, adv := p.AdvertisementObject()
		if got, err = c.Apply(ctx, gvr, adv, force); err != nil {
			return err
		}
		if err := removeStray(ctx, c, gvr, adv, got, force); err != nil {
			return err
		}
		other := kube.BGPAdvertisements
		if gvr == kube.BGPAdvertisements {
			other = kube.L2Advertisements
		}
		return c.Delete(ctx, other, p.Namespace, p.Name)
	})
}

// removeStray removes, on an update (force), the optional fields the
// configuration leaves out that the object still has after server-side
// apply because another field manager set them: a pool or advertisement
// created by hand (or edited with kubectl) and then imported. The plan
// showed their removal, as it shows every field that changes. A create
// (not force) leaves them: they belong to an object the provider did not
// create.
func removeStray(ctx context.Context, c *kube.Client, gvr k8sschema.GroupVersionResource, want, got *unstructured.Unstructured, force bool) error {
	if !force {
		return nil
	}
	patch := kube.StrayFields(want, got)
	if patch == nil {
		return nil
	}
	logging.Info(ctx, "removing fields another field manager set that the configuration leaves out",
		map[string]any{"kind": want.GetKind(), "name": want.GetName(), "spec": patch["spec"]})
	_, err := c.MergePatch(ctx, gvr, want.GetNamespace(), want.GetName(), patch)
	return err
}

// overlapError names the other pool an address overlaps with.
type overlapError struct{ msg string }

func (e *overlapError) Error() string { return e.msg }

func checkOtherPools(ctx context.Context, c *kube.Client, p *kube.Pool) error {
	var mine []kube.Range
	for _, a := range p.Addresses {
		rg, err := kube.ParseAddress(a)
		if err != nil {
			return &overlapError{err.Error()}
		}
		mine = append(mine, rg)
	}
	others, err := c.List(ctx, kube.IPAddressPools, "")
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.GetNamespace() == p.Namespace && o.GetName() == p.Name {
			continue
		}
		var theirs []kube.Range
		for _, a := range kube.ParsePool(&o, nil, nil).Addresses {
			if rg, err := kube.ParseAddress(a); err == nil {
				theirs = append(theirs, rg)
			}
		}
		if ov := kube.FindOverlaps(mine, theirs); len(ov) > 0 {
			return &overlapError{fmt.Sprintf("%s overlaps %s of IPAddressPool %s/%s", ov[0].A, ov[0].B, o.GetNamespace(), o.GetName())}
		}
	}
	return nil
}

func writeDiag(diags *diag.Diagnostics, action, name string, c *kube.Client, err error) {
	var oe *overlapError
	detail := err.Error()
	switch {
	case errors.As(err, &oe):
		diags.AddAttributeError(path.Root("addresses"), fmt.Sprintf("Unable to %s MetalLB pool %s", action, name),
			oe.msg+".\n\nTwo pools must not hand out the same addresses; make the ranges disjoint.")
		return
	case apierrors.IsConflict(err) && action == "create":
		detail += "\n\nThe object already exists and another field manager owns these fields (server-side apply conflict); " +
			"the provider does not take over objects it did not create. Import it (`terraform import` with namespace/name) to manage it here, " +
			"or remove it from its current owner first."
	case apierrors.IsConflict(err):
		detail += "\n\nAnother field manager owns these fields (server-side apply conflict). Change them through their owner, or remove them there first."
	case kube.IsNotReady(err):
		// Before IsUnreachable: the deadline that ended the wait is a
		// timeout too, but the API answered.
		detail += "\n\nMetalLB's namespace, CRDs or webhook were still missing or not ready when the time ran out; check the MetalLB install " +
			"and the pool's `namespace`, or raise timeouts.create."
	case kube.IsUnreachable(err):
		detail += fmt.Sprintf("\n\nThe Kubernetes API at %s could not be reached; nothing was changed.", c.Host())
	}
	diags.AddError(fmt.Sprintf("Unable to %s MetalLB pool %s", action, name), detail)
}

func (r *metalLBPoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics, "create", types.StringNull(), func(m *metalLBPoolModel) (time.Duration, diag.Diagnostics) {
		return m.Timeouts.Create(ctx, metallbCreateTimeout)
	})
}

func (r *metalLBPoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var prior types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("cluster_id"), &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, req.Plan, &resp.State, &resp.Diagnostics, "update", prior, func(m *metalLBPoolModel) (time.Duration, diag.Diagnostics) {
		return m.Timeouts.Update(ctx, metallbUpdateTimeout)
	})
}

// apply writes the planned pool and stores what the cluster then reports.
// Updates force server-side apply: the object is in state, the plan showed
// the user every field that changes, and applying it is their approval to
// take those fields back from whoever edited them out of band. Creates do
// not: an object someone else owns is a conflict to report. An update
// (prior holds the cluster_id in state) writes only into that cluster.
func (r *metalLBPoolResource) apply(ctx context.Context, plan tfhelp.PlanGetter, state tfhelp.StateSetter, diags *diag.Diagnostics, action string, prior types.String,
	timeout func(*metalLBPoolModel) (time.Duration, diag.Diagnostics)) {
	var m metalLBPoolModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	d, td := timeout(&m)
	diags.Append(td...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c, cd := r.client(&m)
	diags.Append(cd...)
	p, pd := m.pool(ctx)
	diags.Append(pd...)
	if diags.HasError() {
		return
	}
	name := m.Namespace.ValueString() + "/" + m.Name.ValueString()
	uid, ok := clusterIdentity(ctx, c, prior, action, name, diags)
	if !ok {
		return
	}
	force := action == "update"
	if err := r.write(ctx, c, p, force); err != nil {
		writeDiag(diags, action, name, c, err)
		return
	}
	got, err := fetch(ctx, c, p.Namespace, p.Name)
	if err != nil {
		diags.AddError("Unable to read MetalLB pool "+name+" after writing it", fmt.Sprint(err, " (gone: ", errors.Is(err, kube.ErrNotFound), ")"))
		return
	}
	m.setFrom(got)
	m.ClusterID, m.APIServer = types.StringValue(uid), types.StringValue(c.Host())
	diags.Append(state.Set(ctx, &m)...)
}

func (r *metalLBPoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m metalLBPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c, diags := r.client(&m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	uid, ok := clusterIdentity(ctx, c, m.ClusterID, "read", m.ID.ValueString(), &resp.Diagnostics)
	if !ok {
		return
	}
	got, err := fetch(ctx, c, m.Namespace.ValueString(), m.Name.ValueString())
	gone := errors.Is(err, kube.ErrNotFound)
	if gone && m.ClusterID.ValueString() == "" {
		// State from a provider version that did not record the cluster:
		// "not found" may well be "another cluster".
		resp.Diagnostics.AddError("Unable to read MetalLB pool "+m.ID.ValueString(),
			fmt.Sprintf("The pool does not exist in the cluster at %s (kube-system UID %s), and the state, written by an older version of the provider, "+
				"does not record which cluster the pool was created in, so the provider cannot tell a deleted pool from a kubeconfig that points at another cluster. "+
				"The state was kept.\n\nIf this is the pool's cluster and the pool was deleted, remove it from state (`tofu state rm`) and apply to create it again; "+
				"otherwise point the kubeconfig at the pool's cluster.", c.Host(), uid))
		return
	}
	if gone {
		logging.Warn(ctx, "MetalLB pool no longer exists in its cluster, removing it from state",
			map[string]any{"pool": m.ID.ValueString(), "cluster_id": uid, "api_server": c.Host()})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		detail := err.Error()
		switch {
		case errors.Is(err, kube.ErrTypeNotServed):
			detail += "\n\nMetalLB's CRDs are not installed in this cluster, so the provider cannot tell whether the pool exists; the state was kept. " +
				"If MetalLB is being installed, wait for it and refresh again. If MetalLB was uninstalled, its pools were deleted with its CRDs: " +
				"install MetalLB again and apply to create the pool again, or remove the pool from state (`tofu state rm`) to stop managing it."
		case kube.IsUnreachable(err):
			detail += fmt.Sprintf("\n\nThe Kubernetes API at %s could not be reached; the state was kept.", c.Host())
		default:
			detail += "\n\nThe state was kept."
		}
		resp.Diagnostics.AddError("Unable to read MetalLB pool "+m.ID.ValueString(), detail)
		return
	}
	m.setFrom(got)
	m.ClusterID, m.APIServer = types.StringValue(uid), types.StringValue(c.Host())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *metalLBPoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m metalLBPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := m.Timeouts.Delete(ctx, metallbDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c, diags := r.client(&m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := m.Namespace.ValueString(), m.Name.ValueString()
	if _, ok := clusterIdentity(ctx, c, m.ClusterID, "delete", ns+"/"+name, &resp.Diagnostics); !ok {
		return
	}
	for _, del := range []func() error{
		func() error { return c.Delete(ctx, kube.L2Advertisements, ns, name) },
		func() error { return c.Delete(ctx, kube.BGPAdvertisements, ns, name) },
		func() error { return c.Delete(ctx, kube.IPAddressPools, ns, name) },
	} {
		if err := del(); err != nil {
			resp.Diagnostics.AddError("Unable to delete MetalLB pool "+ns+"/"+name, err.Error())
			return
		}
	}
}

func (r *metalLBPoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	ns, name, ok := strings.Cut(req.ID, "/")
	if !ok || ns == "" || name == "" {
		resp.Diagnostics.AddError("Unable to import MetalLB pool "+req.ID, "Expected namespace/name, e.g. metallb-system/internal.")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("namespace"), ns)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	// Record the cluster the pool is imported from, through the provider's
	// kubernetes block (an import has no resource configuration).
	c, diags := r.client(&metalLBPoolModel{})
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	uid, ok := clusterIdentity(ctx, c, types.StringNull(), "import", req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("cluster_id"), uid)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("api_server"), c.Host())...)
}

// defaultMetalLBNamespace is the namespace of a new pool whose
// configuration leaves it out.
const defaultMetalLBNamespace = "metallb-system"

// unsetNamespace plans a namespace the configuration leaves out: the one
// in state, so that a pool adopted from another namespace (MetalLB
// installed by Helm into "metallb") is not replaced, and
// defaultMetalLBNamespace for a new pool. A static default would plan
// the adopted pool's deletion and a new one in metallb-system.
type unsetNamespace struct{}

func (unsetNamespace) Description(context.Context) string {
	return "when unset, the namespace in state, else " + defaultMetalLBNamespace
}

func (m unsetNamespace) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (unsetNamespace) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if !req.ConfigValue.IsNull() {
		return
	}
	if !req.StateValue.IsNull() && !req.StateValue.IsUnknown() {
		resp.PlanValue = req.StateValue
		return
	}
	resp.PlanValue = types.StringValue(defaultMetalLBNamespace)
}

var dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
