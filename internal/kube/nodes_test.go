package kube_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// nodeJSON is a Node as a kubelet (here RKE2's) registers and reports it.
const nodeJSON = `{
  "apiVersion": "v1", "kind": "Node",
  "metadata": {"name": "rke2-node-2", "uid": "6f1c0e2a-3b4d-4c5e-8f90-1a2b3c4d5e6f",
    "labels": {"kubernetes.io/hostname": "rke2-node-2", "homelab.test/tier": "worker"}},
  "spec": {"unschedulable": true, "taints": [
    {"key": "homelab.test/dedicated", "value": "batch", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z"}]},
  "status": {
    "addresses": [{"type": "InternalIP", "address": "10.99.0.12"}, {"type": "Hostname", "address": "rke2-node-2"}],
    "conditions": [
      {"type": "MemoryPressure", "status": "False"},
      {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "rke2 simulator stopped"}],
    "nodeInfo": {"kubeletVersion": "v1.31.4+rke2r1"}}
}`

func TestParseNode(t *testing.T) {
	var u unstructured.Unstructured
	if err := json.Unmarshal([]byte(nodeJSON), &u.Object); err != nil {
		t.Fatal(err)
	}
	n := kube.ParseNode(&u)
	want := kube.NodeInfo{
		Name: "rke2-node-2", UID: "6f1c0e2a-3b4d-4c5e-8f90-1a2b3c4d5e6f", Ready: false,
		ReadyStatus: "False", ReadyReason: "KubeletNotReady", ReadyMessage: "rke2 simulator stopped",
		KubeletVersion: "v1.31.4+rke2r1", Unschedulable: true, InternalIPs: []string{"10.99.0.12"},
		Labels: map[string]string{"kubernetes.io/hostname": "rke2-node-2", "homelab.test/tier": "worker"},
		Taints: []kube.Taint{{Key: "homelab.test/dedicated", Value: "batch", Effect: "NoSchedule"}, {Key: "node.kubernetes.io/unschedulable", Effect: "NoSchedule"}},
	}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("got  %+v\nwant %+v", n, want)
	}
	if s := n.Status(); s != "Ready=False (KubeletNotReady), kubelet v1.31.4+rke2r1" {
		t.Errorf("status %q", s)
	}
}

func TestParseTaint(t *testing.T) {
	for in, want := range map[string]kube.Taint{
		"dedicated=gpu:NoSchedule":                        {Key: "dedicated", Value: "gpu", Effect: "NoSchedule"},
		"node-role.kubernetes.io/control-plane:NoExecute": {Key: "node-role.kubernetes.io/control-plane", Effect: "NoExecute"},
		"k=:PreferNoSchedule":                             {Key: "k", Effect: "PreferNoSchedule"},
	} {
		got, err := kube.ParseTaint(in)
		if err != nil || got != want {
			t.Errorf("ParseTaint(%q) = %+v, %v", in, got, err)
		}
	}
	if s := (kube.Taint{Key: "a", Value: "b", Effect: "NoSchedule"}).String(); s != "a=b:NoSchedule" {
		t.Error(s)
	}
	for _, bad := range []string{"dedicated=gpu", "a=b:Never", ":NoSchedule", "a b=c:NoSchedule"} {
		if _, err := kube.ParseTaint(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for k, ok := range map[string]bool{"tier": true, "homelab.test/tier": true, "a/b/c": false, "Bad_Prefix.com/x": false, "-x": false} {
		if kube.LabelKeyRe.MatchString(k) != ok {
			t.Errorf("label key %q: want %v", k, ok)
		}
	}
}

// TestNodesAgainstKubeAPIServer runs the node operations against a real
// kube-apiserver (no kubelet: the Node and its pods are created as a
// kubelet and the scheduler would; pods have a zero grace period so that
// an eviction deletes them at once, as a kubelet would confirm).
func TestNodesAgainstKubeAPIServer(t *testing.T) {
	ctx, k, c := startKube(t)
	post := func(path string, obj map[string]any) { t.Helper(); kubePost(t, ctx, k, path, obj) }
	uid, err := c.NamespaceUID(ctx, "kube-system")
	if err != nil || len(uid) != 36 {
		t.Fatalf("kube-system UID %q %v", uid, err)
	}
	post("/api/v1/nodes", map[string]any{"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": "n1", "labels": map[string]any{"old": "x", "other-manager": "keep"}},
		"spec":     map[string]any{"taints": []any{map[string]any{"key": "old", "value": "x", "effect": "NoSchedule"}, map[string]any{"key": "theirs", "effect": "NoExecute"}}}})
	post("/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "apps"}})
	pod := func(name string, meta map[string]any) {
		m := map[string]any{"name": name, "namespace": "apps"}
		for k, v := range meta {
			m[k] = v
		}
		post("/api/v1/namespaces/apps/pods", map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": m,
			"spec": map[string]any{"nodeName": "n1", "terminationGracePeriodSeconds": 0,
				"containers": []any{map[string]any{"name": "c", "image": "registry.invalid/app:1"}}}})
	}
	yes := true
	pod("web-1", nil)
	pod("web-2", nil)
	pod("agent-abcde", map[string]any{"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "DaemonSet",
		"name": "agent", "uid": "0b0f6b0a-0000-4000-8000-000000000001", "controller": yes}}})
	pod("static-n1", map[string]any{"annotations": map[string]any{"kubernetes.io/config.mirror": "abc"}})

	pods, err := c.DrainablePods(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "web-1,web-2" {
		t.Fatalf("drainable pods %v (DaemonSet and mirror pods must be skipped)", names)
	}

	// Labels and taints: ours set, the previous ones we set dropped,
	// everything else kept.
	err = c.SetNodeMetadata(ctx, "n1", map[string]string{"tier": "worker"}, []string{"old"},
		[]kube.Taint{{Key: "dedicated", Value: "batch", Effect: "NoSchedule"}}, []kube.Taint{{Key: "old", Value: "x", Effect: "NoSchedule"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Node(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(n.Labels, map[string]string{"tier": "worker", "other-manager": "keep"}) {
		t.Errorf("labels %v", n.Labels)
	}
	var taints []string
	for _, tt := range n.Taints {
		taints = append(taints, tt.String())
	}
	sort.Strings(taints)
	// (The API server's TaintNodesByCondition adds not-ready to new nodes.)
	if strings.Join(taints, " ") != "dedicated=batch:NoSchedule node.kubernetes.io/not-ready:NoSchedule theirs:NoExecute" {
		t.Errorf("taints %v", taints)
	}

	var progress []string
	if err := c.Drain(ctx, "n1", kube.DrainOptions{}, func(msg string, _ map[string]any) { progress = append(progress, msg) }); err != nil {
		t.Fatal(err)
	}
	if n, _ = c.Node(ctx, "n1"); !n.Unschedulable {
		t.Error("the drained node is not cordoned")
	}
	left, err := c.List(ctx, kube.PodsGVR, "apps")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, p := range left {
		names = append(names, p.GetName())
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "agent-abcde,static-n1" {
		t.Errorf("pods after the drain: %v", names)
	}
	if len(progress) == 0 || progress[len(progress)-1] != "drained" {
		t.Errorf("progress %v", progress)
	}
	if err := c.Cordon(ctx, "n1", false); err != nil {
		t.Fatal(err)
	}
	if n, _ = c.Node(ctx, "n1"); n.Unschedulable {
		t.Error("uncordon did not take")
	}
	if err := c.DeleteNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(ctx, "n1"); !errors.Is(err, kube.ErrNotFound) {
		t.Fatalf("node after delete: %v", err)
	}
	if err := c.DeleteNode(ctx, "n1"); err != nil {
		t.Fatalf("deleting a missing node: %v", err)
	}
	if nodes, err := c.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
}

// TestDrainGuardsAgainstKubeAPIServer (issue 13 items 2 and 6), against a
// real kube-apiserver: a drain without the emptyDir opt-in evicts nothing
// and leaves the node schedulable when a pod keeps emptyDir data, and
// evicts it with the opt-in; a drain of a node whose kubelet is gone (a
// pod with a grace period stays Terminating, as on a dead node) ends when
// its time does, naming the pods left; Workloads lists the pods outside
// the system namespaces and the claims.
func TestDrainGuardsAgainstKubeAPIServer(t *testing.T) {
	ctx, k, c := startKube(t)
	post := func(path string, obj map[string]any) { t.Helper(); kubePost(t, ctx, k, path, obj) }
	pod := func(ns, name, node string, grace int, emptyDir bool) {
		spec := map[string]any{"nodeName": node, "terminationGracePeriodSeconds": grace,
			"containers": []any{map[string]any{"name": "c", "image": "registry.invalid/app:1"}}}
		if emptyDir {
			spec["volumes"] = []any{map[string]any{"name": "scratch", "emptyDir": map[string]any{}}}
		}
		post("/api/v1/namespaces/"+ns+"/pods", map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec})
	}
	for _, n := range []string{"n1", "n2"} {
		post("/api/v1/nodes", map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": n}})
	}
	post("/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "apps"}})

	if w, err := c.Workloads(ctx); err != nil || len(w) != 0 {
		t.Fatalf("workloads of an empty cluster: %v %v", w, err)
	}
	pod("kube-system", "coredns-x", "n1", 0, false)
	pod("apps", "cache", "n1", 0, true)
	pod("apps", "web", "n1", 0, false)

	// emptyDir data: refused without the opt-in, nothing evicted, not cordoned.
	err := c.Drain(ctx, "n1", kube.DrainOptions{}, nil)
	var local *kube.LocalDataError
	if !errors.As(err, &local) || len(local.Pods) != 1 || local.Pods[0].String() != "apps/cache" || !strings.Contains(err.Error(), "emptyDir: scratch") {
		t.Fatalf("drain with an emptyDir pod: %v", err)
	}
	for _, name := range []string{"cache", "web"} {
		if _, err := c.Get(ctx, kube.PodsGVR, "apps", name); err != nil {
			t.Fatalf("pod %s after the refused drain: %v", name, err)
		}
	}
	if n, _ := c.Node(ctx, "n1"); n.Unschedulable {
		t.Error("the refused drain left the node cordoned")
	}
	if err := c.CheckDrain(ctx, "n1", kube.DrainOptions{}); !errors.As(err, &local) {
		t.Errorf("CheckDrain: %v", err)
	}
	if w, err := c.Workloads(ctx); err != nil || strings.Join(w, ",") != "pod apps/cache,pod apps/web" {
		t.Fatalf("workloads: %v %v", w, err)
	}
	// With the opt-in both go.
	if err := c.Drain(ctx, "n1", kube.DrainOptions{DeleteEmptyDirData: true}, nil); err != nil {
		t.Fatalf("drain with the opt-in: %v", err)
	}
	for _, name := range []string{"cache", "web"} {
		if _, err := c.Get(ctx, kube.PodsGVR, "apps", name); !errors.Is(err, kube.ErrNotFound) {
			t.Fatalf("pod %s after the drain: %v", name, err)
		}
	}

	// A node whose kubelet is gone: the evicted pod stays Terminating.
	pod("apps", "db", "n2", 30, false)
	post("/api/v1/namespaces/apps/persistentvolumeclaims", map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": "data", "namespace": "apps"},
		"spec":     map[string]any{"accessModes": []any{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}})
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	err = c.Drain(dctx, "n2", kube.DrainOptions{}, nil)
	dcancel()
	var incomplete *kube.DrainIncompleteError
	if !errors.As(err, &incomplete) || strings.Join(incomplete.Pods, ",") != "apps/db" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain of a node without kubelet: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the bounded drain took %s", d)
	}
	if w, err := c.Workloads(ctx); err != nil || strings.Join(w, ",") != "persistentvolumeclaim apps/data,pod apps/db" {
		t.Fatalf("workloads: %v %v", w, err)
	}
}

// startKube starts a kube-apiserver of the test's own (stopped when the test
// ends) and returns a context bounding the test, the server and a client.
func startKube(t *testing.T) (context.Context, *testbed.Kube, *kube.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	t.Cleanup(cancel)
	k, err := testbed.StartKube(ctx, t.TempDir(), testbed.KubeOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartKube: %v", err)
	}
	t.Cleanup(func() { _ = k.Stop() })
	c, err := kube.NewClient(kube.Access{Kubeconfig: k.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, k, c
}

// kubePost creates an object as the testbed admin, failing the test on error.
func kubePost(t *testing.T, ctx context.Context, k *testbed.Kube, path string, obj map[string]any) {
	t.Helper()
	data, _ := json.Marshal(obj)
	status, resp, err := k.Do(ctx, http.MethodPost, path, data, "application/json")
	if err != nil || status >= 300 {
		t.Fatalf("POST %s: %d %s %v", path, status, resp, err)
	}
}
