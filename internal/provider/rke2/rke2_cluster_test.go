package rke2_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

const (
	rke2V1 = "v1.31.4+rke2r1"
	rke2V2 = "v1.31.5+rke2r1"
	// rke2Addr is the resource every RKE2 test manages.
	rke2Addr = "homelab_rke2_cluster.test"
)

// rke2Node renders a server or agent block for node i of the lab. The
// nodes' default route is a NAT NIC with the same address on every VM, so
// node-ip must name the LAN address.
func rke2Node(lab *acctest.RKE2Lab, block string, i int, extra string) string {
	return fmt.Sprintf(`
  %s {
    name   = %q
    config = { "node-ip" = %q %s }
    %s
  }`, block, lab.Nodes[i].Name, lab.Nodes[i].IP, extra, acctest.RKE2NodeSSH(lab, i))
}

// rke2Cluster renders the cluster resource with the given body.
func rke2Cluster(lab *acctest.RKE2Lab, body string) string {
	return acctest.RKE2Provider(lab) + fmt.Sprintf(`
resource "homelab_rke2_cluster" "test" {
%s
  timeouts {
    create = "45m"
    update = "60m"
    delete = "15m"
  }
}
`, body)
}

// rke2Kube is a client for the cluster through the kubeconfig in state.
func rke2Kube(st *terraform.State) (*kube.Client, error) {
	rs, ok := st.RootModule().Resources[rke2Addr]
	if !ok {
		return nil, fmt.Errorf("%s is not in state", rke2Addr)
	}
	kc := rs.Primary.Attributes["kubeconfig"]
	if kc == "" {
		return nil, fmt.Errorf("%s has no kubeconfig", rke2Addr)
	}
	return kube.NewClient(kube.Access{Kubeconfig: []byte(kc)})
}

// expectRKE2Nodes checks through the Kubernetes API that exactly the named
// nodes exist, each Ready with the kubelet version, and that want's labels
// and taints are on them.
type wantNode struct {
	name    string
	labels  map[string]string
	taints  []string
	version string
}

func expectRKE2Nodes(t *testing.T, want ...wantNode) resource.TestCheckFunc {
	return func(st *terraform.State) error {
		c, err := rke2Kube(st)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return fmt.Errorf("listing nodes through the cluster's kubeconfig (%s): %w", c.Host(), err)
		}
		got := map[string]kube.NodeInfo{}
		for _, n := range nodes {
			got[n.Name] = n
		}
		if len(got) != len(want) {
			return fmt.Errorf("the cluster has nodes %v, want %d", nodeNames(nodes), len(want))
		}
		for _, w := range want {
			n, ok := got[w.name]
			if !ok {
				return fmt.Errorf("node %s is not registered (nodes: %v)", w.name, nodeNames(nodes))
			}
			if !n.Ready || n.KubeletVersion != w.version {
				return fmt.Errorf("node %s: %s, want Ready with kubelet %s", w.name, n.Status(), w.version)
			}
			for k, v := range w.labels {
				if n.Labels[k] != v {
					return fmt.Errorf("node %s: label %s=%q, want %q (labels %v)", w.name, k, n.Labels[k], v, n.Labels)
				}
			}
			var taints []string
			for _, tt := range n.Taints {
				taints = append(taints, tt.String())
			}
			for _, tt := range w.taints {
				if !strings.Contains(" "+strings.Join(taints, " ")+" ", " "+tt+" ") {
					return fmt.Errorf("node %s: taints %v, want %s", w.name, taints, tt)
				}
			}
			if n.Unschedulable {
				return fmt.Errorf("node %s is still cordoned", w.name)
			}
		}
		return nil
	}
}

func nodeNames(nodes []kube.NodeInfo) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// unitEntered is when node i's RKE2 unit last became active (monotonic
// microseconds on the node): it changes exactly when the unit restarts.
func unitEntered(t *testing.T, lab *acctest.RKE2Lab, i int) string {
	unit := "rke2-agent"
	if i == 0 {
		unit = "rke2-server"
	}
	return acctest.RKE2NodeRun(t, lab, i, "systemctl show -p ActiveEnterTimestampMonotonic --value "+unit)
}

// restarts records the nodes' unit start times and checks later that
// exactly the expected ones restarted.
type restarts struct {
	t      *testing.T
	lab    *acctest.RKE2Lab
	before map[int]string
}

func (r *restarts) record(nodes ...int) {
	r.before = map[int]string{}
	for _, i := range nodes {
		r.before[i] = unitEntered(r.t, r.lab, i)
	}
}

func (r *restarts) expect(restarted ...int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		want := map[int]bool{}
		for _, i := range restarted {
			want[i] = true
		}
		for i, b := range r.before {
			now := unitEntered(r.t, r.lab, i)
			if (now != b) != want[i] {
				return fmt.Errorf("node %s: unit start changed from %s to %s; restart expected: %v", r.lab.Nodes[i].Name, b, now, want[i])
			}
		}
		return nil
	}
}

func rke2Version(t *testing.T, lab *acctest.RKE2Lab, i int) string {
	return acctest.RKE2NodeRun(t, lab, i, "/usr/local/bin/rke2 --version | head -n 1 | cut -d' ' -f3")
}

// expectVersions checks rke2 --version on the nodes.
func expectVersions(t *testing.T, lab *acctest.RKE2Lab, version string, nodes ...int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, i := range nodes {
			if v := rke2Version(t, lab, i); v != version {
				return fmt.Errorf("node %s runs rke2 %s, want %s", lab.Nodes[i].Name, v, version)
			}
		}
		return nil
	}
}

// rke2Gone is a CheckDestroy: RKE2's binary, config and units are gone
// from the nodes.
func rke2Gone(t *testing.T, lab *acctest.RKE2Lab, nodes ...int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, i := range nodes {
			out := acctest.RKE2NodeRun(t, lab, i, "for f in /usr/local/bin/rke2 /etc/rancher/rke2/config.yaml /var/lib/rancher/rke2/server/token; do "+
				"[ -e $f ] && echo present: $f; done; systemctl list-unit-files --no-legend 'rke2-*' | awk '{print \"unit: \" $1}'; true")
			if out != "" {
				return fmt.Errorf("RKE2 is left on %s:\n%s", lab.Nodes[i].Name, out)
			}
		}
		return nil
	}
}

// logSince returns what the acceptance log gained since offset.
func logSince(t *testing.T, logPath string, offset int64) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	if int64(len(data)) < offset {
		return string(data)
	}
	return string(data[offset:])
}

func logSize(logPath string) int64 {
	fi, err := os.Stat(logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var logNodeRe = regexp.MustCompile(`node=([a-z0-9.-]+)`)

// expectOneAtATime checks, in the provider's log of one apply, that the
// nodes were upgraded in this order and that each was Ready again before
// the next one started: the order of log lines, not their times.
func expectOneAtATime(t *testing.T, logPath string, offset *int64, order ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		var events []string
		for _, line := range strings.Split(logSince(t, logPath, *offset), "\n") {
			m := logNodeRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			switch {
			case strings.Contains(line, "upgrading node"):
				events = append(events, "upgrade "+m[1])
			case strings.Contains(line, "to be Ready: done"):
				events = append(events, "ready "+m[1])
			}
		}
		var want []string
		for _, n := range order {
			want = append(want, "upgrade "+n, "ready "+n)
		}
		// Ready lines of nodes not being upgraded may interleave; keep the
		// ones of the upgraded nodes, in order.
		var got []string
		for _, e := range events {
			if strings.HasPrefix(e, "upgrade ") || (len(got) > 0 && got[len(got)-1] == "upgrade "+strings.TrimPrefix(e, "ready ")) {
				got = append(got, e)
			}
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			return fmt.Errorf("upgrade sequence in the log:\n  %s\nwant:\n  %s", strings.Join(got, ", "), strings.Join(want, ", "))
		}
		return nil
	}
}

// TestAccRKE2Cluster_lifecycle drives one cluster through its life on
// three VMs running the RKE2 simulator: one server and one agent from
// airgap artifacts, a second agent joins, out-of-band drift (a config.yaml
// edit on one agent, another RKE2 binary on the other) is planned and
// corrected, a config change restarts only its node, a rolling upgrade,
// an agent removed, and destroy. The generated token never reaches the log.
func TestAccRKE2Cluster_lifecycle(t *testing.T) {
	lab := acctest.RKE2Nodes(t, 3)
	art1 := acctest.RKE2Artifacts(t, rke2V1)
	art2 := acctest.RKE2Artifacts(t, rke2V2)
	logPath := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "trace")
	t.Setenv("TF_ACC_LOG_PATH", logPath)
	server, a1, a2 := lab.Nodes[0].Name, lab.Nodes[1].Name, lab.Nodes[2].Name

	serverBlock := rke2Node(lab, "server", 0, "")
	cluster := func(version, artifacts string, agents ...string) string {
		return rke2Cluster(lab, fmt.Sprintf(`  version = %q
  airgap {
    artifacts_dir = %q
  }
  config  = { "write-kubeconfig-mode" = "0600" }
  disable = ["rke2-ingress-nginx"]
%s
%s`, version, artifacts, serverBlock, strings.Join(agents, "\n")))
	}
	worker := func(i int, nodeConfig string) string {
		return fmt.Sprintf(`
  agent {
    name   = %q
    config = { "node-ip" = %q %s }
    labels = { "homelab.test/tier" = "worker", "homelab.test/index" = "%d" }
    taints = ["homelab.test/dedicated=batch:NoSchedule"]
    %s
  }`, lab.Nodes[i].Name, lab.Nodes[i].IP, nodeConfig, i, acctest.RKE2NodeSSH(lab, i))
	}
	workerWant := func(i int, version string) wantNode {
		return wantNode{name: lab.Nodes[i].Name, version: version,
			labels: map[string]string{"homelab.test/tier": "worker", "homelab.test/index": fmt.Sprint(i)},
			taints: []string{"homelab.test/dedicated=batch:NoSchedule"}}
	}
	serverWant := func(version string) wantNode {
		return wantNode{name: server, version: version, labels: map[string]string{"node-role.kubernetes.io/control-plane": "true"}}
	}
	agentPath := func(i int, attr string) tfjsonpath.Path {
		return tfjsonpath.New("agent").AtSliceIndex(i).AtMapKey(attr)
	}
	var secrets []string
	rs := &restarts{t: t, lab: lab}
	var upgradeLog int64
	began := time.Now()
	last := began
	// mark logs how long the step took since the previous mark (apply,
	// plans and the test's own checks).
	mark := func(what string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			t.Logf("%s: %s", what, time.Since(last).Round(time.Second))
			last = time.Now()
			return nil
		}
	}

	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0, 1, 2),
		Steps: []resource.TestStep{{
			// One server and one agent.
			Config: cluster(rke2V1, art1, worker(1, "")),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("api_endpoint"), knownvalue.StringExact(lab.Nodes[0].IP)),
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("installed_version"), knownvalue.StringExact(rke2V1)),
				statecheck.ExpectKnownValue(rke2Addr, agentPath(0, "installed_version"), knownvalue.StringExact(rke2V1)),
				statecheck.ExpectKnownValue(rke2Addr, agentPath(0, "config_sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:[0-9a-f]{64}$`))),
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("cluster_id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f-]{36}$`))),
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("ca_certificate"), knownvalue.StringRegexp(regexp.MustCompile(`^-----BEGIN CERTIFICATE-----`))),
				statecheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("kubeconfig")),
				statecheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("token")),
				statecheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("client_key")),
			},
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, serverWant(rke2V1), workerWant(1, rke2V1)),
				expectVersions(t, lab, rke2V1, 0, 1),
				resource.TestCheckResourceAttrWith(rke2Addr, "kubeconfig", func(v string) error {
					if !strings.Contains(v, "server: https://"+lab.Nodes[0].IP+":6443") {
						return fmt.Errorf("the kubeconfig does not point at the API endpoint")
					}
					return nil
				}),
				func(st *terraform.State) error {
					t.Logf("cluster up (1 server + 1 agent) %s after the test started", time.Since(began).Round(time.Second))
					last = time.Now()
					attrs := st.RootModule().Resources[rke2Addr].Primary.Attributes
					secrets = append(secrets, attrs["token"], acctest.RKE2NodeRun(t, lab, 0, "cat /var/lib/rancher/rke2/server/token"))
					for i := range 2 {
						if out := acctest.RKE2NodeRun(t, lab, i, "stat -c '%a %U' /etc/rancher/rke2/config.yaml"); out != "600 root" {
							return fmt.Errorf("config.yaml on node %d: %s", i, out)
						}
					}
					if got := acctest.RKE2NodeRun(t, lab, 1, "grep -c '^server: https://"+lab.Nodes[0].IP+":9345$' /etc/rancher/rke2/config.yaml"); got != "1" {
						return fmt.Errorf("the agent does not join through the API endpoint")
					}
					return nil
				},
			),
		}, {
			// A second agent joins; the others are not restarted.
			PreConfig: func() { rs.record(0, 1) },
			Config:    cluster(rke2V1, art1, worker(1, ""), worker(2, "")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, serverWant(rke2V1), workerWant(1, rke2V1), workerWant(2, rke2V1)),
				rs.expect(),
				mark("second agent joined"),
			),
		}, {
			// Drift out of band: a1's config.yaml edited, a2's RKE2 binary
			// replaced by another release. Both show in the plan; apply
			// puts them back and restarts those two nodes only.
			PreConfig: func() {
				acctest.RKE2NodeRun(t, lab, 1, "printf 'kubelet-arg: max-pods=42\\n' >> /etc/rancher/rke2/config.yaml")
				acctest.VMUpload(t, lab.Nodes[2].VM, filepath.Join(art2, "rke2.linux-amd64.tar.gz"), "/root/drift.tar.gz", 0o600)
				acctest.RKE2NodeRun(t, lab, 2, "set -e; rm -rf /tmp/drift; mkdir /tmp/drift; tar xzf /root/drift.tar.gz -C /tmp/drift; "+
					"cp /tmp/drift/bin/rke2 /usr/local/bin/rke2.new; mv -f /usr/local/bin/rke2.new /usr/local/bin/rke2; rm -rf /tmp/drift /root/drift.tar.gz")
				rs.record(0, 1, 2)
			},
			Config: cluster(rke2V1, art1, worker(1, ""), worker(2, "")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(rke2Addr, agentPath(1, "installed_version"), knownvalue.StringExact(rke2V1)),
			}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectVersions(t, lab, rke2V1, 0, 1, 2),
				expectRKE2Nodes(t, serverWant(rke2V1), workerWant(1, rke2V1), workerWant(2, rke2V1)),
				func(*terraform.State) error {
					if out := acctest.RKE2NodeRun(t, lab, 1, "grep -c max-pods=42 /etc/rancher/rke2/config.yaml || true"); out != "0" {
						return fmt.Errorf("the out-of-band edit is still in config.yaml")
					}
					return nil
				},
				rs.expect(1, 2),
				mark("drift corrected"),
			),
		}, {
			// The drift was visible: a refresh-only plan of the same state
			// after editing a1 again is not empty.
			PreConfig: func() {
				acctest.RKE2NodeRun(t, lab, 1, "sed -i 's/homelab.test\\/tier=worker/homelab.test\\/tier=oops/' /etc/rancher/rke2/config.yaml")
			},
			Config: cluster(rke2V1, art1, worker(1, ""), worker(2, "")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate)}},
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}, {
			// Corrected, and a config change of a2 restarts a2 only (a1 is
			// restarted too: its drifted file is restored).
			PreConfig: func() { rs.record(0, 1, 2) },
			Config:    cluster(rke2V1, art1, worker(1, ""), worker(2, `, "kubelet-arg" = "max-pods=50"`)),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, serverWant(rke2V1), workerWant(1, rke2V1), workerWant(2, rke2V1)),
				rs.expect(1, 2),
				func(*terraform.State) error {
					if out := acctest.RKE2NodeRun(t, lab, 2, "grep -c 'kubelet-arg: max-pods=50' /etc/rancher/rke2/config.yaml || true"); out != "1" {
						return fmt.Errorf("a2's config.yaml lacks the new key")
					}
					return nil
				},
				mark("config change applied"),
			),
		}, {
			// Rolling upgrade: the new release's artifacts are uploaded and
			// the nodes restart one at a time, the server first.
			PreConfig: func() {
				rs.record(0, 1, 2)
				upgradeLog = logSize(logPath)
			},
			Config: cluster(rke2V2, art2, worker(1, ""), worker(2, `, "kubelet-arg" = "max-pods=50"`)),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(rke2Addr, agentPath(0, "installed_version"), knownvalue.StringExact(rke2V2)),
			}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, serverWant(rke2V2), workerWant(1, rke2V2), workerWant(2, rke2V2)),
				expectVersions(t, lab, rke2V2, 0, 1, 2),
				rs.expect(0, 1, 2),
				expectOneAtATime(t, logPath, &upgradeLog, server, a1, a2),
				mark("rolling upgrade"),
			),
		}, {
			// A node that cannot be reached keeps its attributes (a
			// warning), not a node that is gone, and does not stop the
			// rest of the cluster from being read: the plan is empty.
			PreConfig: func() {
				if err := lab.Nodes[1].VM.SetLink(acctest.Ctx(t), false); err != nil {
					t.Fatal(err)
				}
			},
			Config:   cluster(rke2V2, art2, worker(1, ""), worker(2, `, "kubelet-arg" = "max-pods=50"`)),
			PlanOnly: true,
		}, {
			// An agent removed: drained, its Node deleted, RKE2 uninstalled.
			// (With a1 reachable again, the kept state plans nothing else.)
			PreConfig: func() {
				if err := lab.Nodes[1].VM.SetLink(acctest.Ctx(t), true); err != nil {
					t.Fatal(err)
				}
				rs.record(0, 1)
			},
			Config: cluster(rke2V2, art2, worker(1, "")),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionUpdate)}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, serverWant(rke2V2), workerWant(1, rke2V2)),
				rke2Gone(t, lab, 2),
				rs.expect(),
				mark("agent removed"),
			),
		}, {
			// Destroy refuses while the cluster cannot be asked whether it
			// runs workloads, which it cannot once the next step removes RKE2
			// from the server: opt in first (an in-place change, no node
			// touched).
			Config: forceDestroy(cluster(rke2V2, art2, worker(1, ""))),
		}, {
			// RKE2 removed from every server out of band: the cluster is
			// gone and planned for creation. (Plan only: destroy then
			// uninstalls the agent that is left.)
			PreConfig: func() { acctest.RKE2NodeRun(t, lab, 0, "/usr/local/bin/rke2-uninstall.sh >/dev/null 2>&1") },
			Config:    forceDestroy(cluster(rke2V2, art2, worker(1, ""))),
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(rke2Addr, plancheck.ResourceActionCreate)}},
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
	t.Logf("lifecycle test took %s", time.Since(began).Round(time.Second))
	expectNoSecretsInLog(t, logPath, secrets)
}

// expectNoSecretsInLog fails when the log holds any of the secrets.
func expectNoSecretsInLog(t *testing.T, logPath string, secrets []string) {
	t.Helper()
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("reading the trace log: %v", err)
	}
	if len(log) < 1000 {
		t.Fatalf("the trace log is nearly empty (%d bytes): the grep below would prove nothing", len(log))
	}
	if len(secrets) == 0 {
		t.Fatal("no secrets were collected to look for")
	}
	for _, s := range secrets {
		if len(s) < 16 {
			t.Fatalf("secret %q is too short to be a token", s)
		}
		if n := strings.Count(string(log), s); n > 0 {
			i := strings.Index(string(log), s)
			ctx := string(log[max(0, i-300):i])
			t.Fatalf("the TF_LOG=trace output holds a cluster token %d times, e.g. after:\n%s", n, ctx)
		}
	}
}

// TestAccRKE2Cluster_wholeStack builds a cluster, installs MetalLB's CRDs
// through its manifests and creates a MetalLB pool through its kubeconfig,
// all in one apply, with a write-only token.
func TestAccRKE2Cluster_wholeStack(t *testing.T) {
	acctest.RequireWriteOnly(t)
	lab := acctest.RKE2Nodes(t, 1)
	art := acctest.RKE2Artifacts(t, rke2V1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	crds, err := testbed.MetalLBCRDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := filepath.Join(dir, "metallb.yaml")
	docs := []string{"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: metallb-system\n"}
	for _, c := range crds {
		docs = append(docs, string(c))
	}
	if err := os.WriteFile(manifest, []byte(strings.Join(docs, "\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	token := acctest.Password(t) + acctest.Password(t)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Secrets of config.yaml travel in sensitive_config (issue 13 item 9),
	// read from files as from a secret store: the test framework logs the
	// configuration's text, so a literal would be in the log.
	s3Access, s3Secret := acctest.Password(t), acctest.Password(t)
	s3Files := map[string]string{}
	for name, v := range map[string]string{"s3-access": s3Access, "s3-secret": s3Secret} {
		s3Files[name] = filepath.Join(dir, name)
		if err := os.WriteFile(s3Files[name], []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "trace.log")
	t.Setenv("TF_LOG", "trace")
	t.Setenv("TF_ACC_LOG_PATH", logPath)
	config := rke2Cluster(lab, fmt.Sprintf(`  version          = %q
  token_wo         = trimspace(file(%q))
  token_wo_version = "1"
  airgap {
    artifacts_dir = %q
  }
  manifests = { "metallb-crds" = file(%q) }
  config    = { "etcd-s3" = "true", "etcd-s3-bucket" = "backups" }
  sensitive_config = {
    "etcd-s3-access-key" = trimspace(file(%q))
    "etcd-s3-secret-key" = trimspace(file(%q))
  }
%s`, rke2V1, tokenFile, art, manifest, s3Files["s3-access"], s3Files["s3-secret"], rke2Node(lab, "server", 0, ""))) + fmt.Sprintf(`
resource "homelab_metallb_pool" "lab" {
  name       = "lab"
  addresses  = ["%s/32"]
  kubeconfig = homelab_rke2_cluster.test.kubeconfig
  l2 {}
}
`, lab.Nodes[0].IP)
	began := time.Now()
	var secrets []string
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		CheckDestroy:             rke2Gone(t, lab, 0),
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("token"), knownvalue.Null()),
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("token_wo"), knownvalue.Null()),
				statecheck.ExpectKnownValue("homelab_metallb_pool.lab", tfjsonpath.New("id"), knownvalue.StringExact("metallb-system/lab")),
				statecheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("sensitive_config")),
				statecheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("sensitive_config_sha256")),
				statecheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("sensitive_config_sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
			},
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check: resource.ComposeAggregateTestCheckFunc(
				expectRKE2Nodes(t, wantNode{name: lab.Nodes[0].Name, version: rke2V1}),
				func(st *terraform.State) error {
					t.Logf("cluster + MetalLB pool up %s after the apply started", time.Since(began).Round(time.Second))
					c, err := rke2Kube(st)
					if err != nil {
						return err
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					pool, err := c.Get(ctx, kube.IPAddressPools, "metallb-system", "lab")
					if err != nil {
						return fmt.Errorf("the pool is not in the cluster: %w", err)
					}
					if got := kube.ParsePool(pool, nil, nil).Addresses; len(got) != 1 || got[0] != lab.Nodes[0].IP+"/32" {
						return fmt.Errorf("pool addresses %v", got)
					}
					full := acctest.RKE2NodeRun(t, lab, 0, "cat /var/lib/rancher/rke2/server/token")
					if !strings.HasSuffix(full, "::server:"+token) {
						return fmt.Errorf("the server did not take the write-only token")
					}
					secrets = append(secrets, token, full, s3Access, s3Secret)
					for k, v := range st.RootModule().Resources[rke2Addr].Primary.Attributes {
						if strings.Contains(v, token) {
							return fmt.Errorf("state attribute %s holds the token", k)
						}
						if strings.HasPrefix(k, "sensitive_config.") {
							continue // the sensitive map itself
						}
						if strings.Contains(v, s3Access) || strings.Contains(v, s3Secret) {
							return fmt.Errorf("state attribute %s, not sensitive, holds a secret of sensitive_config", k)
						}
					}
					// The secrets reached the node's config.yaml (0600).
					cfg := acctest.RKE2NodeRun(t, lab, 0, "stat -c %a /etc/rancher/rke2/config.yaml; cat /etc/rancher/rke2/config.yaml")
					for _, want := range []string{"etcd-s3-access-key: " + s3Access, "etcd-s3-secret-key: " + s3Secret, "etcd-s3-bucket: backups"} {
						if !strings.Contains(cfg, want) {
							return fmt.Errorf("config.yaml on the node lacks %q", strings.SplitN(want, ":", 2)[0])
						}
					}
					if !strings.HasPrefix(cfg, "600\n") {
						return fmt.Errorf("config.yaml is not mode 0600: %.4s", cfg)
					}
					return nil
				},
			),
		}},
	})
	expectNoSecretsInLog(t, logPath, secrets)
}

// TestAccRKE2Cluster_validation checks the configuration errors reported
// at plan time, before any host is contacted.
func TestAccRKE2Cluster_validation(t *testing.T) {
	acctest.RequireWriteOnly(t)
	nodeAt := func(block, name, host, extra string) string {
		return fmt.Sprintf(`
  %s {
    name = %q
    %s
    ssh {
      host = %q
    }
  }`, block, name, extra, host)
	}
	node := func(block, name, extra string) string {
		return nodeAt(block, name, strings.ToLower(name)+".lan.test", extra)
	}
	cfg := func(body string) string {
		return `
provider "homelab" {
  ssh {
    private_key = "unused"
  }
}

resource "homelab_rke2_cluster" "test" {
` + body + "\n}\n"
	}
	v := `  version = "v1.31.4+rke2r1"` + "\n"
	cases := []struct {
		name, body string
		err        *regexp.Regexp
	}{
		{"no version", node("server", "a", ""), acctest.ErrorRe("version", "channel")},
		{"both", v + `  channel = "stable"` + node("server", "a", ""), acctest.ErrorRe("version", "channel")},
		{"bad version", `  version = "1.31"` + node("server", "a", ""), acctest.ErrorRe("RKE2 release")},
		{"airgap with channel", `  channel = "stable"
  airgap {
    artifacts_dir = "/tmp"
  }` + node("server", "a", ""), acctest.ErrorRe("airgap")},
		{"airgap without dir", v + "  airgap {}\n" + node("server", "a", ""), acctest.ErrorRe("artifacts_dir")},
		{"no server", v + node("agent", "a", ""), acctest.ErrorRe("server")},
		{"duplicate name", v + node("server", "a", "") + node("agent", "a", ""), acctest.ErrorRe("Duplicate node name")},
		{"two nodes on one host", v + node("server", "a", "") + nodeAt("agent", "b", "A.lan.test.", ""), acctest.ErrorRe("Two nodes on one host", `server 0 ("a")`)},
		{"managed key", v + `  config = { "token" = "x" }` + node("server", "a", ""), acctest.ErrorRe("Key set by the provider")},
		{"node managed key", v + node("server", "a", `config = { "node-label" = "a=b" }`), acctest.ErrorRe("Key set by the provider")},
		{"typed twice", v + `  cni = "calico"
  config = { "cni" = "cilium" }` + node("server", "a", ""), acctest.ErrorRe("Key set twice")},
		{"flag with dashes", v + `  config = { "--cni" = "x" }` + node("server", "a", ""), acctest.ErrorRe("Invalid config key")},
		{"taint", v + node("server", "a", `taints = ["dedicated=x"]`), acctest.ErrorRe("Invalid taint")},
		{"label", v + node("server", "a", `labels = { "bad key!" = "x" }`), acctest.ErrorRe("Invalid label key")},
		{"manifest name", v + `  manifests = { "../etc/passwd" = "x" }` + node("server", "a", ""), acctest.ErrorRe("Invalid manifest name")},
		{"reserved manifest", v + `  manifests = { "rke2-canal" = "x" }` + node("server", "a", ""), acctest.ErrorRe("Reserved manifest name")},
		{"node name", v + node("server", "A_1", ""), acctest.ErrorRe("DNS name")},
		{"short token", v + `  token_wo = "short"
  token_wo_version = "1"` + node("server", "a", ""), acctest.ErrorRe("token_wo")},
		// Secrets in the non-sensitive maps (issue 13 item 9): refused at
		// plan time, pointing at sensitive_config.
		{"s3 secret key in config", v + `  config = { "etcd-s3-secret-key" = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" }` + node("server", "a", ""),
			acctest.ErrorRe("Secret in a non-sensitive map", `"etcd-s3-secret-key" looks like it carries a secret`, "sensitive_config")},
		{"s3 access key in config", v + `  config = { "etcd-s3-access-key" = "AKIAIOSFODNN7EXAMPLE" }` + node("server", "a", ""),
			acctest.ErrorRe("Secret in a non-sensitive map", "sensitive_config")},
		{"agent token in node config", v + node("server", "a", `config = { "agent-token" = "0123456789abcdef" }`),
			acctest.ErrorRe("Secret in a non-sensitive map", "sensitive_config")},
		{"datastore endpoint with a password", v + `  config = { "datastore-endpoint" = "postgres://rke2:hunter22@db.lan:5432/kubernetes" }` + node("server", "a", ""),
			acctest.ErrorRe("Secret in a non-sensitive map", "credentials", "sensitive_config")},
		{"mysql dsn with a password", v + node("server", "a", `config = { "datastore-endpoint" = "rke2:hunter22@tcp(db.lan:3306)/kubernetes" }`),
			acctest.ErrorRe("Secret in a non-sensitive map", "sensitive_config")},
		{"password suffix", v + `  config = { "kube-proxy-password" = "hunter22" }` + node("server", "a", ""),
			acctest.ErrorRe("Secret in a non-sensitive map", "sensitive_config")},
		{"key in both maps", v + `  config = { "node-external-ip" = "203.0.113.7" }
  sensitive_config = { "node-external-ip" = "203.0.113.7" }` + node("server", "a", ""), acctest.ErrorRe("Key set twice", "sensitive_config")},
		{"token in sensitive_config", v + `  sensitive_config = { "token" = "0123456789abcdef" }` + node("server", "a", ""),
			acctest.ErrorRe("Key set by the provider", `"token" is written by the provider`)},
	}
	var steps []resource.TestStep
	for _, c := range cases {
		steps = append(steps, resource.TestStep{Config: cfg(c.body), PlanOnly: true, ExpectError: c.err})
	}
	// A valid configuration plans without contacting anyone: the endpoint
	// defaults to the first server's node-ip, the versions and hashes are
	// planned.
	steps = append(steps, resource.TestStep{
		Config: cfg(v + `  config = { "write-kubeconfig-mode" = "0600", "etcd-s3-bucket" = "backups" }
  sensitive_config = { "etcd-s3-secret-key" = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" }` + node("server", "a", `config = { "node-ip" = "192.0.2.11" }`) +
			node("agent", "b", `labels = { "tier" = "worker" }
    sensitive_config = { "agent-token" = "0123456789abcdef" }`)),
		ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
			plancheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("sensitive_config")),
			plancheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("sensitive_config_sha256")),
			plancheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("sensitive_config_sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
			plancheck.ExpectSensitiveValue(rke2Addr, tfjsonpath.New("agent").AtSliceIndex(0).AtMapKey("sensitive_config")),
			plancheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("api_endpoint"), knownvalue.StringExact("192.0.2.11")),
			plancheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("server").AtSliceIndex(0).AtMapKey("installed_version"), knownvalue.StringExact("v1.31.4+rke2r1")),
			plancheck.ExpectKnownValue(rke2Addr, tfjsonpath.New("agent").AtSliceIndex(0).AtMapKey("config_sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:`))),
			plancheck.ExpectUnknownValue(rke2Addr, tfjsonpath.New("kubeconfig")),
		}},
		PlanOnly:           true,
		ExpectNonEmptyPlan: true,
	})
	acctest.Test(t, resource.TestCase{
		PreCheck:                 func() { acctest.PreCheck(t) },
		ProtoV6ProviderFactories: acctest.ProtoV6ProviderFactories,
		Steps:                    steps,
	})
}

// forceDestroy adds force_destroy = true to a cluster configuration.
func forceDestroy(config string) string {
	return strings.Replace(config, "  disable = [", "  force_destroy = true\n  disable = [", 1)
}
