package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Core object types used for cluster nodes.
var (
	NodesGVR      = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	NamespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	PodsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	// PersistentVolumeClaimsGVR: claims hold data a cluster's destroy would lose.
	PersistentVolumeClaimsGVR = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
)

// Taint is a node taint.
type Taint struct {
	Key, Value, Effect string
}

// String writes the taint the way kubelet's --register-with-taints and
// RKE2's node-taint take it: key=value:Effect (key:Effect without a value).
func (t Taint) String() string {
	if t.Value == "" {
		return t.Key + ":" + t.Effect
	}
	return t.Key + "=" + t.Value + ":" + t.Effect
}

var (
	taintRe = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=([-A-Za-z0-9_.]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$`)
	// LabelKeyRe is a label key: an optional DNS-subdomain prefix and a name.
	LabelKeyRe = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	// LabelValueRe is a label value (possibly empty).
	LabelValueRe = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// ParseTaint reads key=value:Effect or key:Effect.
func ParseTaint(s string) (Taint, error) {
	m := taintRe.FindStringSubmatch(s)
	if m == nil {
		return Taint{}, fmt.Errorf("%q is not a taint: write key=value:Effect or key:Effect, with Effect NoSchedule, PreferNoSchedule or NoExecute", s)
	}
	return Taint{Key: m[1], Value: m[4], Effect: m[5]}, nil
}

// NodeInfo is what the provider reads of a Node.
type NodeInfo struct {
	Name           string
	UID            string
	Ready          bool
	ReadyStatus    string // True, False, Unknown or "" (no condition yet)
	ReadyReason    string
	ReadyMessage   string
	KubeletVersion string
	Labels         map[string]string
	Taints         []Taint
	Unschedulable  bool
	InternalIPs    []string
}

// Status is a short description of the node's readiness, for progress logs.
func (n NodeInfo) Status() string {
	s := "Ready=" + n.ReadyStatus
	if n.ReadyStatus == "" {
		s = "no Ready condition yet"
	}
	if n.ReadyReason != "" {
		s += " (" + n.ReadyReason + ")"
	}
	if n.KubeletVersion != "" {
		s += ", kubelet " + n.KubeletVersion
	}
	return s
}

// ParseNode reads a Node object.
func ParseNode(u *unstructured.Unstructured) NodeInfo {
	n := NodeInfo{Name: u.GetName(), UID: string(u.GetUID()), Labels: u.GetLabels()}
	n.KubeletVersion, _, _ = unstructured.NestedString(u.Object, "status", "nodeInfo", "kubeletVersion")
	n.Unschedulable, _, _ = unstructured.NestedBool(u.Object, "spec", "unschedulable")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			n.ReadyStatus, _ = m["status"].(string)
			n.ReadyReason, _ = m["reason"].(string)
			n.ReadyMessage, _ = m["message"].(string)
			n.Ready = n.ReadyStatus == "True"
		}
	}
	addrs, _, _ := unstructured.NestedSlice(u.Object, "status", "addresses")
	for _, a := range addrs {
		m, _ := a.(map[string]any)
		if m["type"] == "InternalIP" {
			if s, ok := m["address"].(string); ok {
				n.InternalIPs = append(n.InternalIPs, s)
			}
		}
	}
	taints, _, _ := unstructured.NestedSlice(u.Object, "spec", "taints")
	for _, t := range taints {
		m, _ := t.(map[string]any)
		var tt Taint
		tt.Key, _ = m["key"].(string)
		tt.Value, _ = m["value"].(string)
		tt.Effect, _ = m["effect"].(string)
		n.Taints = append(n.Taints, tt)
	}
	return n
}

// Nodes lists the cluster's nodes, sorted by name.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	l, err := c.dyn.Resource(NodesGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, ParseNode(&l.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Node reads one node; a missing node is an error matching ErrNotFound
// (see Get).
func (c *Client) Node(ctx context.Context, name string) (NodeInfo, error) {
	u, err := c.Get(ctx, NodesGVR, "", name)
	if err != nil {
		return NodeInfo{}, err
	}
	return ParseNode(u), nil
}

// NamespaceUID returns the UID of a namespace; the UID of kube-system
// identifies a cluster.
func (c *Client) NamespaceUID(ctx context.Context, ns string) (string, error) {
	u, err := bounded(ctx, c, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return c.dyn.Resource(NamespacesGVR).Get(ctx, ns, metav1.GetOptions{})
	})
	if err != nil {
		return "", err
	}
	return string(u.GetUID()), nil
}

// Cordon marks a node unschedulable (or schedulable again with on=false).
func (c *Client) Cordon(ctx context.Context, name string, on bool) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": on}})
	_, err := c.dyn.Resource(NodesGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	return err
}

// DeleteNode deletes a Node object; a missing one is not an error.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	return c.Delete(ctx, NodesGVR, "", name)
}

// SetNodeMetadata makes the node carry labels (adding or changing them)
// and taints (added, or replacing a taint of the same key and effect), and
// removes the labels in dropLabels and the taints in dropTaints (by key
// and effect) unless they are wanted. Everything else on the node is left
// alone. The node is updated with optimistic concurrency, retried on
// conflicts.
func (c *Client) SetNodeMetadata(ctx context.Context, name string, labels map[string]string, dropLabels []string, taints, dropTaints []Taint) error {
	for attempt := 0; ; attempt++ {
		u, err := c.dyn.Resource(NodesGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := applyNodeMetadata(u, labels, dropLabels, taints, dropTaints)
		if !changed {
			return nil
		}
		_, err = c.dyn.Resource(NodesGVR).Update(ctx, u, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil || !apierrors.IsConflict(err) || attempt >= 5 {
			return err
		}
	}
}

// applyNodeMetadata edits the object; it reports whether anything changed.
func applyNodeMetadata(u *unstructured.Unstructured, labels map[string]string, dropLabels []string, taints, dropTaints []Taint) bool {
	changed := false
	cur := u.GetLabels()
	if cur == nil {
		cur = map[string]string{}
	}
	for _, k := range dropLabels {
		if _, wanted := labels[k]; wanted {
			continue
		}
		if _, ok := cur[k]; ok {
			delete(cur, k)
			changed = true
		}
	}
	for k, v := range labels {
		if old, ok := cur[k]; !ok || old != v {
			cur[k] = v
			changed = true
		}
	}
	u.SetLabels(cur)

	existing := ParseNode(u).Taints
	same := func(a, b Taint) bool { return a.Key == b.Key && a.Effect == b.Effect }
	var out []Taint
	for _, t := range existing {
		drop := false
		for _, d := range dropTaints {
			drop = drop || same(t, d)
		}
		for _, w := range taints {
			drop = drop || same(t, w)
		}
		if !drop {
			out = append(out, t)
		}
	}
	out = append(out, taints...)
	if !taintsEqual(existing, out) {
		changed = true
		list := make([]any, len(out))
		for i, t := range out {
			m := map[string]any{"key": t.Key, "effect": t.Effect}
			if t.Value != "" {
				m["value"] = t.Value
			}
			// Keep timeAdded of taints that stay as they were.
			for _, raw := range existingTaintMaps(u) {
				if raw["key"] == t.Key && raw["effect"] == t.Effect && fmt.Sprint(raw["value"]) == fmt.Sprint(m["value"]) {
					if ta, ok := raw["timeAdded"]; ok {
						m["timeAdded"] = ta
					}
				}
			}
			list[i] = m
		}
		if len(list) == 0 {
			unstructured.RemoveNestedField(u.Object, "spec", "taints")
		} else {
			_ = unstructured.SetNestedSlice(u.Object, list, "spec", "taints")
		}
	}
	return changed
}

func existingTaintMaps(u *unstructured.Unstructured) []map[string]any {
	l, _, _ := unstructured.NestedSlice(u.Object, "spec", "taints")
	out := make([]map[string]any, 0, len(l))
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func taintsEqual(a, b []Taint) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(l []Taint) []string {
		s := make([]string, len(l))
		for i, t := range l {
			s[i] = t.String()
		}
		sort.Strings(s)
		return s
	}
	ka, kb := key(a), key(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// PodRef names a pod by namespace, name and UID.
type PodRef struct {
	Namespace, Name, UID string
	// EmptyDir lists the pod's emptyDir volumes: their data lives on the
	// node and is deleted with the pod.
	EmptyDir []string
}

func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// DrainablePods lists the pods on a node that a drain evicts: all but
// mirror (static) pods, pods of DaemonSets and pods already terminating.
func (c *Client) DrainablePods(ctx context.Context, node string) ([]PodRef, error) {
	l, err := c.dyn.Resource(PodsGVR).Namespace("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err
	}
	var out []PodRef
	for i := range l.Items {
		if p := &l.Items[i]; drainable(p) {
			out = append(out, PodRef{Namespace: p.GetNamespace(), Name: p.GetName(), UID: string(p.GetUID()), EmptyDir: emptyDirVolumes(p)})
		}
	}
	return out, nil
}

// emptyDirVolumes names a pod's emptyDir volumes.
func emptyDirVolumes(p *unstructured.Unstructured) []string {
	vols, _, _ := unstructured.NestedSlice(p.Object, "spec", "volumes")
	var out []string
	for _, v := range vols {
		m, _ := v.(map[string]any)
		if _, ok := m["emptyDir"]; ok {
			name, _ := m["name"].(string)
			out = append(out, name)
		}
	}
	return out
}

func drainable(p *unstructured.Unstructured) bool {
	if _, mirror := p.GetAnnotations()["kubernetes.io/config.mirror"]; mirror {
		return false
	}
	if p.GetDeletionTimestamp() != nil {
		return false
	}
	for _, o := range p.GetOwnerReferences() {
		if o.Kind == "DaemonSet" && o.Controller != nil && *o.Controller {
			return false
		}
	}
	return true
}

// Evict asks the API server to evict a pod (policy/v1 Eviction), which
// honours PodDisruptionBudgets. A pod that is already gone is not an error.
func (c *Client) Evict(ctx context.Context, p PodRef) error {
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy/v1", "kind": "Eviction",
		"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace},
	}}
	_, err := c.dyn.Resource(PodsGVR).Namespace(p.Namespace).Create(ctx, ev, metav1.CreateOptions{}, "eviction")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// IsEvictionBlocked reports an eviction refused for now (a disruption
// budget would be violated): it is retried.
func IsEvictionBlocked(err error) bool {
	return err != nil && (apierrors.IsTooManyRequests(err) || strings.Contains(err.Error(), "disruption budget"))
}

// podGone reports whether the pod no longer exists (or was replaced by
// another of the same name).
func (c *Client) podGone(ctx context.Context, p PodRef) (bool, error) {
	u, err := c.dyn.Resource(PodsGVR).Namespace(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return string(u.GetUID()) != p.UID, nil
}

// DrainOptions are the choices kubectl drain leaves to its user.
type DrainOptions struct {
	// DeleteEmptyDirData allows evicting pods with emptyDir volumes, whose
	// data is deleted with them (kubectl's --delete-emptydir-data). Without
	// it such pods make Drain fail before anything is changed.
	DeleteEmptyDirData bool
}

// LocalDataError is a drain refused because pods on the node keep data
// in emptyDir volumes that their eviction would delete.
type LocalDataError struct {
	Node string
	Pods []PodRef
}

func (e *LocalDataError) Error() string {
	var l []string
	for _, p := range e.Pods {
		l = append(l, fmt.Sprintf("%s (emptyDir: %s)", p, strings.Join(p.EmptyDir, ", ")))
	}
	return fmt.Sprintf("node %s runs pods with local data in emptyDir volumes, which evicting them would delete: %s; nothing was evicted",
		e.Node, strings.Join(l, ", "))
}

// DrainIncompleteError is a drain whose time ran out with pods still on
// the node (evicted but not confirmed gone, or refused by a disruption
// budget).
type DrainIncompleteError struct {
	Node string
	Pods []string
	Err  error
}

func (e *DrainIncompleteError) Error() string {
	return fmt.Sprintf("draining node %s: pods still there when the time ran out: %s (%v)", e.Node, strings.Join(e.Pods, ", "), e.Err)
}
func (e *DrainIncompleteError) Unwrap() error { return e.Err }

// checkLocalData refuses pods with emptyDir volumes unless allowed.
func checkLocalData(node string, pods []PodRef, opts DrainOptions) error {
	if opts.DeleteEmptyDirData {
		return nil
	}
	var withData []PodRef
	for _, p := range pods {
		if len(p.EmptyDir) > 0 {
			withData = append(withData, p)
		}
	}
	if len(withData) > 0 {
		return &LocalDataError{Node: node, Pods: withData}
	}
	return nil
}

// CheckDrain reports what would stop a drain of the node before it
// starts: pods with emptyDir data that opts does not allow evicting.
func (c *Client) CheckDrain(ctx context.Context, node string, opts DrainOptions) error {
	pods, err := c.DrainablePods(ctx, node)
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	return checkLocalData(node, pods, opts)
}

// Drain cordons the node, evicts its pods (not DaemonSet or mirror pods)
// and waits until they are gone, retrying evictions a disruption budget
// refuses, until ctx ends (then a *DrainIncompleteError). Pods with
// emptyDir data are evicted only with opts.DeleteEmptyDirData; otherwise
// Drain returns a *LocalDataError before cordoning (and uncordons again
// should such a pod appear between the check and the cordon). progress is
// told what is still running.
func (c *Client) Drain(ctx context.Context, node string, opts DrainOptions, progress func(msg string, fields map[string]any)) error {
	if progress == nil {
		progress = func(string, map[string]any) {}
	}
	if err := c.CheckDrain(ctx, node, opts); err != nil {
		return err
	}
	if err := c.Cordon(ctx, node, true); err != nil {
		return fmt.Errorf("cordoning node %s: %w", node, err)
	}
	pods, err := c.DrainablePods(ctx, node)
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	if err := checkLocalData(node, pods, opts); err != nil {
		if uerr := c.Cordon(ctx, node, false); uerr != nil {
			return fmt.Errorf("%w (and uncordoning it again failed: %v)", err, uerr)
		}
		return err
	}
	delay := 500 * time.Millisecond
	for len(pods) > 0 {
		var left []PodRef
		var blocked []string
		for _, p := range pods {
			if err := c.Evict(ctx, p); err != nil {
				if IsEvictionBlocked(err) || IsUnreachable(err) {
					left = append(left, p)
					blocked = append(blocked, p.String()+": "+err.Error())
					continue
				}
				return fmt.Errorf("evicting pod %s from node %s: %w", p, node, err)
			}
			gone, err := c.podGone(ctx, p)
			if err != nil && !IsUnreachable(err) {
				return fmt.Errorf("reading pod %s: %w", p, err)
			}
			if !gone {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		names := make([]string, len(left))
		for i, p := range left {
			names[i] = p.String()
		}
		progress("draining: waiting for pods to leave the node", map[string]any{"node": node, "pods": strings.Join(names, ", "), "blocked": strings.Join(blocked, "; ")})
		select {
		case <-ctx.Done():
			return &DrainIncompleteError{Node: node, Pods: names, Err: ctx.Err()}
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
		pods = left
	}
	progress("drained", map[string]any{"node": node})
	return nil
}

// systemNamespaces hold the cluster's own pods, not workloads.
var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

// Workloads lists what a cluster holds that its users put there: pods
// outside kube-system, kube-public and kube-node-lease that have not
// finished (mirror pods excepted), and PersistentVolumeClaims in any
// namespace. Each entry reads "pod ns/name" or "persistentvolumeclaim ns/name".
func (c *Client) Workloads(ctx context.Context) ([]string, error) {
	pods, err := c.List(ctx, PodsGVR, "")
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	var out []string
	for i := range pods {
		p := &pods[i]
		if systemNamespaces[p.GetNamespace()] {
			continue
		}
		if _, mirror := p.GetAnnotations()["kubernetes.io/config.mirror"]; mirror {
			continue
		}
		if phase, _, _ := unstructured.NestedString(p.Object, "status", "phase"); phase == "Succeeded" || phase == "Failed" {
			continue
		}
		out = append(out, "pod "+p.GetNamespace()+"/"+p.GetName())
	}
	pvcs, err := c.List(ctx, PersistentVolumeClaimsGVR, "")
	if err != nil {
		return nil, fmt.Errorf("listing persistent volume claims: %w", err)
	}
	for i := range pvcs {
		out = append(out, "persistentvolumeclaim "+pvcs[i].GetNamespace()+"/"+pvcs[i].GetName())
	}
	sort.Strings(out)
	return out, nil
}
