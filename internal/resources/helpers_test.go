package resources_test

import (
	"context"
	"testing"
	"time"
)

// ctxT is a context bounded for one out-of-band action of a test.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
