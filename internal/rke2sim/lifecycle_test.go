package rke2sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// fakeNodesAPI records PATCH requests to nodes and answers them with the
// node in fixed JSON.
type fakeNodesAPI struct {
	mu      sync.Mutex
	patches []string // "PATH BODY"
}

func (f *fakeNodesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPatch {
		http.Error(w, "unexpected "+r.Method, http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	f.patches = append(f.patches, r.URL.Path+" "+string(body))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	name := r.URL.Path[strings.LastIndex(strings.TrimSuffix(r.URL.Path, "/status"), "/")+1:]
	name = strings.TrimSuffix(name, "/status")
	_, _ = io.WriteString(w, `{"apiVersion":"v1","kind":"Node","metadata":{"name":"`+name+`","resourceVersion":"2"}}`)
}

func (f *fakeNodesAPI) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.patches
	f.patches = nil
	return out
}

func testLifecycle(t *testing.T) (*nodeLifecycle, *fakeNodesAPI) {
	t.Helper()
	api := &fakeNodesAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return newNodeLifecycle(dyn, newLogger(io.Discard)), api
}

func testNode(name, ready, heartbeat string, taints ...string) *unstructured.Unstructured {
	var ts []any
	for _, key := range taints {
		ts = append(ts, map[string]any{"key": key, "effect": "NoSchedule"})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": name, "resourceVersion": "1"},
		"spec":     map[string]any{"taints": ts},
		"status": map[string]any{"conditions": []any{
			map[string]any{"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat},
		}},
	}}
}

// patchTaints returns the taint keys a patch body sets.
func patchTaints(t *testing.T, body string) []string {
	t.Helper()
	var p struct {
		Metadata struct{ ResourceVersion string }
		Spec     struct {
			Taints []struct{ Key, Effect string }
		}
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Metadata.ResourceVersion == "" {
		t.Errorf("taint patch without resourceVersion precondition: %s", body)
	}
	keys := []string{}
	for _, tt := range p.Spec.Taints {
		keys = append(keys, tt.Key)
	}
	return keys
}

func TestNodeLifecycleTaints(t *testing.T) {
	l, api := testLifecycle(t)
	ctx := context.Background()
	now := time.Now()
	hb := now.UTC().Format(time.RFC3339)

	// Ready: the not-ready taint the admission plugin added goes, the
	// user's stays.
	if err := l.reconcile(ctx, testNode("a", "True", hb, "gpu", taintNotReady), now); err != nil {
		t.Fatal(err)
	}
	p := api.take()
	if len(p) != 1 || !strings.HasPrefix(p[0], "/api/v1/nodes/a ") || strings.Join(patchTaints(t, strings.SplitN(p[0], " ", 2)[1]), ",") != "gpu" {
		t.Errorf("Ready node patches: %q", p)
	}

	// Nothing to do.
	if err := l.reconcile(ctx, testNode("b", "True", hb, "gpu"), now); err != nil {
		t.Fatal(err)
	}
	if p := api.take(); len(p) != 0 {
		t.Errorf("unexpected patches %q", p)
	}

	// NotReady: the not-ready taint is added.
	if err := l.reconcile(ctx, testNode("c", "False", hb), now); err != nil {
		t.Fatal(err)
	}
	p = api.take()
	if len(p) != 1 || strings.Join(patchTaints(t, strings.SplitN(p[0], " ", 2)[1]), ",") != taintNotReady {
		t.Errorf("NotReady node patches: %q", p)
	}
}

func TestNodeLifecycleStaleHeartbeat(t *testing.T) {
	l, api := testLifecycle(t)
	ctx := context.Background()
	t0 := time.Now()
	hb := t0.Add(-time.Hour).UTC().Format(time.RFC3339) // the node's clock does not matter

	if err := l.reconcile(ctx, testNode("d", "True", hb), t0); err != nil {
		t.Fatal(err)
	}
	if p := api.take(); len(p) != 0 {
		t.Fatalf("first observation patched %q; staleness must be measured from when this server saw the heartbeat", p)
	}
	if err := l.reconcile(ctx, testNode("d", "True", hb), t0.Add(nodeMonitorGracePeriod-time.Second)); err != nil {
		t.Fatal(err)
	}
	if p := api.take(); len(p) != 0 {
		t.Fatalf("patched within the grace period: %q", p)
	}
	// A new heartbeat restarts the clock.
	hb2 := t0.UTC().Format(time.RFC3339)
	if err := l.reconcile(ctx, testNode("d", "True", hb2), t0.Add(nodeMonitorGracePeriod)); err != nil {
		t.Fatal(err)
	}
	if p := api.take(); len(p) != 0 {
		t.Fatalf("patched right after a new heartbeat: %q", p)
	}
	if err := l.reconcile(ctx, testNode("d", "True", hb2), t0.Add(2*nodeMonitorGracePeriod+time.Second)); err != nil {
		t.Fatal(err)
	}
	p := api.take()
	if len(p) != 2 || !strings.HasPrefix(p[0], "/api/v1/nodes/d/status ") || !strings.Contains(p[0], `"status":"Unknown"`) || !strings.Contains(p[0], "NodeStatusUnknown") {
		t.Fatalf("stale node patches: %q", p)
	}
	if keys := patchTaints(t, strings.SplitN(p[1], " ", 2)[1]); strings.Join(keys, ",") != taintUnreachable {
		t.Errorf("stale node taints %v, want %s", keys, taintUnreachable)
	}
}

func TestAgentWaitsForServer(t *testing.T) {
	simRoot(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg, err := LoadConfig("agent", []string{"--server", "https://" + addr, "--token", "x", "--node-name", "w", "--node-ip", "127.0.0.1"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	log := newLogger(&syncWriter{w: &out})
	if code := runAgent(ctx, cfg, log); code != 0 {
		t.Errorf("agent exited %d while the server was unreachable; it must wait (exit 0 when stopped)", code)
	}
	if ctx.Err() == nil {
		t.Error("agent returned before it was stopped")
	}
	if s := out.String(); !strings.Contains(s, "Waiting to retrieve agent configuration") || strings.Count(s, "Waiting to retrieve") != 1 {
		t.Errorf("log:\n%s\nwant one waiting message (repeats are deduplicated)", s)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
