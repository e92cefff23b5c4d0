package rke2

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// TestRKE2ParallelNodeReadsLogSafely is issue 20: the RKE2 resource reads
// its nodes in parallel, and every goroutine logs (the SSH pool's "running
// command" line, the operation's own messages) through the one context of
// the request, which carries fields and masks. It runs the resource's real
// readBack and parallel over real pooled SSH connections, with the logger
// the provider gives the pool; run it with -race.
func TestRKE2ParallelNodeReadsLogSafely(t *testing.T) {
	host := startSSHTestHost(t)
	var out lockedBuffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	// What terraform-plugin-go sets on every request's context, and the
	// provider's mask from Configure.
	ctx = tflog.SetField(ctx, "tf_rpc", "ReadResource")
	ctx = tflog.SetField(ctx, "tf_req_id", "6f1c1a52-race")
	ctx = tflog.SetField(ctx, "tf_resource_type", "homelab_rke2_cluster")
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "password", "private_key", "kubeconfig")

	pool := remote.NewPool(logging.Pool) // as provider.New does
	t.Cleanup(func() { _ = pool.Close() })
	r := &rke2ClusterResource{data: &connection.Data{Defaults: connection.Defaults{Pool: pool}}}
	m := &rke2ClusterModel{}
	for i := range 8 {
		n := rke2NodeModel{Name: types.StringValue(fmt.Sprintf("node%d", i)), SSH: host.model()}
		if i < 3 {
			m.Servers = append(m.Servers, n)
		} else {
			m.Agents = append(m.Agents, n)
		}
	}
	const token, clusterToken = "K10race-test-join-token", "K10race-test-cluster-token"
	op, ctx := r.newOp(ctx, m, token)
	servers, agents, diags := op.connect(m)
	if diags.HasError() {
		t.Fatal(diags)
	}
	all := append(append([]*clusterNode{}, servers...), agents...)

	const rounds = 4
	for range rounds {
		if _, down, err := op.readBack(ctx, all); err != nil || len(down) > 0 {
			t.Fatal(err, down)
		}
	}
	// The operation's logger, from every node at once, with the secret in
	// a message and in a field; meanwhile one node learns the cluster token
	// and masks it too, deriving a context from the shared one as join does
	// (tokenFor, clusterToken, addSecret).
	if err := parallel(all, func(n *clusterNode) error {
		if n == all[0] {
			op.addSecret(ctx, clusterToken)
		}
		n.Log("node reports "+token, map[string]any{"node": n.Name, "joining_with": "token=" + token})
		_, err := n.Inspect(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	entries, err := tflogtest.MultilineJSONDecode(strings.NewReader(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	var commands, reports int
	for _, e := range entries {
		line := fmt.Sprint(e)
		if strings.Contains(line, token) || strings.Contains(line, clusterToken) {
			t.Errorf("the token leaked into the log: %s", line)
		}
		if e["tf_req_id"] != "6f1c1a52-race" {
			t.Errorf("the request's fields are missing: %s", line)
		}
		switch msg, _ := e["@message"].(string); {
		case msg == "running command over SSH":
			commands++
		case strings.HasPrefix(msg, "node reports"):
			reports++
			if msg != "node reports ***" || e["joining_with"] != "token=***" {
				t.Errorf("not masked: %s", line)
			}
		}
	}
	// Inspect runs two commands per node: rke2 --version and reading config.yaml.
	if want := 2 * len(all) * (rounds + 1); commands != want {
		t.Errorf("%d SSH command lines logged, want %d", commands, want)
	}
	if reports != len(all) {
		t.Errorf("%d node reports logged, want %d", reports, len(all))
	}
}

// lockedBuffer is a log sink that tests read while goroutines may still write.
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

// TestRKE2SensitiveConfigMaskedInLogs: the values of the cluster's and
// the nodes' sensitive_config are masked in every log line and field of
// the operation and in the error texts it shows (issue 13 item 9).
func TestRKE2SensitiveConfigMaskedInLogs(t *testing.T) {
	var out lockedBuffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	const clusterSecret, nodeSecret = "wJalrXUtnFEMI-K7MDENG-cluster", "agent-token-of-node-w1"
	m := &rke2ClusterModel{SensitiveConfig: strMap("etcd-s3-secret-key", clusterSecret),
		Agents: []rke2NodeModel{{Name: types.StringValue("w1"), SensitiveConfig: strMap("agent-token", nodeSecret)}}}
	op, ctx := (&rke2ClusterResource{}).newOp(ctx, m, "K10-the-join-token")
	op.log("writing config.yaml with "+clusterSecret, map[string]any{"node": "w1", "line": "agent-token: " + nodeSecret})
	logging.Debug(ctx, "through the request context: "+nodeSecret, nil)
	if got := op.redact("rke2 failed: etcd-s3-secret-key: " + clusterSecret + " agent-token: " + nodeSecret); strings.Contains(got, clusterSecret) || strings.Contains(got, nodeSecret) {
		t.Errorf("error text not redacted: %s", got)
	}
	entries, err := tflogtest.MultilineJSONDecode(strings.NewReader(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want 2: %s", len(entries), out.String())
	}
	for _, e := range entries {
		if line := fmt.Sprint(e); strings.Contains(line, clusterSecret) || strings.Contains(line, nodeSecret) {
			t.Errorf("a sensitive_config value leaked into the log: %s", line)
		}
	}
}
