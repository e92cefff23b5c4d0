package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestRetryTimeoutKeepsTheCause: when the time runs out while the API
// server keeps answering "not found" (a namespace that does not exist),
// the error still says not-ready, so the diagnostic does not claim the API
// could not be reached.
func TestRetryTimeoutKeepsTheCause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "MetalLB-System")
	err := Retry(ctx, IsNotReady, func(int, error) {}, func() error { return notFound })
	if !IsNotReady(err) || !apierrors.IsNotFound(err) {
		t.Errorf("Retry's error after the deadline: %v; IsNotReady = %t, want true", err, IsNotReady(err))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Retry's error after the deadline does not wrap context.DeadlineExceeded: %v", err)
	}
}
