package logging_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/hashicorp/terraform-plugin-log/tfsdklog"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
)

// serialized is the alternative fix measured against the package's: log
// straight through the shared context, one call at a time. Masking then
// rewrites the shared fields map under the lock.
var serializedMu sync.Mutex

func serialized(ctx context.Context, msg string, fields map[string]any) {
	serializedMu.Lock()
	defer serializedMu.Unlock()
	tflog.Debug(ctx, msg, fields)
}

// benchContext is a request's context as in production: the fields
// terraform-plugin-go sets, Configure's mask and a resource's secret. At
// level "trace" every message is formatted (to io.Discard); at "off" (TF_LOG
// unset, the usual case) none is, but masking still runs on every call.
func benchContext(b *testing.B, level string) context.Context {
	var ctx context.Context
	switch level {
	case "trace":
		ctx = tflogtest.RootLogger(context.Background(), io.Discard)
	case "off":
		b.Setenv("HOMELAB_BENCH_TF_LOG", "off")
		ctx = tfsdklog.NewRootProviderLogger(context.Background(), tfsdklog.WithLevelFromEnv("HOMELAB_BENCH_TF_LOG"))
	}
	ctx = tflog.SetField(ctx, "tf_provider_addr", "registry.opentofu.org/terraform-homelab/homelab")
	ctx = tflog.SetField(ctx, "tf_rpc", "ApplyResourceChange")
	ctx = tflog.SetField(ctx, "tf_req_id", "9e0b7c1d-4a51-4b9e-8f0e-2b7d1f3c5a60")
	ctx = tflog.SetField(ctx, "tf_resource_type", "homelab_rke2_cluster")
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "password", "private_key", "kubeconfig")
	ctx = tflog.MaskMessageStrings(ctx, secret)
	return tflog.MaskAllFieldValuesStrings(ctx, secret)
}

// BenchmarkLogging compares the cost of one log call (the SSH pool's
// "running command" line) with each goroutine-safe strategy: a private copy
// of the logger options per call (what the package does) and one global
// lock around the call. "parallel" logs from GOMAXPROCS goroutines through
// one context, as the RKE2 resource's node operations do; its ns/op is wall
// time per call. cpu-ns/op is the CPU time the process spent per call, less
// sensitive to other work on the machine. It then prints both strategies and
// their ratios for each case.
func BenchmarkLogging(b *testing.B) {
	strategies := []struct {
		name string
		log  func(context.Context, string, map[string]any)
	}{
		{"copy-per-call", logging.Pool},
		{"serialized", serialized},
	}
	nsPerOp, cpuNsPerOp := map[string]float64{}, map[string]float64{}
	var cases []string
	for _, level := range []string{"off", "trace"} {
		for _, mode := range []string{"sequential", "parallel"} {
			c := level + "/" + mode
			cases = append(cases, c)
			for _, s := range strategies {
				b.Run(c+"/"+s.name, func(b *testing.B) {
					ctx := benchContext(b, level)
					fields := map[string]any{"target": "root@10.0.0.11:22", "command": "sh -c 'exec rke2 --version'"}
					cpu0 := cpuTime(b)
					if mode == "parallel" {
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								s.log(ctx, "running command over SSH", fields)
							}
						})
					} else {
						for b.Loop() {
							s.log(ctx, "running command over SSH", fields)
						}
					}
					cpuPerOp := float64((cpuTime(b) - cpu0).Nanoseconds()) / float64(b.N)
					b.ReportMetric(cpuPerOp, "cpu-ns/op")
					nsPerOp[c+"/"+s.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
					cpuNsPerOp[c+"/"+s.name] = cpuPerOp
				})
			}
		}
	}
	for _, c := range cases {
		cp, ser := nsPerOp[c+"/copy-per-call"], nsPerOp[c+"/serialized"]
		cpCPU, serCPU := cpuNsPerOp[c+"/copy-per-call"], cpuNsPerOp[c+"/serialized"]
		if cp == 0 || ser == 0 || cpCPU == 0 || serCPU == 0 {
			continue // filtered out by -bench
		}
		fmt.Printf("%-16s wall: copy-per-call %6.0f ns/op, serialized %6.0f ns/op, copy/serialized %.2f; "+
			"cpu: %6.0f vs %6.0f ns/op, copy/serialized %.2f\n", c, cp, ser, cp/ser, cpCPU, serCPU, cpCPU/serCPU)
	}
}

// cpuTime is the CPU time this process has used so far (user and system,
// every thread, the garbage collector's included). Unlike wall time it does
// not grow while other work on the machine has the CPU.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
