package kube

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"192.168.10.0/24":             {"192.168.10.0", "192.168.10.255"},
		"192.168.10.10-192.168.10.20": {"192.168.10.10", "192.168.10.20"},
		"fd00:10::/120":               {"fd00:10::", "fd00:10::ff"},
		"10.0.0.7/32":                 {"10.0.0.7", "10.0.0.7"},
		"2001:db8::1-2001:db8::5":     {"2001:db8::1", "2001:db8::5"},
	} {
		r, err := ParseAddress(in)
		if err != nil || r.First.String() != want[0] || r.Last.String() != want[1] {
			t.Errorf("ParseAddress(%q) = %v..%v, %v; want %v", in, r.First, r.Last, err, want)
		}
	}
	for in, msg := range map[string]string{
		"192.168.10.1/24":            "host bits",
		"192.168.10.20-192.168.10.1": "ends before",
		"10.0.0.1-fd00::1":           "mixes",
		"lan":                        "neither a CIDR",
		"300.1.1.1/32":               "neither a CIDR",
	} {
		if _, err := ParseAddress(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseAddress(%q): want an error mentioning %q, got %v", in, msg, err)
		}
	}
}

func TestFindOverlaps(t *testing.T) {
	parse := func(ss ...string) []Range {
		var out []Range
		for _, s := range ss {
			r, err := ParseAddress(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	got := FindOverlaps(parse("192.168.10.0/24", "192.168.10.200-192.168.11.5", "fd00::/64", "192.168.12.0/24"), nil)
	if !reflect.DeepEqual(got, []Overlap{{"192.168.10.0/24", "192.168.10.200-192.168.11.5"}}) {
		t.Fatalf("within one list: %v", got)
	}
	got = FindOverlaps(parse("192.168.20.0/24", "fd00::1-fd00::ff"), parse("192.168.20.128/25", "fd00::/120", "10.0.0.0/8"))
	if len(got) != 2 {
		t.Fatalf("between lists: %v", got)
	}
	if got := FindOverlaps(parse("10.0.0.0/24"), parse("10.0.1.0/24", "::/0")); len(got) != 0 {
		t.Fatalf("disjoint and other-family ranges overlap: %v", got)
	}
}

func TestPoolObjectsRoundTrip(t *testing.T) {
	p := &Pool{Namespace: "metallb-system", Name: "internal", Addresses: []string{"192.168.10.0/24", "fd00:10::/120"},
		AutoAssign: false, AvoidBuggyIPs: true,
		ServiceAllocation: &ServiceAllocation{Priority: 50, Namespaces: []string{"media"}, ServiceSelectors: []Selector{{"exposure": "lan"}}},
		L2:                &L2{Interfaces: []string{"eth0"}, NodeSelectors: []Selector{{"kubernetes.io/hostname": "nas"}}}}
	_, adv := p.AdvertisementObject()
	got := ParsePool(p.PoolObject(), adv, nil)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	b := &Pool{Namespace: "metallb-system", Name: "edge", Addresses: []string{"203.0.113.0/28"}, AutoAssign: true,
		BGP: &BGP{Peers: []string{"router"}, Communities: []string{"64512:100"}, LocalPref: 100, AggregationLength: 32, AggregationLengthV6: 128}}
	gvr, adv := b.AdvertisementObject()
	if gvr != BGPAdvertisements || adv.GetKind() != "BGPAdvertisement" {
		t.Fatalf("kind %s", adv.GetKind())
	}
	if got := ParsePool(b.PoolObject(), nil, adv); !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
}

// TestStrayFields: what a hand-made (then imported) pool and advertisement
// hold beyond the configuration, as the API server returns them after the
// provider's server-side apply, is removed by the merge patch; fields the
// configuration sets, and fields the provider always applies, are not.
func TestStrayFields(t *testing.T) {
	got := func(kind string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "metallb.io/v1beta1", "kind": kind,
			"metadata": map[string]any{"name": "lan", "namespace": "metallb-system", "resourceVersion": "42"}, "spec": spec}}
	}
	minimal := &Pool{Namespace: "metallb-system", Name: "lan", Addresses: []string{"10.0.0.0/28"}, AutoAssign: true, L2: &L2{}}
	poolGot := got("IPAddressPool", map[string]any{"addresses": []any{"10.0.0.0/28"}, "autoAssign": true, "avoidBuggyIPs": false,
		"serviceAllocation": map[string]any{"priority": int64(20), "namespaces": []any{"media"}}})
	want := map[string]any{"metadata": map[string]any{"resourceVersion": "42"}, "spec": map[string]any{"serviceAllocation": nil}}
	if p := StrayFields(minimal.PoolObject(), poolGot); !reflect.DeepEqual(p, want) {
		t.Errorf("pool without service_allocation: patch %v, want %v", p, want)
	}
	// A service allocation configured with a priority only: the
	// namespaces someone else set go, the priority stays.
	withPriority := *minimal
	withPriority.ServiceAllocation = &ServiceAllocation{Priority: 20}
	want = map[string]any{"metadata": map[string]any{"resourceVersion": "42"}, "spec": map[string]any{"serviceAllocation": map[string]any{"namespaces": nil}}}
	if p := StrayFields(withPriority.PoolObject(), poolGot); !reflect.DeepEqual(p, want) {
		t.Errorf("pool with a priority only: patch %v, want %v", p, want)
	}
	_, adv := minimal.AdvertisementObject()
	want = map[string]any{"metadata": map[string]any{"resourceVersion": "42"}, "spec": map[string]any{"interfaces": nil}}
	if p := StrayFields(adv, got("L2Advertisement", map[string]any{"ipAddressPools": []any{"lan"}, "interfaces": []any{"eth0"}})); !reflect.DeepEqual(p, want) {
		t.Errorf("L2Advertisement without interfaces: patch %v, want %v", p, want)
	}
	// The CRD's defaults and the fields the configuration sets are no strays.
	bgp := &Pool{Namespace: "metallb-system", Name: "lan", BGP: &BGP{Peers: []string{"router"}}}
	_, adv = bgp.AdvertisementObject()
	if p := StrayFields(adv, got("BGPAdvertisement", map[string]any{"ipAddressPools": []any{"lan"}, "peers": []any{"router"},
		"aggregationLength": int64(32), "aggregationLengthV6": int64(128)})); p != nil {
		t.Errorf("BGPAdvertisement as configured: patch %v, want none", p)
	}
	if p := StrayFields(withPriority.PoolObject(), got("IPAddressPool", map[string]any{"addresses": []any{"10.0.0.0/28"},
		"serviceAllocation": map[string]any{"priority": int64(20)}})); p != nil {
		t.Errorf("pool as configured: patch %v, want none", p)
	}
}
