package rke2_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/acctest"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/rke2"
)

// rke2InstallByHand installs RKE2 on node i the way its documentation's
// tarball method does, outside Terraform: the release tarball extracted
// under /usr/local, the images into RKE2's images directory, a
// config.yaml written by hand, then `systemctl enable --now` of the unit.
func rke2InstallByHand(ctx context.Context, lab *acctest.RKE2Lab, i int, artifacts, config string) error {
	node := lab.Nodes[i]
	unit := "rke2-agent"
	if i == 0 {
		unit = "rke2-server"
	}
	script := fmt.Sprintf(`set -e
tar xzf /root/rke2-artifacts.tar.gz -C /usr/local
mkdir -p /var/lib/rancher/rke2/agent/images
cp /root/rke2-artifacts-images.tar.gz /var/lib/rancher/rke2/agent/images/rke2-images.linux-amd64.tar.gz
systemctl daemon-reload
mkdir -p /etc/rancher/rke2
umask 077
cat >/etc/rancher/rke2/config.yaml <<'EOF'
%sEOF
systemctl enable --now %s
`, config, unit)
	out, err := node.VM.Run(ctx, script)
	if err != nil {
		return fmt.Errorf("installing RKE2 by hand on %s: %v\n%s", node.Name, err, out)
	}
	return nil
}

// noReplacement is a plan check: the plan neither replaces nor destroys
// anything.
type noReplacement struct{}

func (noReplacement) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Change.Actions.Delete() || rc.Change.Actions.Replace() || rc.Change.Actions.DestroyBeforeCreate() || rc.Change.Actions.CreateBeforeDestroy() {
			resp.Error = fmt.Errorf("%s is planned for %v", rc.Address, rc.Change.Actions)
			return
		}
	}
}

// onlyNodeChanges is a plan check: of the nodes' attributes, only the
// named ones change (block.index.attribute, e.g. "server.0.config_sha256").
type onlyNodeChanges []string

func (want onlyNodeChanges) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != rke2Addr {
			continue
		}
		before, _ := rc.Change.Before.(map[string]any)
		after, _ := rc.Change.After.(map[string]any)
		var got []string
		for _, block := range []string{"server", "agent"} {
			b, _ := before[block].([]any)
			a, _ := after[block].([]any)
			for i := range max(len(a), len(b)) {
				if i >= len(a) || i >= len(b) {
					got = append(got, fmt.Sprintf("%s.%d", block, i))
					continue
				}
				bm, _ := b[i].(map[string]any)
				am, _ := a[i].(map[string]any)
				// Unknown values are missing from after: a change too.
				keys := map[string]bool{}
				for k := range am {
					keys[k] = true
				}
				for k := range bm {
					keys[k] = true
				}
				for k := range keys {
					av, inAfter := am[k]
					if !inAfter || fmt.Sprint(bm[k]) != fmt.Sprint(av) {
						got = append(got, fmt.Sprintf("%s.%d.%s", block, i, k))
					}
				}
			}
		}
		if strings.Join(sortedCopy(got), " ") != strings.Join(sortedCopy(want), " ") {
			resp.Error = fmt.Errorf("the plan changes the nodes' %v, want only %v", got, []string(want))
		}
	}
}

func sortedCopy(l []string) []string {
	out := append([]string(nil), l...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestAccRKE2Cluster_import adopts a cluster built by hand on the three
// node VMs (one server, two agents, from the RKE2 simulator's release
// tarball as RKE2's tarball install documents it, with a config.yaml a
// user writes: no node-name, a DNS tls-san, a non-default cluster-cidr,
// a label on the agents) with `terraform import` by the server's address.
// The import finds the agents in the cluster's node list and reads every
// node's settings; the plan into a configuration with only the required
// attributes replaces and uninstalls nothing: it only rewrites the
// server's config.yaml to add the API endpoint to tls-san (which the
// provider always does), restarting that node alone; after apply the plan
// is empty, the full configuration plans nothing, a different
// cluster-cidr is refused at plan time, and an import {} block of the
// cluster plans a no-op. The cluster is the same one throughout (its
// kube-system UID) and destroy uninstalls it from every node.
func TestAccRKE2Cluster_import(t *testing.T) {
	lab := acctest.RKE2Nodes(t, 3)
	art := acctest.RKE2Artifacts(t, rke2V1)
	server, a1, a2 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(b)
	acctest.Secret("hand-written RKE2 token", token)

	for i := range lab.Nodes {
		acctest.VMUpload(t, lab.Nodes[i].VM, filepath.Join(art, "rke2.linux-amd64.tar.gz"), "/root/rke2-artifacts.tar.gz", 0o600)
		acctest.VMUpload(t, lab.Nodes[i].VM, filepath.Join(art, "rke2-images.linux-amd64.tar.gz"), "/root/rke2-artifacts-images.tar.gz", 0o600)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	began := time.Now()
	if err := rke2InstallByHand(ctx, lab, 0, art, fmt.Sprintf("token: %s\nnode-ip: %s\ncluster-cidr: 10.52.0.0/16\ntls-san:\n  - k8s.homelab.test\nwrite-kubeconfig-mode: \"0600\"\n", token, server.IP)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for _, i := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rke2InstallByHand(ctx, lab, i, art, fmt.Sprintf("server: https://%s:9345\ntoken: %s\nnode-ip: %s\nnode-label:\n  - homelab.test/tier=worker\n", server.IP, token, lab.Nodes[i].IP))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The cluster as its admin sees it, before Terraform knows of it.
	creds, err := rke2.RewriteKubeconfig([]byte(acctest.RKE2NodeRun(t, lab, 0, "cat /etc/rancher/rke2/rke2.yaml")), server.IP)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.NewClient(kube.Access{Kubeconfig: creds.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for {
		nodes, err := kc.Nodes(ctx)
		ready := 0
		for _, n := range nodes {
			if n.Ready {
				ready++
			}
		}
		if err == nil && ready == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the hand-made cluster did not get three Ready nodes: %v %v", nodeNames(nodes), err)
		}
		time.Sleep(3 * time.Second)
	}
	if uid, err = kc.NamespaceUID(ctx, "kube-system"); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster installed by hand in %s", time.Since(began).Round(time.Second))

	nodeBlock := func(block string, n acctest.RKE2Node, extra string) string {
		return fmt.Sprintf(`
  %s {
    name = %q
    %s
    ssh {
      host = %q
    }
  }`, block, n.Name, extra, n.IP)
	}
	// The provider's source is spelled out: `terraform import` runs in the
	// test's working directory with this configuration alone.
	providerBlock := fmt.Sprintf(`
terraform {
  required_providers {
    homelab = { source = "%s/%s/homelab" }
  }
}
`, os.Getenv("TF_ACC_PROVIDER_HOST"), os.Getenv("TF_ACC_PROVIDER_NAMESPACE")) + acctest.RKE2Provider(lab)
	// Only what the schema requires: version (or channel), the nodes'
	// names and addresses.
	minimal := providerBlock + fmt.Sprintf(`
resource "homelab_rke2_cluster" "test" {
  version = %q
%s%s%s
}
`, rke2V1, nodeBlock("server", server, ""), nodeBlock("agent", a1, ""), nodeBlock("agent", a2, ""))
	worker := func(n acctest.RKE2Node) string {
		return nodeBlock("agent", n, fmt.Sprintf(`config = { "node-ip" = %q }
    labels = { "homelab.test/tier" = "worker" }`, n.IP))
	}
	full := func(cidr string) string {
		return providerBlock + fmt.Sprintf(`
resource "homelab_rke2_cluster" "test" {
  version      = %q
  cluster_cidr = %q
  tls_san      = ["k8s.homelab.test"]
  api_endpoint = %q
%s%s%s
}
`, rke2V1, cidr, server.IP, nodeBlock("server", server, fmt.Sprintf(`config = { "node-ip" = %q, "write-kubeconfig-mode" = "0600" }`, server.IP)), worker(a1), worker(a2))
	}
	sameCluster := statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("cluster_id"), knownvalue.StringExact(uid))
	rs := &restarts{t: t, lab: lab}
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0, 1, 2),
		Steps: []resource.TestStep{{
			// terraform import by the server's address.
			Config: minimal, ResourceName: rke2Addr, ImportState: true, ImportStateId: server.IP, ImportStatePersist: true,
			ImportStateCheck: func(st []*terraform.InstanceState) error {
				if len(st) != 1 {
					return fmt.Errorf("imported %d resources", len(st))
				}
				a := st[0].Attributes
				want := map[string]string{
					"id": uid, "cluster_id": uid, "version": rke2V1, "api_endpoint": server.IP, "token": token,
					"cluster_cidr": "10.52.0.0/16", "tls_san.#": "1", "tls_san.0": "k8s.homelab.test", "cni": "", "service_cidr": "",
					"server.#": "1", "server.0.name": server.Name, "server.0.ssh.host": server.IP, "server.0.installed_version": rke2V1,
					"server.0.config.node-ip": server.IP, "server.0.config.write-kubeconfig-mode": "0600",
					"agent.#": "2", "agent.0.name": a1.Name, "agent.0.ssh.host": a1.IP, "agent.0.config.node-ip": a1.IP,
					"agent.0.labels.homelab.test/tier": "worker", "agent.1.name": a2.Name, "agent.1.installed_version": rke2V1,
					"keep_on_destroy": "false", "force_destroy": "false",
				}
				for k, v := range want {
					if a[k] != v {
						return fmt.Errorf("imported %s = %q, want %q", k, a[k], v)
					}
				}
				if !regexp.MustCompile(`^sha256:`).MatchString(a["agent.1.config_sha256"]) || !strings.Contains(a["kubeconfig"], "server: https://"+server.IP+":6443") {
					return fmt.Errorf("imported config_sha256 %q / kubeconfig without the endpoint", a["agent.1.config_sha256"])
				}
				return nil
			},
		}, {
			// The minimal configuration: no replacement, no uninstall;
			// the server's config.yaml gains the endpoint in tls-san.
			PreConfig: func() { rs.record(0, 1, 2) },
			Config:    minimal,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{noReplacement{}, plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate),
					onlyNodeChanges{"server.0.config_sha256"}},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			ConfigStateChecks: []statecheck.StateCheck{sameCluster,
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("cluster_cidr"), knownvalue.StringExact("10.52.0.0/16"))},
			Check: resource.ComposeAggregateTestCheckFunc(
				rs.expect(0),
				expectRKE2Nodes(t, wantNode{name: server.Name, version: rke2V1},
					wantNode{name: a1.Name, version: rke2V1, labels: map[string]string{"homelab.test/tier": "worker"}},
					wantNode{name: a2.Name, version: rke2V1, labels: map[string]string{"homelab.test/tier": "worker"}}),
				func(*terraform.State) error {
					c, err := rke2.Parse([]byte(acctest.RKE2NodeRun(t, lab, 0, "cat /etc/rancher/rke2/config.yaml")))
					if err != nil {
						return err
					}
					if c.Token() != token || c["cluster-cidr"] != "10.52.0.0/16" || fmt.Sprint(c["tls-san"]) != "[k8s.homelab.test "+server.IP+"]" || c["node-name"] != server.Name {
						return fmt.Errorf("the server's config.yaml after apply: token kept %v, cluster-cidr %v, tls-san %v, node-name %v",
							c.Token() == token, c["cluster-cidr"], c["tls-san"], c["node-name"])
					}
					return nil
				},
			),
		}, {
			// The full configuration, as the cluster is: nothing to do.
			PreConfig:         func() { rs.record(0, 1, 2) },
			Config:            full("10.52.0.0/16"),
			ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			ConfigStateChecks: []statecheck.StateCheck{sameCluster},
			Check:             rs.expect(),
		}, {
			// A pod network other than the cluster's is refused at plan
			// time, never reinstalled.
			Config:      full("10.99.0.0/16"),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Setting fixed at install.*10\.52\.0\.0/16`),
		}, {
			// terraform import again, verified against the state.
			Config: full("10.52.0.0/16"), ResourceName: rke2Addr, ImportState: true, ImportStateId: server.IP,
			ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "id",
		}, {
			// An import {} block of the cluster plans a no-op.
			Config: full("10.52.0.0/16"), ResourceName: rke2Addr, ImportState: true,
			ImportStateKind: resource.ImportBlockWithID, ImportStateId: server.IP,
		}},
	})
}
