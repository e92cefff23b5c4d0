package kube_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
)

// Bodies in the form kube-apiserver answers them (a metav1.Status for API
// errors, Go's plain "404 page not found" for a group it does not serve).
const (
	statusNotFound  = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"gone\" not found","reason":"NotFound","details":{"name":"gone","kind":"nodes"},"code":404}`
	statusForbidden = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"secret\" is forbidden: User \"system:anonymous\" cannot get resource \"nodes\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"name":"secret","kind":"nodes"},"code":403}`
	coreDiscovery   = `{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"nodes","singularName":"node","namespaced":false,"kind":"Node","verbs":["get","list"]}]}`
)

// fakeAPIServer answers like kube-apiserver; discovery is the status of
// GET /api/v1 (200: nodes are served).
func fakeAPIServer(t *testing.T, discovery int) *kube.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json := func(code int, body string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}
		switch r.URL.Path {
		case "/api/v1":
			if discovery != http.StatusOK {
				json(discovery, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcd unavailable","reason":"ServiceUnavailable","code":503}`)
				return
			}
			json(http.StatusOK, coreDiscovery)
		case "/api/v1/nodes/gone":
			json(http.StatusNotFound, statusNotFound)
		case "/api/v1/nodes/secret":
			json(http.StatusForbidden, statusForbidden)
		default:
			http.NotFound(w, r) // "404 page not found", as for an unserved group
		}
	}))
	t.Cleanup(srv.Close)
	return client(t, srv.URL)
}

func client(t *testing.T, url string) *kube.Client {
	t.Helper()
	c, err := kube.NewClient(kube.Access{Timeout: 5 * time.Second, Kubeconfig: []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, url))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Only a 404 for a type the API server says it serves is ErrNotFound: a
// node that is gone. A refused read, a 404 whose type discovery cannot
// confirm, a type that is not served and an API server that does not
// answer are other errors, which keep state.
func TestNodeNotFound(t *testing.T) {
	ctx := t.Context()
	c := fakeAPIServer(t, http.StatusOK)
	if _, err := c.Node(ctx, "gone"); !errors.Is(err, kube.ErrNotFound) {
		t.Errorf("missing node: %v, want ErrNotFound", err)
	}
	if _, err := c.Node(ctx, "secret"); err == nil || errors.Is(err, kube.ErrNotFound) {
		t.Errorf("forbidden node: %v, want an error that is not ErrNotFound", err)
	}
	_, err := c.Get(ctx, kube.IPAddressPools, "metallb-system", "lan")
	var tns *kube.TypeNotServedError
	if !errors.As(err, &tns) || errors.Is(err, kube.ErrNotFound) {
		t.Errorf("unserved type: %v, want a TypeNotServedError that is not ErrNotFound", err)
	}

	if _, err := fakeAPIServer(t, http.StatusServiceUnavailable).Node(ctx, "gone"); err == nil || errors.Is(err, kube.ErrNotFound) {
		t.Errorf("404 with failing discovery: %v, want an error that is not ErrNotFound", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	if _, err := client(t, "http://"+addr).Node(ctx, "gone"); err == nil || errors.Is(err, kube.ErrNotFound) || !kube.IsUnreachable(err) {
		t.Errorf("unreachable API server: %v, want an unreachable error that is not ErrNotFound", err)
	}
}
