package kube

import (
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// MetalLB object types (metallb.io/v1beta1).
var (
	IPAddressPools    = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"}
	L2Advertisements  = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "l2advertisements"}
	BGPAdvertisements = schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "bgpadvertisements"}
)

// Selector is a label selector's matchLabels.
type Selector map[string]string

// Pool is an IPAddressPool and the one advertisement that goes with it.
type Pool struct {
	Namespace, Name   string
	Addresses         []string
	AutoAssign        bool
	AvoidBuggyIPs     bool
	ServiceAllocation *ServiceAllocation
	L2                *L2
	BGP               *BGP
}

// ServiceAllocation restricts which services get addresses from the pool.
type ServiceAllocation struct {
	Priority           int64
	Namespaces         []string
	NamespaceSelectors []Selector
	ServiceSelectors   []Selector
}

// L2 is an L2Advertisement.
type L2 struct {
	Interfaces    []string
	NodeSelectors []Selector
}

// BGP is a BGPAdvertisement.
type BGP struct {
	Peers               []string
	Communities         []string
	LocalPref           int64
	AggregationLength   int64
	AggregationLengthV6 int64
}

func selectors(s []Selector) []any {
	out := make([]any, len(s))
	for i, sel := range s {
		labels := map[string]any{}
		for k, v := range sel {
			labels[k] = v
		}
		out[i] = map[string]any{"matchLabels": labels}
	}
	return out
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func object(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/v1beta1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
	return u
}

// PoolObject renders the IPAddressPool. Only the fields the provider owns
// are present, as server-side apply wants.
func (p *Pool) PoolObject() *unstructured.Unstructured {
	spec := map[string]any{"addresses": strs(p.Addresses), "autoAssign": p.AutoAssign, "avoidBuggyIPs": p.AvoidBuggyIPs}
	if sa := p.ServiceAllocation; sa != nil {
		m := map[string]any{}
		if sa.Priority != 0 {
			m["priority"] = sa.Priority
		}
		if len(sa.Namespaces) > 0 {
			m["namespaces"] = strs(sa.Namespaces)
		}
		if len(sa.NamespaceSelectors) > 0 {
			m["namespaceSelectors"] = selectors(sa.NamespaceSelectors)
		}
		if len(sa.ServiceSelectors) > 0 {
			m["serviceSelectors"] = selectors(sa.ServiceSelectors)
		}
		spec["serviceAllocation"] = m
	}
	return object("IPAddressPool", p.Namespace, p.Name, spec)
}

// AdvertisementObject renders the pool's advertisement, named after it.
func (p *Pool) AdvertisementObject() (schema.GroupVersionResource, *unstructured.Unstructured) {
	spec := map[string]any{"ipAddressPools": []any{p.Name}}
	if p.BGP != nil {
		b := p.BGP
		if len(b.Peers) > 0 {
			spec["peers"] = strs(b.Peers)
		}
		if len(b.Communities) > 0 {
			spec["communities"] = strs(b.Communities)
		}
		if b.LocalPref != 0 {
			spec["localPref"] = b.LocalPref
		}
		if b.AggregationLength != 0 {
			spec["aggregationLength"] = b.AggregationLength
		}
		if b.AggregationLengthV6 != 0 {
			spec["aggregationLengthV6"] = b.AggregationLengthV6
		}
		return BGPAdvertisements, object("BGPAdvertisement", p.Namespace, p.Name, spec)
	}
	l2 := p.L2
	if l2 == nil {
		l2 = &L2{}
	}
	if len(l2.Interfaces) > 0 {
		spec["interfaces"] = strs(l2.Interfaces)
	}
	if len(l2.NodeSelectors) > 0 {
		spec["nodeSelectors"] = selectors(l2.NodeSelectors)
	}
	return L2Advertisements, object("L2Advertisement", p.Namespace, p.Name, spec)
}

// optionalSpecFields are the fields of each kind's spec that the provider
// manages and leaves out of the object it applies when they are not
// configured, parents before their children. Fields the provider always
// applies (addresses, autoAssign, avoidBuggyIPs, ipAddressPools, the
// aggregation lengths, which the CRD also defaults) are not listed.
var optionalSpecFields = map[string][][]string{
	"IPAddressPool": {{"serviceAllocation"}, {"serviceAllocation", "priority"}, {"serviceAllocation", "namespaces"},
		{"serviceAllocation", "namespaceSelectors"}, {"serviceAllocation", "serviceSelectors"}},
	"L2Advertisement":  {{"interfaces"}, {"nodeSelectors"}},
	"BGPAdvertisement": {{"peers"}, {"communities"}, {"localPref"}},
}

// StrayFields returns a JSON merge patch that removes from got, the object
// as the server holds it after applying want, the optional fields the
// provider manages that want leaves out, or nil when got has none. Server-
// side apply removes such a field only when the provider's field manager
// was its sole owner: a field another manager set (`kubectl create` or
// `kubectl edit` of an object later imported) stays, and the object would
// keep what the configuration removed. The patch names got's
// resourceVersion, so that it fails with a conflict rather than remove a
// field someone set in between.
func StrayFields(want, got *unstructured.Unstructured) map[string]any {
	spec := map[string]any{}
	removed := map[string]bool{}
	for _, f := range optionalSpecFields[want.GetKind()] {
		if removed[f[0]] {
			continue
		}
		path := append([]string{"spec"}, f...)
		if _, found, _ := unstructured.NestedFieldNoCopy(want.Object, path...); found {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(got.Object, path...); !found {
			continue
		}
		if len(f) == 1 {
			spec[f[0]] = nil
			removed[f[0]] = true
			continue
		}
		parent, _ := spec[f[0]].(map[string]any)
		if parent == nil {
			parent = map[string]any{}
			spec[f[0]] = parent
		}
		parent[f[1]] = nil
	}
	if len(spec) == 0 {
		return nil
	}
	return map[string]any{"metadata": map[string]any{"resourceVersion": got.GetResourceVersion()}, "spec": spec}
}

func getStrings(obj map[string]any, fields ...string) []string {
	v, _, _ := unstructured.NestedStringSlice(obj, fields...)
	return v
}

func getInt(obj map[string]any, fields ...string) int64 {
	v, _, _ := unstructured.NestedInt64(obj, fields...)
	return v
}

func getSelectors(obj map[string]any, fields ...string) []Selector {
	list, _, _ := unstructured.NestedSlice(obj, fields...)
	var out []Selector
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		labels, _, _ := unstructured.NestedStringMap(m, "matchLabels")
		out = append(out, Selector(labels))
	}
	return out
}

// ParsePool reads an IPAddressPool and, when present, its advertisements.
func ParsePool(pool, l2, bgp *unstructured.Unstructured) *Pool {
	p := &Pool{Namespace: pool.GetNamespace(), Name: pool.GetName()}
	o := pool.Object
	p.Addresses = getStrings(o, "spec", "addresses")
	p.AutoAssign = true
	if v, found, _ := unstructured.NestedBool(o, "spec", "autoAssign"); found {
		p.AutoAssign = v
	}
	p.AvoidBuggyIPs, _, _ = unstructured.NestedBool(o, "spec", "avoidBuggyIPs")
	if _, found, _ := unstructured.NestedMap(o, "spec", "serviceAllocation"); found {
		p.ServiceAllocation = &ServiceAllocation{
			Priority:           getInt(o, "spec", "serviceAllocation", "priority"),
			Namespaces:         getStrings(o, "spec", "serviceAllocation", "namespaces"),
			NamespaceSelectors: getSelectors(o, "spec", "serviceAllocation", "namespaceSelectors"),
			ServiceSelectors:   getSelectors(o, "spec", "serviceAllocation", "serviceSelectors"),
		}
	}
	if l2 != nil {
		p.L2 = &L2{Interfaces: getStrings(l2.Object, "spec", "interfaces"), NodeSelectors: getSelectors(l2.Object, "spec", "nodeSelectors")}
	}
	if bgp != nil {
		b := bgp.Object
		p.BGP = &BGP{Peers: getStrings(b, "spec", "peers"), Communities: getStrings(b, "spec", "communities"),
			LocalPref: getInt(b, "spec", "localPref"), AggregationLength: getInt(b, "spec", "aggregationLength"),
			AggregationLengthV6: getInt(b, "spec", "aggregationLengthV6")}
	}
	return p
}

// Range is an inclusive address range of one family.
type Range struct {
	Text        string
	First, Last netip.Addr
}

// ParseAddress reads one MetalLB address entry: a CIDR ("192.168.10.0/24",
// "fd00:10::/120") or a range ("192.168.10.10-192.168.10.20").
func ParseAddress(s string) (Range, error) {
	t := strings.TrimSpace(s)
	if a, b, ok := strings.Cut(t, "-"); ok {
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		switch {
		case err1 != nil || err2 != nil:
			return Range{}, fmt.Errorf("%q is not a range of two IP addresses such as 192.168.10.10-192.168.10.20", s)
		case first.Is4() != last.Is4():
			return Range{}, fmt.Errorf("%q mixes IPv4 and IPv6", s)
		case last.Less(first):
			return Range{}, fmt.Errorf("%q ends before it starts", s)
		}
		return Range{Text: s, First: first, Last: last}, nil
	}
	prefix, err := netip.ParsePrefix(t)
	if err != nil {
		return Range{}, fmt.Errorf("%q is neither a CIDR (192.168.10.0/24, fd00::/120) nor a range (192.168.10.10-192.168.10.20)", s)
	}
	if prefix.Masked() != prefix {
		return Range{}, fmt.Errorf("%q has host bits set; the network is %s", s, prefix.Masked())
	}
	return Range{Text: s, First: prefix.Addr(), Last: lastAddr(prefix)}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	bits := p.Addr().BitLen()
	b := p.Addr().AsSlice()
	n := new(big.Int).SetBytes(b)
	host := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits())), big.NewInt(1))
	n.Or(n, host)
	out := n.FillBytes(make([]byte, len(b)))
	a, _ := netip.AddrFromSlice(out)
	return a
}

// Overlaps reports whether two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	if r.First.Is4() != o.First.Is4() {
		return false
	}
	return !r.Last.Less(o.First) && !o.Last.Less(r.First)
}

// Overlap describes two overlapping address entries.
type Overlap struct{ A, B string }

// FindOverlaps returns every pair of overlapping entries between a and b
// (within one list when b is nil).
func FindOverlaps(a, b []Range) []Overlap {
	var out []Overlap
	for i := range a {
		if b == nil {
			for j := i + 1; j < len(a); j++ {
				if a[i].Overlaps(a[j]) {
					out = append(out, Overlap{a[i].Text, a[j].Text})
				}
			}
			continue
		}
		for j := range b {
			if a[i].Overlaps(b[j]) {
				out = append(out, Overlap{a[i].Text, b[j].Text})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].A+out[i].B < out[j].A+out[j].B })
	return out
}
