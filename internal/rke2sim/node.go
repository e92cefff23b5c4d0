package rke2sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// HeartbeatInterval is how often a simulated node posts its status.
const HeartbeatInterval = 10 * time.Second

// Ready condition of a stopped simulator.
const (
	StoppedReason  = "KubeletNotReady"
	StoppedMessage = "rke2 simulator stopped"
)

var nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// nodeAgent registers one Node and keeps its status, as a kubelet would.
type nodeAgent struct {
	client dynamic.Interface
	spec   nodeSpec
	log    *logger

	mu         sync.Mutex
	ready      bool
	transition time.Time // of the Ready condition
	facts      hostFacts
}

func newNodeAgent(client dynamic.Interface, spec nodeSpec, log *logger) *nodeAgent {
	return &nodeAgent{client: client, spec: spec, log: log, facts: readHostFacts()}
}

func (n *nodeAgent) nodes() dynamic.ResourceInterface { return n.client.Resource(nodesGVR) }

// labels are the labels the node sets: its config's and a kubelet's
// defaults.
func (n *nodeAgent) labels() map[string]any {
	out := map[string]any{
		"kubernetes.io/hostname":           n.spec.Name,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               runtime.GOARCH,
		"beta.kubernetes.io/os":            "linux",
		"beta.kubernetes.io/arch":          runtime.GOARCH,
		"node.kubernetes.io/instance-type": "rke2",
	}
	for k, v := range n.spec.Labels {
		out[k] = v
	}
	return out
}

func (n *nodeAgent) annotations() map[string]any {
	return map[string]any{
		"rke2.io/hostname":    n.spec.Hostname,
		"rke2.io/internal-ip": n.spec.InternalIP,
	}
}

// register creates the Node, or on a restart adds the config's labels to
// the existing one (taints are only set at creation, as the kubelet does),
// then posts a Ready status.
func (n *nodeAgent) register(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	_, err := n.nodes().Get(rctx, n.spec.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		taints := []any{}
		for _, t := range n.spec.Taints {
			m := map[string]any{"key": t.Key, "effect": t.Effect}
			if t.Value != "" {
				m["value"] = t.Value
			}
			taints = append(taints, m)
		}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "Node",
			"metadata": map[string]any{
				"name":        n.spec.Name,
				"labels":      n.labels(),
				"annotations": n.annotations(),
			},
			"spec": map[string]any{"taints": taints},
		}}
		if _, err := n.nodes().Create(rctx, obj, metav1.CreateOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", n.spec.Name, err)
		}
		n.log.Infof("Registered node %s", n.spec.Name)
	case err != nil:
		return fmt.Errorf("getting node %s: %w", n.spec.Name, err)
	default:
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": n.labels(), "annotations": n.annotations()}})
		if _, err := n.nodes().Patch(rctx, n.spec.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
			return fmt.Errorf("updating labels of node %s: %w", n.spec.Name, err)
		}
		n.log.Infof("Node %s already registered; labels updated", n.spec.Name)
	}
	return n.postStatus(ctx, true, "KubeletReady", "kubelet is posting ready status")
}

// postStatus writes the node's status with Ready = ready.
func (n *nodeAgent) postStatus(ctx context.Context, ready bool, reason, message string) error {
	ctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	now := time.Now().UTC()
	n.mu.Lock()
	if n.transition.IsZero() || n.ready != ready {
		n.transition = now
	}
	n.ready = ready
	transition := n.transition
	n.mu.Unlock()

	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	cond := func(typ, status, reason, message string, since time.Time) map[string]any {
		return map[string]any{
			"type": typ, "status": status, "reason": reason, "message": message,
			"lastHeartbeatTime": ts(now), "lastTransitionTime": ts(since),
		}
	}
	readyStatus := "False"
	if ready {
		readyStatus = "True"
	}
	addresses := []any{map[string]any{"type": "InternalIP", "address": n.spec.InternalIP}}
	if n.spec.ExternalIP != "" {
		addresses = append(addresses, map[string]any{"type": "ExternalIP", "address": n.spec.ExternalIP})
	}
	// RKE2 runs the kubelet with --hostname-override=<node name>.
	addresses = append(addresses, map[string]any{"type": "Hostname", "address": n.spec.Name})
	resources := map[string]any{
		"cpu":               strconv.Itoa(runtime.NumCPU()),
		"memory":            n.facts.memory,
		"pods":              "110",
		"ephemeral-storage": n.facts.storage,
	}
	f := n.facts
	status := map[string]any{
		"conditions": []any{
			cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", f.started),
			cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", f.started),
			cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", f.started),
			cond("Ready", readyStatus, reason, message, transition),
		},
		"addresses":   addresses,
		"capacity":    resources,
		"allocatable": resources,
		"daemonEndpoints": map[string]any{
			"kubeletEndpoint": map[string]any{"Port": 10250},
		},
		"nodeInfo": map[string]any{
			"machineID":               f.machineID,
			"systemUUID":              f.machineID,
			"bootID":                  f.bootID,
			"kernelVersion":           f.kernel,
			"osImage":                 f.osImage,
			"containerRuntimeVersion": "rke2-simulator://" + Version,
			"kubeletVersion":          Version,
			"kubeProxyVersion":        Version,
			"operatingSystem":         "linux",
			"architecture":            runtime.GOARCH,
		},
	}
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	if _, err := n.nodes().Patch(ctx, n.spec.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}, "status"); err != nil {
		return fmt.Errorf("updating status of node %s: %w", n.spec.Name, err)
	}
	return nil
}

// heartbeat posts a Ready status every HeartbeatInterval until ctx ends.
func (n *nodeAgent) heartbeat(ctx context.Context) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.postStatus(ctx, true, "KubeletReady", "kubelet is posting ready status"); err != nil {
			if ctx.Err() == nil {
				n.log.Oncef("heartbeat", "error", "Node heartbeat failed: %v", err)
			}
			continue
		}
		n.log.Reset("heartbeat")
	}
}

// markStopped sets Ready=False (KubeletNotReady, "rke2 simulator
// stopped"); ctx should be a fresh, short one.
func (n *nodeAgent) markStopped(ctx context.Context) {
	if err := n.postStatus(ctx, false, StoppedReason, StoppedMessage); err != nil {
		n.log.Warnf("Could not mark node %s not ready: %v", n.spec.Name, err)
		return
	}
	n.log.Infof("Node %s marked NotReady", n.spec.Name)
}

// hostFacts are the machine facts of nodeInfo and capacity.
type hostFacts struct {
	machineID, bootID, kernel, osImage string
	memory, storage                    string
	started                            time.Time
}

func readHostFacts() hostFacts {
	f := hostFacts{started: time.Now().UTC(), memory: "0", storage: "0"}
	f.machineID = firstLine("/etc/machine-id")
	f.bootID = firstLine("/proc/sys/kernel/random/boot_id")
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		f.kernel = utsString(u.Release[:])
	}
	f.osImage = "Linux"
	if file, err := os.Open("/etc/os-release"); err == nil {
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				f.osImage = strings.Trim(v, `"'`)
			}
		}
		file.Close()
	}
	if file, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				f.memory = fields[1] + "Ki"
			}
		}
		file.Close()
	}
	var st syscall.Statfs_t
	if syscall.Statfs("/", &st) == nil {
		f.storage = strconv.FormatUint(st.Blocks*uint64(st.Bsize)/1024, 10) + "Ki"
	}
	return f
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

func utsString(chars []int8) string {
	var b strings.Builder
	for _, c := range chars {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
