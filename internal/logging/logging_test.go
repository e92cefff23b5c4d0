package logging_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
)

const secret = "s3cret-join-token"

// requestContext is a context like the one the provider gets for a request:
// a root logger writing JSON to out, the fields terraform-plugin-go sets on
// every request, the mask Configure sets and the mask of a resource's secret.
func requestContext(out *lockedBuffer) context.Context {
	ctx := tflogtest.RootLogger(context.Background(), out)
	ctx = tflog.SetField(ctx, "tf_rpc", "ApplyResourceChange")
	ctx = tflog.SetField(ctx, "tf_req_id", "9e0b7c1d-race")
	ctx = tflog.SetField(ctx, "tf_resource_type", "homelab_rke2_cluster")
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "password", "private_key", "kubeconfig")
	ctx = tflog.MaskMessageStrings(ctx, secret)
	return tflog.MaskAllFieldValuesStrings(ctx, secret)
}

// TestConcurrentLoggingThroughOneContext is issue 20: masking rewrote the
// fields map stored in the context on every call, so goroutines logging
// through one context wrote one map at once (fatal error: concurrent map
// writes; a DATA RACE under -race).
func TestConcurrentLoggingThroughOneContext(t *testing.T) {
	var out lockedBuffer
	ctx := requestContext(&out)
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				fields := map[string]any{"node": fmt.Sprint("node", g), "i": i, "command": "join --token " + secret, "password": "hunter2"}
				if i%2 == 0 {
					logging.Debug(ctx, "running command over SSH with "+secret, fields)
				} else {
					logging.Info(ctx, "running command over SSH with "+secret, fields)
				}
			}
		})
	}
	wg.Wait()
	entries, err := tflogtest.MultilineJSONDecode(strings.NewReader(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != goroutines*each {
		t.Fatalf("%d entries, want %d", len(entries), goroutines*each)
	}
	for _, e := range entries {
		if line := fmt.Sprint(e); strings.Contains(line, secret) || strings.Contains(line, "hunter2") {
			t.Fatalf("a secret leaked: %s", line)
		}
		if e["@message"] != "running command over SSH with ***" || e["command"] != "join --token ***" || e["password"] != "***" || e["tf_req_id"] != "9e0b7c1d-race" {
			t.Fatalf("entry not masked or lacking the request's fields: %v", e)
		}
	}
}

// lockedBuffer is a log sink that may be written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
