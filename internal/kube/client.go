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
//
// A missing object is an error matching ErrNotFound under errors.Is (from
// Get and Node), and only a definite one: the API server answered 404 and
// its discovery says that it serves the object's type. A type that is not
// served (a CRD not installed) is a *TypeNotServedError, and an API server
// that cannot be reached, times out or refuses the credentials is never
// ErrNotFound either.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
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
	http    *http.Client
	base    *url.URL
	host    string
	timeout time.Duration
}

// ErrNotFound is a definite "this object does not exist": the API server
// answered 404 for it and, asked again, said that it serves the object's
// type. Only this error lets a resource drop an object from state.
var ErrNotFound = errors.New("object not found")

// ErrTypeNotServed matches a *TypeNotServedError.
var ErrTypeNotServed = errors.New("type not served")

// TypeNotServedError reports that the API server does not serve a type at
// all: the CRD that defines it is not installed (or not established yet).
// It says nothing about whether objects of that type would exist once the
// CRD is back, so it is never a "not found".
type TypeNotServedError struct {
	GVR  schema.GroupVersionResource
	Host string
}

func (e *TypeNotServedError) Error() string {
	crd := e.GVR.Resource
	if e.GVR.Group != "" {
		crd += "." + e.GVR.Group
	}
	return fmt.Sprintf("the Kubernetes API at %s does not serve %s %s: its CustomResourceDefinition %s is not installed (or not established)",
		e.Host, e.GVR.GroupVersion().String(), e.GVR.Resource, crd)
}

// Is makes errors.Is(err, ErrTypeNotServed) match.
func (e *TypeNotServedError) Is(target error) bool { return target == ErrTypeNotServed }

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
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	base, _, err := rest.DefaultServerUrlFor(rc)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, http: hc, base: base, host: rc.Host, timeout: a.Timeout}, nil
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

// Get returns an object. A 404 is checked against discovery: when the
// type is served, the error matches ErrNotFound; when it
// is not (its CRD is missing), it is a *TypeNotServedError, which matches
// neither. A failed check is returned as it is, matching neither either.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	u, err := bounded(ctx, c, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return c.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if err == nil || !apierrors.IsNotFound(err) {
		return u, err
	}
	served, serr := bounded(ctx, c, func(ctx context.Context) (bool, error) { return c.Served(ctx, gvr) })
	switch {
	case serr != nil:
		return nil, fmt.Errorf("%s %s/%s answered 404, and checking whether the API serves its type failed: %w", gvr.Resource, ns, name, serr)
	case !served:
		return nil, &TypeNotServedError{GVR: gvr, Host: c.host}
	}
	return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
}

// Served reports whether the API server serves the type, asking discovery
// (readable by every authenticated user, unlike CRDs themselves).
func (c *Client) Served(ctx context.Context, gvr schema.GroupVersionResource) (bool, error) {
	gv := "/apis/" + gvr.Group + "/" + gvr.Version
	if gvr.Group == "" {
		gv = "/api/" + gvr.Version
	}
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + gv
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return false, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, nil // the group/version is not served at all
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("discovery of %s: HTTP %d: %s", gv, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return false, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

// ClusterID is the UID of the kube-system namespace, which identifies a
// cluster: it is created once with the cluster and survives everything
// but a rebuild, unlike the API server's address or the kubeconfig's
// context names.
func (c *Client) ClusterID(ctx context.Context) (string, error) {
	uid, err := c.NamespaceUID(ctx, "kube-system")
	if err != nil {
		return "", fmt.Errorf("reading the cluster's identity (the UID of namespace kube-system): %w", err)
	}
	if uid == "" {
		return "", errors.New("reading the cluster's identity: namespace kube-system has no UID")
	}
	return uid, nil
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

// MergePatch applies a JSON merge patch (RFC 7386: null removes a field)
// as an update by the provider's field manager, and returns the object as
// the server then holds it. A patch carrying metadata.resourceVersion
// fails with a conflict when the object changed since that version.
func (c *Client) MergePatch(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, patch map[string]any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	return bounded(ctx, c, func(ctx context.Context) (*unstructured.Unstructured, error) {
		return c.dyn.Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: FieldManager})
	})
}

// Delete deletes an object; a missing one is not an error, and neither is
// a missing type (no object of a type that is not served can exist).
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	_, err := bounded(ctx, c, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.dyn.Resource(gvr).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
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
			return fmt.Errorf("still failing when the time ran out (%w): %w", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}
