package rke2_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
)

// The RKE2 safety tests (issue 13 items 1, 2 and 6) run a server on node 0
// and an agent on node 1 of the test LAN.

// guardCluster renders the two-node cluster; agent is the agent block ("" for none).
func guardCluster(lab *acctest.RKE2Lab, art, extra, agent string) string {
	return rke2Cluster(lab, fmt.Sprintf(`  version = %q
  airgap {
    artifacts_dir = %q
  }
%s
%s
%s`, rke2V1, art, extra, rke2Node(lab, "server", 0, ""), agent))
}

// rke2Present lists what of RKE2 is on node i: binary, uninstall script,
// config.yaml, unit files and whether the unit runs.
func rke2Present(t *testing.T, lab *acctest.RKE2Lab, i int) string {
	return acctest.RKE2NodeRun(t, lab, i, "for f in /usr/local/bin/rke2 /usr/local/bin/rke2-uninstall.sh /etc/rancher/rke2/config.yaml; do "+
		"[ -e $f ] && echo $f; done; systemctl list-unit-files --no-legend 'rke2-*' | awk '{print $1}'; "+
		"systemctl is-active rke2-server rke2-agent | tr '\\n' ' '; true")
}

// expectRKE2Intact checks on the VM that node i still has RKE2 installed,
// configured under its name, and running.
func expectRKE2Intact(t *testing.T, lab *acctest.RKE2Lab, i int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		unit := "rke2-agent"
		if i == 0 {
			unit = "rke2-server"
		}
		got := rke2Present(t, lab, i)
		for _, want := range []string{"/usr/local/bin/rke2\n", "/usr/local/bin/rke2-uninstall.sh", "/etc/rancher/rke2/config.yaml", unit + ".service"} {
			if !strings.Contains(got, want) {
				return fmt.Errorf("RKE2 on %s lacks %s:\n%s", lab.Nodes[i].Name, strings.TrimSpace(want), got)
			}
		}
		if active := acctest.RKE2NodeRun(t, lab, i, "systemctl is-active "+unit+" || true"); active != "active" {
			return fmt.Errorf("%s on %s is %s", unit, lab.Nodes[i].Name, active)
		}
		if name := acctest.RKE2NodeRun(t, lab, i, "sed -n 's/^node-name: //p' /etc/rancher/rke2/config.yaml"); name != lab.Nodes[i].Name {
			return fmt.Errorf("config.yaml on %s has node-name %q", lab.Nodes[i].Name, name)
		}
		return nil
	}
}

// logRKE2OnFailure logs, when the test failed, what of RKE2 is left on
// the nodes (evidence for a failure before the fix); it runs before the
// lab's reset.
func logRKE2OnFailure(t *testing.T, lab *acctest.RKE2Lab, nodes ...int) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, i := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := lab.Nodes[i].VM.Run(ctx, "for f in /usr/local/bin/rke2 /etc/rancher/rke2/config.yaml; do [ -e $f ] && echo $f || echo missing: $f; done; "+
				"systemctl list-unit-files --no-legend 'rke2-*'; sed -n 's/^node-name: //p' /etc/rancher/rke2/config.yaml 2>/dev/null; true")
			cancel()
			t.Logf("after the failure, RKE2 on %s (%v):\n%s", lab.Nodes[i].Name, err, out)
		}
	})
}

// clusterDyn is a dynamic client through the cluster's kubeconfig in state,
// for what a user would do with kubectl.
func clusterDyn(st *terraform.State) (dynamic.Interface, error) {
	rs, ok := st.RootModule().Resources[rke2Addr]
	if !ok {
		return nil, fmt.Errorf("%s is not in state", rke2Addr)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(rs.Primary.Attributes["kubeconfig"]))
	if err != nil {
		return nil, err
	}
	cfg.Timeout = time.Minute
	return dynamic.NewForConfig(cfg)
}

// kubeState keeps the last state seen by a check, for PreConfig funcs
// that talk to the cluster.
type kubeState struct{ st *terraform.State }

func (k *kubeState) keep() resource.TestCheckFunc {
	return func(st *terraform.State) error { k.st = st; return nil }
}

func (k *kubeState) dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	if k.st == nil {
		t.Fatal("no state kept yet")
	}
	d, err := clusterDyn(k.st)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// createPod creates namespace ns (if needed) and a pod bound to node, as
// the scheduler would (the simulator runs no kubelet: a pod with a grace
// period stays Terminating once evicted, as on a node that is gone).
func createPod(t *testing.T, d dynamic.Interface, ns, name, node string, grace int64, emptyDir bool) {
	t.Helper()
	ctx := acctest.Ctx(t)
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	if _, err := d.Resource(kube.NamespacesGVR).Create(ctx, nsObj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	spec := map[string]any{"nodeName": node, "terminationGracePeriodSeconds": grace,
		"containers": []any{map[string]any{"name": "app", "image": "registry.invalid/app:1"}}}
	if emptyDir {
		spec["volumes"] = []any{map[string]any{"name": "cache", "emptyDir": map[string]any{}}}
	}
	pod := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
	if _, err := d.Resource(kube.PodsGVR).Namespace(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
}

// podExists reports whether the pod is still in the cluster.
func podExists(d dynamic.Interface, ns, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.Resource(kube.PodsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func expectPod(ns, name string, want bool) resource.TestCheckFunc {
	return func(st *terraform.State) error {
		d, err := clusterDyn(st)
		if err != nil {
			return err
		}
		ok, err := podExists(d, ns, name)
		if err != nil {
			return err
		}
		if ok != want {
			return fmt.Errorf("pod %s/%s exists: %v, want %v", ns, name, ok, want)
		}
		return nil
	}
}

// TestAccRKE2Cluster_renameOnSameHost (issue 13 item 1): renaming the agent
// while its ssh host stays is refused at plan time; under another address
// of the same machine (its LAN address instead of the forwarded port) it
// is refused at apply before anything changes. The node's RKE2 install
// survives: binary, config under its name, unit running and not restarted.
func TestAccRKE2Cluster_renameOnSameHost(t *testing.T) {
	lab := acctest.RKE2Nodes(t, 2)
	art := acctest.RKE2Artifacts(t, rke2V1)
	logRKE2OnFailure(t, lab, 1)
	agent := rke2Node(lab, "agent", 1, "")
	renamed := strings.Replace(agent, fmt.Sprintf("name   = %q", lab.Nodes[1].Name), `name   = "renamed-agent"`, 1)
	aliased := strings.Replace(renamed, acctest.RKE2NodeSSH(lab, 1), fmt.Sprintf("ssh {\n    host = %q\n  }", lab.Nodes[1].IP), 1)
	if renamed == agent || aliased == renamed {
		t.Fatal("the renamed blocks did not render")
	}
	rs := &restarts{t: t, lab: lab}
	both := []wantNode{{name: lab.Nodes[0].Name, version: rke2V1}, {name: lab.Nodes[1].Name, version: rke2V1}}
	began := time.Now()
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0, 1),
		Steps: []resource.TestStep{{
			Config: guardCluster(lab, art, "", agent),
			Check: resource.ComposeAggregateTestCheckFunc(expectRKE2Nodes(t, both...), func(*terraform.State) error {
				t.Logf("cluster up after %s", time.Since(began).Round(time.Second))
				return nil
			}),
		}, {
			PreConfig:   func() { rs.record(0, 1) },
			Config:      guardCluster(lab, art, "", renamed),
			ExpectError: acctest.ErrorRe("Node renamed on the same host", `node "`+lab.Nodes[1].Name+`"`, "rke2-uninstall.sh"),
		}, {
			Config:      guardCluster(lab, art, "", aliased),
			ExpectError: acctest.ErrorRe("already runs node "+lab.Nodes[1].Name, "Nothing was changed"),
		}, {
			// Nothing was done: the same configuration plans nothing, the
			// node still runs RKE2 under its name and was not restarted.
			Config:           guardCluster(lab, art, "", agent),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Intact(t, lab, 1),
				expectRKE2Nodes(t, both...),
				rs.expect(),
				func(*terraform.State) error {
					t.Logf("rename test done after %s", time.Since(began).Round(time.Second))
					return nil
				},
			),
		}},
	})
}

// TestAccRKE2Cluster_unreachableNode (issue 13 item 2): with the agent's
// links cut (SSH and LAN: a machine gone), refresh succeeds with a warning
// and the agent's attributes kept (empty plan); removing its block then
// drains it for at most drain_timeout (a pod on it stays Terminating, as
// no kubelet confirms), deletes its Node, reports the uninstall that could
// not run as a warning, and the apply succeeds. Once the machine is back,
// RKE2 is still on it (nothing ran there), as the warning says, and the
// manual cleanup it names works.
func TestAccRKE2Cluster_unreachableNode(t *testing.T) {
	lab := acctest.RKE2Nodes(t, 2)
	art := acctest.RKE2Artifacts(t, rke2V1)
	logPath := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "debug")
	t.Setenv("TF_ACC_LOG_PATH", logPath)
	agent := rke2Node(lab, "agent", 1, "")
	ks := &kubeState{}
	cut := func(up bool) {
		if err := lab.Nodes[1].VM.SetLink(acctest.Ctx(t), up); err != nil {
			t.Fatal(err)
		}
		if err := lab.Nodes[1].VM.SetLANLink(acctest.Ctx(t), up); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { cut(true) })
	var removeStart time.Time
	var removeLog int64
	began := time.Now()
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0, 1),
		Steps: []resource.TestStep{{
			Config: guardCluster(lab, art, "", agent),
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, wantNode{name: lab.Nodes[0].Name, version: rke2V1}, wantNode{name: lab.Nodes[1].Name, version: rke2V1}),
				ks.keep(),
				func(*terraform.State) error {
					t.Logf("cluster up after %s", time.Since(began).Round(time.Second))
					return nil
				},
			),
		}, {
			// The agent is gone: the refresh still reads the cluster, and
			// the kept attributes plan nothing.
			PreConfig: func() {
				createPod(t, ks.dyn(t), "apps", "db", lab.Nodes[1].Name, 30, false)
				cut(false)
			},
			Config:   guardCluster(lab, art, "", agent),
			PlanOnly: true,
		}, {
			// Its block removed: bounded drain, Node deleted, apply succeeds.
			PreConfig: func() {
				removeStart, removeLog = time.Now(), logSize(logPath)
			},
			Config: guardCluster(lab, art, `  drain_timeout = "30s"`, ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, wantNode{name: lab.Nodes[0].Name, version: rke2V1}),
				func(*terraform.State) error {
					t.Logf("unreachable agent removed in %s", time.Since(removeStart).Round(time.Second))
					log := logSince(t, logPath, removeLog)
					for _, want := range []string{"draining: waiting for pods to leave the node", "RKE2 left on a node that could not be reached"} {
						if !strings.Contains(log, want) {
							return fmt.Errorf("the provider's log lacks %q", want)
						}
					}
					return nil
				},
			),
		}, {
			// The machine comes back: RKE2 is still there (the warning
			// said so), and the cleanup it names removes it.
			PreConfig: func() {
				cut(true)
				if got := rke2Present(t, lab, 1); !strings.Contains(got, "/usr/local/bin/rke2\n") {
					t.Fatalf("RKE2 is gone from the unreachable node, so something ran there:\n%s", got)
				}
				acctest.RKE2NodeRun(t, lab, 1, "/usr/local/bin/rke2-uninstall.sh >/dev/null 2>&1")
				d := ks.dyn(t)
				ctx := acctest.Ctx(t)
				zero := int64(0)
				// What the cluster's garbage collector does once the
				// Node is gone (the simulator runs no controllers), and
				// the kubectl delete node the warning names.
				_ = d.Resource(kube.NodesGVR).Delete(ctx, lab.Nodes[1].Name, metav1.DeleteOptions{})
				if err := d.Resource(kube.PodsGVR).Namespace("apps").Delete(ctx, "db", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
					t.Fatal(err)
				}
			},
			Config:           guardCluster(lab, art, `  drain_timeout = "30s"`, ""),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            rke2Gone(t, lab, 1),
		}},
	})
	if data, err := os.ReadFile(logPath); err == nil && !strings.Contains(string(data), "Unable to read RKE2 node") {
		t.Log("note: the warning text is not in the log (Terraform prints warnings, the log may not)")
	}
}

// TestAccRKE2Cluster_destroyGuards (issue 13 item 6): destroy of a cluster
// running a workload is refused and leaves the cluster intact; removing a
// node whose pod keeps emptyDir data is refused until
// drain_delete_emptydir_data allows it; force_destroy lets destroy through.
func TestAccRKE2Cluster_destroyGuards(t *testing.T) {
	lab := acctest.RKE2Nodes(t, 2)
	art := acctest.RKE2Artifacts(t, rke2V1)
	logRKE2OnFailure(t, lab, 0, 1)
	agent := rke2Node(lab, "agent", 1, "")
	ks := &kubeState{}
	rs := &restarts{t: t, lab: lab}
	both := []wantNode{{name: lab.Nodes[0].Name, version: rke2V1}, {name: lab.Nodes[1].Name, version: rke2V1}}
	began := time.Now()
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0, 1),
		Steps: []resource.TestStep{{
			Config: guardCluster(lab, art, "", agent),
			Check: resource.ComposeAggregateTestCheckFunc(expectRKE2Nodes(t, both...), ks.keep(), func(*terraform.State) error {
				t.Logf("cluster up after %s", time.Since(began).Round(time.Second))
				return nil
			}),
		}, {
			// A workload with emptyDir data on the agent: destroy refused.
			PreConfig: func() {
				createPod(t, ks.dyn(t), "apps", "cache", lab.Nodes[1].Name, 0, true)
				rs.record(0, 1)
			},
			Config:      guardCluster(lab, art, "", agent),
			Destroy:     true,
			ExpectError: acctest.ErrorRe("Unable to destroy RKE2 cluster", "pod apps/cache", "force_destroy"),
		}, {
			// ... leaving the cluster as it was.
			Config:           guardCluster(lab, art, "", agent),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Intact(t, lab, 0), expectRKE2Intact(t, lab, 1),
				expectRKE2Nodes(t, both...), rs.expect(), expectPod("apps", "cache", true),
			),
		}, {
			// Removing the agent would evict the emptyDir pod: refused.
			Config:      guardCluster(lab, art, "", ""),
			ExpectError: acctest.ErrorRe("emptyDir", "apps/cache", "drain_delete_emptydir_data"),
		}, {
			// Nothing was changed: not cordoned, pod there, RKE2 running.
			Config: guardCluster(lab, art, "", agent),
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Intact(t, lab, 1), expectRKE2Nodes(t, both...), rs.expect(), expectPod("apps", "cache", true),
			),
		}, {
			// With the opt-in the pod is evicted and the agent removed.
			Config: guardCluster(lab, art, "  drain_delete_emptydir_data = true", ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, wantNode{name: lab.Nodes[0].Name, version: rke2V1}), rke2Gone(t, lab, 1),
				expectPod("apps", "cache", false),
			),
		}, {
			// force_destroy lets destroy uninstall a cluster with a workload.
			PreConfig: func() { createPod(t, ks.dyn(t), "apps", "web", lab.Nodes[0].Name, 0, false) },
			Config:    guardCluster(lab, art, "  force_destroy = true", ""),
			Check:     expectPod("apps", "web", true),
		}},
	})
	t.Logf("destroy guards test took %s", time.Since(began).Round(time.Second))
}
