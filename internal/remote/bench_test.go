package remote_test

import (
	"context"
	"sync"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// benchConcurrency is how many commands run at once in one benchmark op,
// like a plan refreshing that many resources on one host.
const benchConcurrency = 16

// BenchmarkTransport compares one op of benchConcurrency concurrent commands
// over the pooled connection with the same commands each on a connection of
// its own, as providers without a pool do. scripts/bench prints the ratio.
func BenchmarkTransport(b *testing.B) {
	// Let the per-command variant open its connections without sshd's
	// MaxStartups throttling, so the comparison measures connection cost.
	s := startSSHD(b, "MaxStartups 200")
	// The unprivileged user's login shell is dash, which reads no rc files:
	// the numbers measure the transport, not root's ~/.bashrc.
	cfg := config(s, testbed.SudoUser)
	ctx := context.Background()
	run := func(b *testing.B, get func() (remote.Runner, func())) {
		for b.Loop() {
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, done := get()
					defer done()
					if _, err := r.Run(ctx, remote.Command("true")); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
	}
	b.Run("pooled", func(b *testing.B) {
		p := remote.NewPool(nil)
		defer p.Close()
		run(b, func() (remote.Runner, func()) { return runner(b, p, cfg), func() {} })
		b.ReportMetric(float64(p.Dials())/float64(b.N), "dials/op")
	})
	b.Run("dial-per-command", func(b *testing.B) {
		run(b, func() (remote.Runner, func()) {
			p := remote.NewPool(nil)
			return runner(b, p, cfg), func() { _ = p.Close() }
		})
	})
}
