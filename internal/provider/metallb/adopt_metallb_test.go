package metallb_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// kubeCreate POSTs a MetalLB object as `kubectl create` does (its own
// field manager, an Update operation), not through the provider.
func kubeCreate(t *testing.T, k *testbed.Kube, kind, name string, spec map[string]any) {
	t.Helper()
	kinds := map[string]string{"ipaddresspools": "IPAddressPool", "l2advertisements": "L2Advertisement", "bgpadvertisements": "BGPAdvertisement"}
	status, obj := kubeDo(t, k, http.MethodPost, strings.TrimSuffix(metallbPath(kind, ""), "/")+"?fieldManager=kubectl-create",
		map[string]any{"apiVersion": "metallb.io/v1beta1", "kind": kinds[kind],
			"metadata": map[string]any{"name": name, "namespace": acctest.MetalLBNamespace}, "spec": spec}, "application/json")
	if status != http.StatusCreated {
		t.Fatalf("creating %s %s by hand: HTTP %d: %v", kind, name, status, obj)
	}
}

// resourceVersion is the object's metadata.resourceVersion: it changes
// with every write, even one that changes nothing.
func resourceVersion(t *testing.T, k *testbed.Kube, kind, name string) string {
	t.Helper()
	v, _ := field(kubeObject(t, k, kind, name), "metadata", "resourceVersion").(string)
	return v
}

// A pool made by hand with non-default settings (autoAssign false,
// avoidBuggyIPs, a service allocation, an L2Advertisement on eth0) and a
// pool that relies on the server's defaults (a BGPAdvertisement without
// aggregation lengths, which the CRD defaults to 32 and 128) are adopted
// with import {} blocks into minimal and full configurations, with
// `import`, and with -generate-config-out. No plan replaces either pool;
// the full configuration and the minimal one of the defaulted pool plan
// no change and write nothing.
func TestAccAdopt_handMadeMetalLBPools(t *testing.T) {
	k := acctest.Kube(t)
	kubeCreate(t, k, "ipaddresspools", "lan", map[string]any{
		"addresses": anyList("192.168.30.10-192.168.30.40", "fd00:30::/120"), "autoAssign": false, "avoidBuggyIPs": true,
		"serviceAllocation": map[string]any{"priority": 20, "namespaces": anyList("media")}})
	kubeCreate(t, k, "l2advertisements", "lan", map[string]any{"ipAddressPools": anyList("lan"), "interfaces": anyList("eth0")})
	kubeCreate(t, k, "ipaddresspools", "edge", map[string]any{"addresses": anyList("10.50.0.0/28")})
	kubeCreate(t, k, "bgpadvertisements", "edge", map[string]any{"ipAddressPools": anyList("edge")})
	// A pool in the namespace a Helm install of MetalLB chose, not the
	// provider's default one.
	if err := k.EnsureNamespace(acctest.Ctx(t), "metallb"); err != nil {
		t.Fatal(err)
	}
	kubeDo(t, k, http.MethodPost, "/apis/metallb.io/v1beta1/namespaces/metallb/ipaddresspools?fieldManager=kubectl-create",
		map[string]any{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
			"metadata": map[string]any{"name": "dmz", "namespace": "metallb"}, "spec": map[string]any{"addresses": anyList("10.60.0.0/29")}}, "application/json")
	kubeDo(t, k, http.MethodPost, "/apis/metallb.io/v1beta1/namespaces/metallb/l2advertisements?fieldManager=kubectl-create",
		map[string]any{"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
			"metadata": map[string]any{"name": "dmz", "namespace": "metallb"}, "spec": map[string]any{"ipAddressPools": anyList("dmz")}}, "application/json")
	objects := [][2]string{{"ipaddresspools", "lan"}, {"l2advertisements", "lan"}, {"ipaddresspools", "edge"}, {"bgpadvertisements", "edge"}}
	versions := map[[2]string]string{}
	for _, o := range objects {
		versions[o] = resourceVersion(t, k, o[0], o[1])
	}
	// unwritten checks that the provider wrote none of the given objects.
	unwritten := func(which ...[2]string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			for _, o := range which {
				if got := resourceVersion(t, k, o[0], o[1]); got != versions[o] {
					return fmt.Errorf("%s %s was written (resourceVersion %s, was %s)", o[0], o[1], got, versions[o])
				}
			}
			return nil
		}
	}

	provider := acctest.TerraformBlock() + acctest.KubeProvider(k.KubeconfigPath)
	minLan := metallbPool("lan", `  name      = "lan"
  addresses = ["192.168.30.10-192.168.30.40", "fd00:30::/120"]
  l2 {}`)
	fullLan := metallbPool("lan", `  name            = "lan"
  namespace       = "metallb-system"
  addresses       = ["192.168.30.10-192.168.30.40", "fd00:30::/120"]
  auto_assign     = false
  avoid_buggy_ips = true
  service_allocation {
    priority   = 20
    namespaces = ["media"]
  }
  l2 {
    interfaces = ["eth0"]
  }`)
	minEdge := metallbPool("edge", `  name      = "edge"
  addresses = ["10.50.0.0/28"]
  bgp {}`)
	fullEdge := metallbPool("edge", `  name            = "edge"
  namespace       = "metallb-system"
  addresses       = ["10.50.0.0/28"]
  auto_assign     = true
  avoid_buggy_ips = false
  bgp {
    aggregation_length    = 32
    aggregation_length_v6 = 128
  }`)
	minimal, full := provider+minLan+minEdge, provider+fullLan+fullEdge
	lan, edge := "homelab_metallb_pool.lan", "homelab_metallb_pool.edge"
	importBlock := func(config, addr, id string, checks ...plancheck.PlanCheck) resource.TestStep {
		return resource.TestStep{Config: config, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id,
			ExpectNonEmptyPlan: len(checks) > 0, ImportPlanChecks: resource.ImportPlanChecks{PreApply: checks}}
	}
	importCommand := func(addr, id string) resource.TestStep {
		return resource.TestStep{Config: full, ResourceName: addr, ImportState: true,
			ImportStateId: id, ImportStatePersist: true}
	}
	generate := func(addr, id string) resource.TestStep {
		return resource.TestStep{Config: provider, ResourceName: addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: id, GenerateConfig: true}
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "lan", "edge"),
		Steps: []resource.TestStep{
			// A configuration that leaves the namespace out adopts the pool
			// where it is: no replacement into metallb-system.
			importBlock(provider+metallbPool("dmz", `  name      = "dmz"
  addresses = ["10.60.0.0/29"]
  l2 {}`), "homelab_metallb_pool.dmz", "metallb/dmz"),
			importCommand(lan, "metallb-system/lan"),
			importCommand(edge, "metallb-system/edge"),
			// The minimal configuration of the hand-tuned pool: an update
			// back to the defaults it leaves out, shown, not a replacement.
			importBlock(provider+minLan, lan, "metallb-system/lan",
				plancheck.ExpectResourceAction(lan, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(lan, tfjsonpath.New("auto_assign"), knownvalue.Bool(true)),
				plancheck.ExpectKnownValue(lan, tfjsonpath.New("cluster_id"), knownvalue.StringExact(kubeSystemUID(t, k)))),
			// Full configurations, and the minimal one of the pool that
			// relies on the server's defaults: no change.
			importBlock(full, lan, "metallb-system/lan"),
			importBlock(full, edge, "metallb-system/edge"),
			importBlock(minimal, edge, "metallb-system/edge"),
			generate(lan, "metallb-system/lan"),
			generate(edge, "metallb-system/edge"),
			{
				Config:           full,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            unwritten(objects...),
			},
			{
				// The namespace spelled with capitals: Kubernetes names are
				// lowercase DNS labels, so no such namespace can exist. It is
				// refused at plan time; as a replacement it would delete the
				// adopted pool and then fail to create the new one.
				Config:      strings.Replace(full, `namespace       = "metallb-system"`, `namespace       = "MetalLB-System"`, 1),
				ExpectError: acctest.ErrorRe("namespace", "must be a DNS label"),
				Check:       unwritten(objects...),
			},
			{
				// The minimal configuration changes the hand-tuned pool in
				// place (taking the fields over from kubectl-create) and
				// leaves the other alone.
				Config: minimal,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(lan, plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(edge, plancheck.ResourceActionNoop)}},
				Check: resource.ComposeAggregateTestCheckFunc(
					expectObject(t, k, "ipaddresspools", "lan", map[string]any{"autoAssign": true, "avoidBuggyIPs": false, "serviceAllocation": nil}),
					expectObject(t, k, "l2advertisements", "lan", map[string]any{"interfaces": nil}),
					unwritten(objects[2:]...)),
			},
			{
				Config:           minimal,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}
