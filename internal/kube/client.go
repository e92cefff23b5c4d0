// Package kube talks to a Kubernetes API server for resources that manage
// Kubernetes objects (MetalLB address pools). It imports nothing from Terraform.
//
// Dependency choice: it uses client-go's dynamic client with unstructured
// objects, not MetalLB's typed API module (go.universe.tf/metallb/api).
// The typed module brings controller-runtime and MetalLB's own dependency tree
// on top of client-go. The dynamic client needs only client-go and apimachinery,
// which any Kubernetes client needs anyway, and it can talk to a cluster whose
// MetalLB CRDs are not installed yet, so the provider can wait for them
// instead of failing to build a typed scheme.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager of the provider.
const FieldManager = "terraform-provider-homelab"

// Access says how to reach a cluster. Kubeconfig (content) wins over
// KubeconfigPath; with neither, $KUBECONFIG or ~/.kube/config is used.
type Access struct {
	Kubeconfig     []byte
	KubeconfigPath string
	Context        string
}

// Client is a dynamic Kubernetes client.
type Client struct {
	dyn  dynamic.Interface
	host string
}

// NewClient builds a client from a kubeconfig.
func NewClient(a Access) (*Client, error) {
	var cfg clientcmd.ClientConfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.Context}
	if len(a.Kubeconfig) > 0 {
		raw, err := clientcmd.Load(a.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("parsing the kubeconfig: %w", err)
		}
		cfg = clientcmd.NewDefaultClientConfig(*raw, overrides)
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if a.KubeconfigPath != "" {
			rules.ExplicitPath = a.KubeconfigPath
		}
		cfg = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	}
	rc, err := cfg.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	rc.Timeout = 30 * time.Second
	rc.UserAgent = FieldManager
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, host: rc.Host}, nil
}

// Host is the API server URL.
func (c *Client) Host() string { return c.host }

// Get returns an object; a missing object (or a missing type, when its CRD
// is not installed) is an error matching IsNotFound.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	return c.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// List returns the objects of a type in a namespace ("" for all).
func (c *Client) List(ctx context.Context, gvr schema.GroupVersionResource, ns string) ([]unstructured.Unstructured, error) {
	l, err := c.dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// Apply writes obj with server-side apply under the provider's field
// manager. Without force, fields owned by other managers are not taken
// over: a conflict is returned instead.
func (c *Client) Apply(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, force bool) (*unstructured.Unstructured, error) {
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return c.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
}

// Delete deletes an object; a missing one is not an error.
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	err := c.dyn.Resource(gvr).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// IsNotFound reports that the object, or its type, does not exist.
func IsNotFound(err error) bool {
	return err != nil && apierrors.IsNotFound(err)
}

// IsUnreachable reports that the API server could not be reached.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "connection refused") ||
		apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err)
}

// IsNotReady reports errors that go away once an add-on finishes installing:
// its CRDs not yet served, its namespace not yet created, or its validating
// webhook not yet answering.
func IsNotReady(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	switch {
	case apierrors.IsNotFound(err):
		return true // type (CRD) or namespace not there yet
	case strings.Contains(msg, "failed calling webhook") || strings.Contains(msg, "no endpoints available for service"):
		return true
	case strings.Contains(msg, "connection refused") && strings.Contains(msg, "webhook"):
		return true
	case strings.Contains(msg, "the server could not find the requested resource"):
		return true
	}
	return false
}

// Retry runs f until it succeeds, fails with an error that is not
// retryable, or ctx ends, backing off between attempts. progress is called
// before each wait.
func Retry(ctx context.Context, retryable func(error) bool, progress func(attempt int, err error), f func() error) error {
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !retryable(err) {
			return err
		}
		progress(attempt, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing when the time ran out (%w): %v", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}
