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

// DefaultTimeout bounds each request to the API server when Access.Timeout
// is not set.
const DefaultTimeout = 30 * time.Second

// Access says how to reach a cluster. Kubeconfig (content) wins over
// KubeconfigPath; with neither, $KUBECONFIG or ~/.kube/config is used.
type Access struct {
	Kubeconfig     []byte
	KubeconfigPath string
	Context        string
	// Timeout bounds each request to the API server, from dialling to the
	// last byte of the answer (default DefaultTimeout), so that an API
	// server or etcd that stops answering cannot hang a plan.
	Timeout time.Duration
}

// Client is a dynamic Kubernetes client.
type Client struct {
	dyn     dynamic.Interface
	host    string
	timeout time.Duration
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
	if a.Timeout < 0 {
		return nil, fmt.Errorf("negative timeout %s", a.Timeout)
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	rc.Timeout = a.Timeout
	rc.UserAgent = FieldManager
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, host: rc.Host, timeout: a.Timeout}, nil
}

// Timeout is the bound of each request.
func (c *Client) Timeout() time.Duration { return c.timeout }

// NoAnswerError is a request the API server did not answer within the
// client's timeout. It matches IsUnreachable.
type NoAnswerError struct {
	Host    string
	Timeout time.Duration
	Err     error
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("the Kubernetes API at %s did not answer within %s: %v", e.Host, e.Timeout, e.Err)
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

// bounded runs one request with the client's timeout as its deadline too
// (the HTTP client's timeout does not cover everything client-go does
// around a request) and turns a timeout into a NoAnswerError.
func bounded[T any](ctx context.Context, c *Client, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := f(ctx)
	if err != nil && isTimeout(ctx, err) {
		err = &NoAnswerError{Host: c.host, Timeout: c.timeout, Err: err}
	}
	return v, err
}

func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded ||
		(errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "Client.Timeout exceeded")
}

// Host is the API server URL.
func (c *Client) Host() string { return c.host }

// Get returns an object; a missing object (or a missing type, when its CRD
// is not installed) is an error matching IsNotFound.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	return bounded(ctx, c, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return c.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	})
}

// List returns the objects of a type in a namespace ("" for all).
func (c *Client) List(ctx context.Context, gvr schema.GroupVersionResource, ns string) ([]unstructured.Unstructured, error) {
	l, err := bounded(ctx, c, func(ctx context.Context) (*unstructured.UnstructuredList, error) {
		return c.dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	})
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
	return bounded(ctx, c, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return c.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	})
}

// Delete deletes an object; a missing one is not an error.
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	_, err := bounded(ctx, c, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.dyn.Resource(gvr).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	})
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
	var na *NoAnswerError
	return errors.As(err, &na) || errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "connection refused") ||
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
