package metallb_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// metallbPath is the API path of a MetalLB object (kind is the plural
// resource name, e.g. "ipaddresspools") in metallb-system.
func metallbPath(kind, name string) string {
	return "/apis/metallb.io/v1beta1/namespaces/" + acctest.MetalLBNamespace + "/" + kind + "/" + name
}

// kubeDo sends one request as the testbed admin and fails the test on a
// transport error.
func kubeDo(t *testing.T, k *testbed.Kube, method, path string, body any, contentType string) (int, map[string]any) {
	t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, resp, err := k.Do(ctx, method, path, data, contentType)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var obj map[string]any
	_ = json.Unmarshal(resp, &obj)
	return status, obj
}

// kubeObject returns a MetalLB object, or nil when the API server says 404.
func kubeObject(t *testing.T, k *testbed.Kube, kind, name string) map[string]any {
	t.Helper()
	status, obj := kubeDo(t, k, http.MethodGet, metallbPath(kind, name), nil, "")
	switch status {
	case http.StatusOK:
		return obj
	case http.StatusNotFound:
		return nil
	}
	t.Fatalf("GET %s: HTTP %d: %v", metallbPath(kind, name), status, obj)
	return nil
}

func field(obj map[string]any, keys ...string) any {
	var v any = obj
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// expectObject checks, on the API server, that the object exists and that
// each spec field has the wanted value (JSON-decoded).
func expectObject(t *testing.T, k *testbed.Kube, kind, name string, spec map[string]any) resource.TestCheckFunc {
	return func(*terraform.State) error {
		obj := kubeObject(t, k, kind, name)
		if obj == nil {
			return fmt.Errorf("%s %s does not exist on the API server", kind, name)
		}
		for key, want := range spec {
			if got := field(obj, "spec", key); !reflect.DeepEqual(got, want) {
				return fmt.Errorf("%s %s: spec.%s = %#v, want %#v", kind, name, key, got, want)
			}
		}
		return nil
	}
}

func expectNoObject(t *testing.T, k *testbed.Kube, kind, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if kubeObject(t, k, kind, name) != nil {
			return fmt.Errorf("%s %s still exists on the API server", kind, name)
		}
		return nil
	}
}

// expectAppliedBy checks that the provider wrote the object with
// server-side apply under its own field manager.
func expectAppliedBy(t *testing.T, k *testbed.Kube, kind, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		obj := kubeObject(t, k, kind, name)
		entries, _ := field(obj, "metadata", "managedFields").([]any)
		for _, e := range entries {
			m, _ := e.(map[string]any)
			if m["manager"] == "terraform-provider-homelab" && m["operation"] == "Apply" {
				return nil
			}
		}
		return fmt.Errorf("%s %s has no Apply entry of manager terraform-provider-homelab: %v", kind, name, entries)
	}
}

// poolsGone is the CheckDestroy of MetalLB pools: it asks the API server.
func poolsGone(t *testing.T, k *testbed.Kube, names ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for _, n := range names {
			for _, kind := range []string{"ipaddresspools", "l2advertisements", "bgpadvertisements"} {
				if err := expectNoObject(t, k, kind, n)(s); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func anyList(v ...string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

func metallbPool(label, body string) string {
	return fmt.Sprintf(`
resource "homelab_metallb_pool" %q {
%s
}
`, label, body)
}

func TestAccMetalLBPool_l2AddressesBGPDriftImport(t *testing.T) {
	k := acctest.Kube(t)
	provider := acctest.KubeProvider(k.KubeconfigPath)
	addr := "homelab_metallb_pool.internal"
	l2 := func(addresses string) string {
		return provider + metallbPool("internal", fmt.Sprintf(`  name      = "internal"
  addresses = [%s]
  service_allocation {
    priority   = 10
    namespaces = ["media"]
  }
  l2 {
    interfaces     = ["eth0"]
    node_selectors = [{ "kubernetes.io/arch" = "amd64" }]
  }`, addresses))
	}
	two := `"192.168.10.10-192.168.10.20", "fd00:10::/120"`
	three := `"192.168.10.10-192.168.10.30", "192.168.11.0/28", "fd00:10::/120"`
	bgp := provider + metallbPool("internal", `  name        = "internal"
  addresses   = ["192.168.10.10-192.168.10.30", "192.168.11.0/28", "fd00:10::/120"]
  auto_assign = false
  bgp {
    peers              = ["router"]
    communities        = ["64512:100"]
    local_pref         = 100
    aggregation_length = 32
  }`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "internal"),
		Steps: []resource.TestStep{{
			Config: l2(two),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("metallb-system/internal")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("namespace"), knownvalue.StringExact("metallb-system")),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("addresses"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.StringExact("192.168.10.10-192.168.10.20"), knownvalue.StringExact("fd00:10::/120")})),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("auto_assign"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("bgp"), knownvalue.Null()),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectObject(t, k, "ipaddresspools", "internal", map[string]any{
					"addresses": anyList("192.168.10.10-192.168.10.20", "fd00:10::/120"), "autoAssign": true, "avoidBuggyIPs": false,
					"serviceAllocation": map[string]any{"priority": float64(10), "namespaces": anyList("media")},
				}),
				expectObject(t, k, "l2advertisements", "internal", map[string]any{
					"ipAddressPools": anyList("internal"), "interfaces": anyList("eth0"),
					"nodeSelectors": []any{map[string]any{"matchLabels": map[string]any{"kubernetes.io/arch": "amd64"}}},
				}),
				expectAppliedBy(t, k, "ipaddresspools", "internal"),
				expectAppliedBy(t, k, "l2advertisements", "internal"),
			),
		}, {
			// Addresses change in place.
			Config: l2(three),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: expectObject(t, k, "ipaddresspools", "internal", map[string]any{
				"addresses": anyList("192.168.10.10-192.168.10.30", "192.168.11.0/28", "fd00:10::/120")}),
		}, {
			// Someone edits spec.addresses out of band (an update, as
			// `kubectl edit` does, which takes the field's ownership): the
			// plan shows it and apply takes it back.
			PreConfig: func() {
				status, obj := kubeDo(t, k, http.MethodPatch, metallbPath("ipaddresspools", "internal")+"?fieldManager=kubectl-edit",
					map[string]any{"spec": map[string]any{"addresses": anyList("192.168.10.10-192.168.10.99")}}, "application/merge-patch+json")
				if status != http.StatusOK {
					t.Fatalf("out-of-band edit: HTTP %d: %v", status, obj)
				}
			},
			Config: l2(three),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("addresses").AtSliceIndex(0), knownvalue.StringExact("192.168.10.10-192.168.10.30")),
			}},
			Check: expectObject(t, k, "ipaddresspools", "internal", map[string]any{
				"addresses": anyList("192.168.10.10-192.168.10.30", "192.168.11.0/28", "fd00:10::/120")}),
		}, {
			// The advertisement is deleted out of band: it is recreated.
			PreConfig: func() {
				if status, obj := kubeDo(t, k, http.MethodDelete, metallbPath("l2advertisements", "internal"), nil, ""); status != http.StatusOK {
					t.Fatalf("out-of-band delete: HTTP %d: %v", status, obj)
				}
			},
			Config: l2(three),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			Check: expectObject(t, k, "l2advertisements", "internal", map[string]any{"interfaces": anyList("eth0")}),
		}, {
			// L2 to BGP: the L2Advertisement is replaced by a BGPAdvertisement.
			Config: bgp,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("l2"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("service_allocation"), knownvalue.Null()),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("bgp").AtMapKey("local_pref"), knownvalue.Int64Exact(100)),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectNoObject(t, k, "l2advertisements", "internal"),
				expectObject(t, k, "bgpadvertisements", "internal", map[string]any{
					"ipAddressPools": anyList("internal"), "peers": anyList("router"), "communities": anyList("64512:100"),
					"localPref": float64(100), "aggregationLength": float64(32)}),
				expectObject(t, k, "ipaddresspools", "internal", map[string]any{"autoAssign": false, "serviceAllocation": nil}),
			),
		}, {
			ResourceName:      addr,
			ImportState:       true,
			ImportStateId:     "metallb-system/internal",
			ImportStateVerify: true,
			// timeouts is configuration only; the API server has nothing to say about it.
			ImportStateVerifyIgnore: []string{"timeouts"},
		}, {
			Config: bgp,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
		}},
	})
}

func TestAccMetalLBPool_overlapsAndBadAddressesRejected(t *testing.T) {
	k := acctest.Kube(t)
	provider := acctest.KubeProvider(k.KubeconfigPath)
	pool := func(label, addresses string, extra string) string {
		return metallbPool(label, fmt.Sprintf(`  name      = %q
  addresses = [%s]
  l2 {}
  %s`, label, addresses, extra))
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "internal", "internet"),
		Steps: []resource.TestStep{{
			// Caught at plan time, naming the bad entry.
			Config:      provider + pool("internal", `"192.168.10.0/24", "192.168.10.300-192.168.10.310"`, ""),
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Invalid address", `"192.168.10.300-192.168.10.310" is not a range of two IP addresses`),
		}, {
			Config:      provider + pool("internal", `"192.168.10.0/24", "192.168.10.200-192.168.11.5"`, ""),
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Overlapping addresses", "192.168.10.0/24 and 192.168.10.200-192.168.11.5 overlap"),
		}, {
			Config: provider + metallbPool("both", `  name = "both"
  addresses = ["10.0.0.0/29"]
  l2 {}
  bgp {}`),
			PlanOnly:    true,
			ExpectError: acctest.ErrorRe("Exactly one of the `l2` and `bgp` blocks is required"),
		}, {
			// Two pools with overlapping ranges: the second is refused at
			// apply, naming the first.
			Config: provider + pool("internal", `"192.168.10.0/24"`, "") +
				pool("internet", `"fd00:20::/120", "192.168.10.250-192.168.11.10"`, "depends_on = [homelab_metallb_pool.internal]"),
			ExpectError: acctest.ErrorRe("Unable to create MetalLB pool metallb-system/internet",
				"192.168.10.250-192.168.11.10 overlaps 192.168.10.0/24 of IPAddressPool metallb-system/internal"),
		}, {
			PreConfig: func() {
				if kubeObject(t, k, "ipaddresspools", "internet") != nil {
					t.Fatal("the refused pool was written to the API server")
				}
			},
			// The users' layout: an internal pool and an internet-facing one
			// with an IPv6 range, disjoint.
			Config: provider + pool("internal", `"192.168.10.0/24"`, "") +
				pool("internet", `"192.168.11.0/28", "2001:db8:42::/112"`, "auto_assign = false"),
			Check: resource.ComposeAggregateTestCheckFunc(
				expectObject(t, k, "ipaddresspools", "internal", map[string]any{"addresses": anyList("192.168.10.0/24")}),
				expectObject(t, k, "ipaddresspools", "internet", map[string]any{
					"addresses": anyList("192.168.11.0/28", "2001:db8:42::/112"), "autoAssign": false}),
			),
		}},
	})
}

// TestAccMetalLBPool_waitsForCRDsAndWebhook creates a pool while MetalLB is
// still being installed: its CRDs appear only after the resource started
// waiting, and then its validating webhook refuses connections for a while.
// The pool's own kubeconfig is used; the provider has no kubernetes block.
func TestAccMetalLBPool_waitsForCRDsAndWebhook(t *testing.T) {
	k := acctest.Kube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := k.DeleteMetalLBCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	hook := newAdmissionWebhook(t, k)
	crdsAt, hookAt := 6*time.Second, 12*time.Second
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, k.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "homelab_metallb_pool.late"
	var started time.Time
	installErr, served := make(chan error, 1), make(chan error, 1)
	// The installer goroutine finishes before the webhook is torn down.
	t.Cleanup(func() {
		if !started.IsZero() {
			<-served
		}
	})
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "late"),
		Steps: []resource.TestStep{{
			PreConfig: func() {
				started = time.Now()
				go func() {
					time.Sleep(crdsAt)
					installErr <- k.InstallMetalLBCRDs(context.Background())
					time.Sleep(hookAt - crdsAt)
					served <- hook.serve()
				}()
			},
			Config: metallbPool("late", fmt.Sprintf(`  name       = "late"
  addresses  = ["10.20.0.0/28"]
  kubeconfig = file(%q)
  l2 {}
  timeouts {
    create = "2m"
  }`, kubeconfig)),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectSensitiveValue(addr, tfjsonpath.New("kubeconfig")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				func(*terraform.State) error {
					if err := <-installErr; err != nil {
						return fmt.Errorf("installing the CRDs late: %v", err)
					}
					if h := hook.srv.Load(); h == nil {
						return fmt.Errorf("apply finished before the webhook started answering")
					}
					if took := time.Since(started); took < hookAt {
						return fmt.Errorf("apply finished after %s, before the webhook answered at %s", took, hookAt)
					}
					if hook.calls.Load() == 0 {
						return fmt.Errorf("the webhook never admitted the objects")
					}
					return nil
				},
				expectObject(t, k, "ipaddresspools", "late", map[string]any{"addresses": anyList("10.20.0.0/28")}),
				expectObject(t, k, "l2advertisements", "late", map[string]any{"ipAddressPools": anyList("late")}),
			),
		}, {
			ResourceName:            addr,
			ImportState:             true,
			ImportStateId:           "metallb-system/late",
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts", "kubeconfig"},
			// Import reads through the provider, which here has no
			// kubernetes block: give it the same cluster through the
			// environment, as a user's shell would.
			PreConfig: func() { t.Setenv("KUBECONFIG", kubeconfig) },
		}},
	})
}

// TestAccMetalLBPool_unreachableKeepsStateGoneIsRecreated: an API server
// that cannot be reached is an error that keeps the pool in state; a pool
// deleted out of band is planned for creation again.
func TestAccMetalLBPool_unreachableKeepsStateGoneIsRecreated(t *testing.T) {
	k := acctest.Kube(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	write := func(cfg []byte) {
		if err := os.WriteFile(kubeconfig, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(k.Kubeconfig)
	// A port nothing listens on: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + l.Addr().String()
	l.Close()
	config := acctest.KubeProvider(kubeconfig) + metallbPool("dmz", `  name      = "dmz"
  addresses = ["10.30.0.0/29"]
  l2 {}`)
	addr := "homelab_metallb_pool.dmz"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "dmz"),
		Steps: []resource.TestStep{{
			Config: config,
			Check:  expectObject(t, k, "ipaddresspools", "dmz", map[string]any{"addresses": anyList("10.30.0.0/29")}),
		}, {
			PreConfig:   func() { write([]byte(strings.ReplaceAll(string(k.Kubeconfig), k.URL, dead))) },
			Config:      config,
			ExpectError: acctest.ErrorRe("Unable to read MetalLB pool metallb-system/dmz", "could not be reached; the state was kept"),
		}, {
			PreConfig: func() { write(k.Kubeconfig) },
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
		}, {
			PreConfig: func() {
				for _, kind := range []string{"l2advertisements", "ipaddresspools"} {
					if status, obj := kubeDo(t, k, http.MethodDelete, metallbPath(kind, "dmz"), nil, ""); status != http.StatusOK {
						t.Fatalf("out-of-band delete of %s: HTTP %d: %v", kind, status, obj)
					}
				}
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectObject(t, k, "ipaddresspools", "dmz", map[string]any{"addresses": anyList("10.30.0.0/29")}),
				expectObject(t, k, "l2advertisements", "dmz", map[string]any{"ipAddressPools": anyList("dmz")}),
			),
		}},
	})
}

// TestAccMetalLBPool_createDoesNotTakeOverAnotherManagersPool: a pool that
// exists already, written by someone else with different addresses, is a
// conflict on create, reported with what to do.
func TestAccMetalLBPool_createDoesNotTakeOverAnotherManagersPool(t *testing.T) {
	k := acctest.Kube(t)
	status, obj := kubeDo(t, k, http.MethodPatch, metallbPath("ipaddresspools", "shared")+"?fieldManager=helm",
		map[string]any{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
			"metadata": map[string]any{"name": "shared", "namespace": acctest.MetalLBNamespace},
			"spec":     map[string]any{"addresses": anyList("10.40.0.0/29")}}, "application/apply-patch+yaml")
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("creating the other manager's pool: HTTP %d: %v", status, obj)
	}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: acctest.KubeProvider(k.KubeconfigPath) + metallbPool("shared", `  name      = "shared"
  addresses = ["10.40.0.8/29"]
  l2 {}`),
			ExpectError: acctest.ErrorRe("Unable to create MetalLB pool metallb-system/shared", "conflict", "Import it"),
		}},
	})
	if got := field(kubeObject(t, k, "ipaddresspools", "shared"), "spec", "addresses"); !reflect.DeepEqual(got, anyList("10.40.0.0/29")) {
		t.Errorf("the other manager's addresses were changed to %v", got)
	}
}

// admissionWebhook is a validating webhook registered for MetalLB's types
// that refuses connections until serve is called, then admits everything:
// what the API server sees while MetalLB's controller is starting.
type admissionWebhook struct {
	listener string
	cert     tls.Certificate
	calls    atomic.Int64
	srv      atomic.Pointer[http.Server]
}

func newAdmissionWebhook(t *testing.T, k *testbed.Kube) *admissionWebhook {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metallb-webhook-stand-in"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &admissionWebhook{listener: l.Addr().String(), cert: cert}
	l.Close() // refused until serve
	name := "metallb-webhook-stand-in"
	status, obj := kubeDo(t, k, http.MethodPost, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": name},
		"webhooks": []any{map[string]any{
			"name":                    "metallb.io.stand-in.test",
			"admissionReviewVersions": []any{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Fail",
			"timeoutSeconds":          5,
			"clientConfig": map[string]any{"url": "https://" + h.listener + "/validate",
				"caBundle": base64.StdEncoding.EncodeToString(certPEM)},
			"rules": []any{map[string]any{"apiGroups": []any{"metallb.io"}, "apiVersions": []any{"*"},
				"operations": []any{"CREATE", "UPDATE"}, "resources": []any{"*"}}},
		}},
	}, "application/json")
	if status != http.StatusCreated {
		t.Fatalf("registering the webhook: HTTP %d: %v", status, obj)
	}
	t.Cleanup(func() {
		kubeDo(t, k, http.MethodDelete, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"+name, nil, "")
		if srv := h.srv.Load(); srv != nil {
			_ = srv.Close()
		}
	})
	return h
}

// serve starts answering admission reviews, allowing every request.
func (h *admissionWebhook) serve() error {
	l, err := tls.Listen("tcp", h.listener, &tls.Config{Certificates: []tls.Certificate{h.cert}})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review struct {
			Request struct {
				UID string `json:"uid"`
			} `json:"request"`
		}
		_ = json.NewDecoder(r.Body).Decode(&review)
		h.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"response": map[string]any{"uid": review.Request.UID, "allowed": true}})
	})}
	h.srv.Store(srv)
	go func() { _ = srv.Serve(l) }()
	return nil
}

// kubeSystemUID is the UID of the cluster's kube-system namespace, which
// identifies the cluster.
func kubeSystemUID(t *testing.T, k *testbed.Kube) string {
	t.Helper()
	status, obj := kubeDo(t, k, http.MethodGet, "/api/v1/namespaces/kube-system", nil, "")
	uid, _ := field(obj, "metadata", "uid").(string)
	if status != http.StatusOK || uid == "" {
		t.Fatalf("GET kube-system: HTTP %d: %v", status, obj)
	}
	return uid
}

// twoClusterKubeconfig is a kubeconfig with a context per cluster, "home"
// and "other", whose current context is current: what `kubectl config
// use-context` switches between.
func twoClusterKubeconfig(t *testing.T, home, other *testbed.Kube, current string) []byte {
	t.Helper()
	type named struct {
		Name    string         `json:"name"`
		Cluster map[string]any `json:"cluster,omitempty"`
		User    map[string]any `json:"user,omitempty"`
		Context map[string]any `json:"context,omitempty"`
	}
	cfg := map[string]any{"apiVersion": "v1", "kind": "Config", "current-context": current, "preferences": map[string]any{}}
	var clusters, users, contexts []named
	for name, k := range map[string]*testbed.Kube{"home": home, "other": other} {
		clusters = append(clusters, named{Name: name, Cluster: map[string]any{
			"server": k.URL, "certificate-authority-data": base64.StdEncoding.EncodeToString(k.CAData)}})
		users = append(users, named{Name: name + "-admin", User: map[string]any{"token": k.Token}})
		contexts = append(contexts, named{Name: name, Context: map[string]any{"cluster": name, "user": name + "-admin"}})
	}
	cfg["clusters"], cfg["users"], cfg["contexts"] = clusters, users, contexts
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAccMetalLBPool_otherClusterRefused: the pool was created through the
// default kubeconfig ($KUBECONFIG, no kubernetes block), whose current
// context is then switched to another cluster that has MetalLB too, as
// `kubectl config use-context` does. The next plan must not conclude that
// the pool is gone and create it in the other cluster: it fails, saying
// so, and keeps state; switching back gives an empty plan.
func TestAccMetalLBPool_otherClusterRefused(t *testing.T) {
	k := acctest.Kube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	other, err := testbed.StartKube(ctx, t.TempDir(), testbed.KubeOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("starting the other cluster's API server: %v", err)
	}
	t.Cleanup(func() { _ = other.Stop() })
	if err := other.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.EnsureNamespace(ctx, acctest.MetalLBNamespace); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "config")
	useContext := func(name string) {
		if err := os.WriteFile(kubeconfig, twoClusterKubeconfig(t, k, other, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	useContext("home")
	t.Setenv("KUBECONFIG", kubeconfig)
	homeUID := kubeSystemUID(t, k)
	addr := "homelab_metallb_pool.lan"
	config := metallbPool("lan", `  name      = "lan"
  addresses = ["10.50.0.0/29"]
  l2 {}`)
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "lan"),
		Steps: []resource.TestStep{{
			Config: config,
			Check:  expectObject(t, k, "ipaddresspools", "lan", map[string]any{"addresses": anyList("10.50.0.0/29")}),
		}, {
			PreConfig: func() { useContext("other") },
			Config:    config,
			ExpectError: acctest.ErrorRe("Unable to read MetalLB pool metallb-system/lan", "another cluster", other.URL,
				"nothing was changed"),
		}, {
			// Destroy through the other context is refused too.
			Config:      config,
			Destroy:     true,
			ExpectError: acctest.ErrorRe("MetalLB pool metallb-system/lan", "another cluster"),
		}, {
			PreConfig: func() {
				for _, kind := range []string{"ipaddresspools", "l2advertisements"} {
					if kubeObject(t, other, kind, "lan") != nil {
						t.Fatalf("%s lan was created in the other cluster", kind)
					}
				}
				if kubeObject(t, k, "ipaddresspools", "lan") == nil || kubeObject(t, k, "l2advertisements", "lan") == nil {
					t.Fatal("the pool is gone from the cluster it was created in")
				}
				useContext("home")
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectEmptyPlan()}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("cluster_id"), knownvalue.StringExact(homeUID)),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("api_server"), knownvalue.StringExact(k.URL)),
			},
		}, {
			ResourceName:            addr,
			ImportState:             true,
			ImportStateId:           "metallb-system/lan",
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"timeouts"},
		}},
	})
}

// TestAccMetalLBPool_missingCRDsKeepState: MetalLB's CRDs deleted (MetalLB
// uninstalled, or not installed yet after a cluster rebuild) is not "the
// pool is gone": refresh fails and keeps state. Once the CRDs are back, the
// pool is really gone (deleting a CRD deletes its objects), and the plan
// proposes to create it.
func TestAccMetalLBPool_missingCRDsKeepState(t *testing.T) {
	k := acctest.Kube(t)
	config := acctest.KubeProvider(k.KubeconfigPath) + metallbPool("crd", `  name      = "crd"
  addresses = ["10.60.0.0/29"]
  l2 {}
  timeouts {
    create = "30s"
  }`)
	addr := "homelab_metallb_pool.crd"
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             poolsGone(t, k, "crd"),
		Steps: []resource.TestStep{{
			Config: config,
			Check:  expectObject(t, k, "ipaddresspools", "crd", map[string]any{"addresses": anyList("10.60.0.0/29")}),
		}, {
			PreConfig: func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				if err := k.DeleteMetalLBCRDs(ctx); err != nil {
					t.Fatal(err)
				}
			},
			Config: config,
			ExpectError: acctest.ErrorRe("Unable to read MetalLB pool metallb-system/crd", "ipaddresspools.metallb.io",
				"not installed", "state was kept"),
		}, {
			// Still missing: destroy is refused the same way, not reported
			// as done.
			Config:      config,
			Destroy:     true,
			ExpectError: acctest.ErrorRe("MetalLB pool metallb-system/crd", "ipaddresspools.metallb.io"),
		}, {
			PreConfig: func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				if err := k.InstallMetalLBCRDs(ctx); err != nil {
					t.Fatal(err)
				}
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)}},
			Check: expectObject(t, k, "ipaddresspools", "crd", map[string]any{"addresses": anyList("10.60.0.0/29")}),
		}},
	})
}
