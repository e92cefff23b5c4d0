package rke2sim

import (
	"context"
	"encoding/json"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Taints the node lifecycle controller manages.
const (
	taintNotReady    = "node.kubernetes.io/not-ready"
	taintUnreachable = "node.kubernetes.io/unreachable"
)

const (
	// lifecycleInterval is how often servers check the nodes.
	lifecycleInterval = 2 * time.Second
	// nodeMonitorGracePeriod is how long a node may go without a heartbeat
	// before its conditions turn Unknown (Kubernetes' default is 40 s).
	nodeMonitorGracePeriod = 40 * time.Second
)

// nodeLifecycle stands in for the part of kube-controller-manager's node
// lifecycle controller that nodes are seen through: it keeps the
// not-ready/unreachable NoSchedule taints in line with the Ready
// condition (kube-apiserver's TaintNodesByCondition admission puts
// not-ready on every new Node) and turns the conditions of a node whose
// heartbeats stopped to Unknown after nodeMonitorGracePeriod.
type nodeLifecycle struct {
	client dynamic.Interface
	log    *logger
	// seen records, per node, the last heartbeat timestamp observed and
	// when (by this server's clock) it was first observed: staleness is
	// judged on the server's clock, so clock skew between nodes does not
	// matter (as in the real controller).
	seen map[string]observation
}

type observation struct {
	heartbeat string
	at        time.Time
}

func newNodeLifecycle(client dynamic.Interface, log *logger) *nodeLifecycle {
	return &nodeLifecycle{client: client, log: log, seen: map[string]observation{}}
}

func (l *nodeLifecycle) run(ctx context.Context) {
	for {
		l.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(lifecycleInterval):
		}
	}
}

func (l *nodeLifecycle) pass(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	list, err := l.client.Resource(nodesGVR).List(lctx, metav1.ListOptions{})
	if err != nil {
		if ctx.Err() == nil {
			l.log.Oncef("lifecycle", "warning", "Listing nodes: %v", err)
		}
		return
	}
	l.log.Reset("lifecycle")
	names := map[string]bool{}
	for i := range list.Items {
		names[list.Items[i].GetName()] = true
	}
	for name := range l.seen {
		if !names[name] {
			delete(l.seen, name)
		}
	}
	for i := range list.Items {
		if err := l.reconcile(lctx, &list.Items[i], time.Now()); err != nil && ctx.Err() == nil {
			l.log.Oncef("lifecycle:"+list.Items[i].GetName(), "warning", "Node lifecycle of %s: %v", list.Items[i].GetName(), err)
		}
	}
}

// reconcile updates one node's conditions and taints.
func (l *nodeLifecycle) reconcile(ctx context.Context, node *unstructured.Unstructured, now time.Time) error {
	conds, _, _ := unstructured.NestedSlice(node.Object, "status", "conditions")
	readyStatus, heartbeat := "Unknown", ""
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		readyStatus, _ = m["status"].(string)
		heartbeat, _ = m["lastHeartbeatTime"].(string)
	}
	obs, ok := l.seen[node.GetName()]
	if !ok || obs.heartbeat != heartbeat {
		obs = observation{heartbeat: heartbeat, at: now}
		l.seen[node.GetName()] = obs
	}
	if readyStatus != "Unknown" && now.Sub(obs.at) > nodeMonitorGracePeriod {
		if err := l.markUnknown(ctx, node, conds, now); err != nil {
			return err
		}
		l.log.Infof("Node %s stopped posting status; conditions set to Unknown", node.GetName())
		readyStatus = "Unknown"
	}

	taints, _, _ := unstructured.NestedSlice(node.Object, "spec", "taints")
	want := map[string]bool{taintNotReady: readyStatus == "False", taintUnreachable: readyStatus == "Unknown"}
	var out []any
	changed := false
	present := map[string]bool{}
	for _, t := range taints {
		m, ok := t.(map[string]any)
		if !ok {
			continue
		}
		key, _ := m["key"].(string)
		if _, managed := want[key]; managed {
			if !want[key] {
				changed = true
				continue
			}
			present[key] = true
		}
		out = append(out, t)
	}
	for _, key := range []string{taintNotReady, taintUnreachable} {
		if want[key] && !present[key] {
			out = append(out, map[string]any{"key": key, "effect": "NoSchedule", "timeAdded": now.UTC().Format(time.RFC3339)})
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if out == nil {
		out = []any{}
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": node.GetResourceVersion()},
		"spec":     map[string]any{"taints": out},
	})
	_, err := l.client.Resource(nodesGVR).Patch(ctx, node.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	return err
}

// markUnknown sets every condition of the node to Unknown, as the node
// lifecycle controller does when heartbeats stop.
func (l *nodeLifecycle) markUnknown(ctx context.Context, node *unstructured.Unstructured, conds []any, now time.Time) error {
	var out []any
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		m = deepCopyMap(m)
		m["status"] = "Unknown"
		m["reason"] = "NodeStatusUnknown"
		m["message"] = "Kubelet stopped posting node status."
		m["lastTransitionTime"] = now.UTC().Format(time.RFC3339)
		out = append(out, m)
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": node.GetResourceVersion()},
		"status":   map[string]any{"conditions": out},
	})
	updated, err := l.client.Resource(nodesGVR).Patch(ctx, node.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}, "status")
	if err != nil {
		return err
	}
	node.Object = updated.Object
	return nil
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
