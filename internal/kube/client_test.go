package kube_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
)

// TestGetTellsMissingObjectFromMissingType asks a real kube-apiserver:
// a pool that does not exist is kube.ErrNotFound, while the same 404
// caused by MetalLB's CRDs being absent is a *kube.TypeNotServedError that
// is not ErrNotFound (state must survive it). ClusterID is kube-system's UID.
func TestGetTellsMissingObjectFromMissingType(t *testing.T) {
	ctx, k, c := startKube(t)

	// No CRDs: the type is not served.
	_, err := c.Get(ctx, kube.IPAddressPools, "metallb-system", "lan")
	var tns *kube.TypeNotServedError
	if !errors.As(err, &tns) || !errors.Is(err, kube.ErrTypeNotServed) || errors.Is(err, kube.ErrNotFound) {
		t.Fatalf("Get without CRDs: %v, want a TypeNotServedError that is not ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "ipaddresspools.metallb.io") || !strings.Contains(err.Error(), k.URL) {
		t.Errorf("error does not name the CRD and the API server: %v", err)
	}
	if served, err := c.Served(ctx, kube.IPAddressPools); served || err != nil {
		t.Errorf("Served without CRDs = %v, %v", served, err)
	}

	if err := k.InstallMetalLBCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, kube.IPAddressPools, "metallb-system", "lan")
	if !errors.Is(err, kube.ErrNotFound) || errors.Is(err, kube.ErrTypeNotServed) {
		t.Fatalf("Get of a missing pool: %v, want ErrNotFound", err)
	}
	// A core type that is served, an object that is not there.
	if _, err := c.Get(ctx, kube.NamespacesGVR, "", "no-such-namespace"); !errors.Is(err, kube.ErrNotFound) {
		t.Fatalf("Get of a missing namespace: %v, want ErrNotFound", err)
	}

	// Only the CRDs go: one group, several types.
	if err := k.DeleteMetalLBCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, kube.L2Advertisements, "metallb-system", "lan"); !errors.Is(err, kube.ErrTypeNotServed) {
		t.Fatalf("Get after deleting the CRDs: %v, want ErrTypeNotServed", err)
	}

	id, err := c.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := k.Do(ctx, http.MethodGet, "/api/v1/namespaces/kube-system", nil, "")
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"uid":"`+id+`"`) {
		t.Fatalf("ClusterID %q is not kube-system's UID: HTTP %d %s %v", id, status, body, err)
	}
}
