package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// No-op tasks through the embedded broker with two workers, next to the
// in-process pool with two workers, in the same run:
//
//	go test -run '^$' -bench . -benchtime 3s ./cluster/
//
// RoundTrip is Submit to Result, one task at a time: the latency of the
// machinery. Throughput keeps 256 tasks in flight: tasks per second.

func BenchmarkRoundTrip(b *testing.B) {
	for _, kind := range []string{"pool", "nats"} {
		b.Run(kind, func(b *testing.B) {
			x, task := benchExecutor(b, kind)
			ctx := context.Background()
			for b.Loop() {
				if _, err := x.Submit(ctx, task).Result(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkThroughput(b *testing.B) {
	for _, kind := range []string{"pool", "nats"} {
		b.Run(kind, func(b *testing.B) {
			x, task := benchExecutor(b, kind)
			ctx := context.Background()
			fs := make([]*future.Future[engine.Result], 0, 256)
			start := time.Now()
			for b.Loop() {
				fs = append(fs, x.Submit(ctx, task))
				if len(fs) == cap(fs) {
					for _, f := range fs {
						if err := f.Err(ctx); err != nil {
							b.Fatal(err)
						}
					}
					fs = fs[:0]
				}
			}
			for _, f := range fs {
				_ = f.Err(ctx)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}

// benchExecutor is a pool of two workers, or an embedded broker (no port)
// with two workers of one slot each on their own connections, as two
// worker processes would be.
func benchExecutor(b *testing.B, kind string) (pool.Executor, engine.Task) {
	e := newEngine(b, nil)
	task := engine.Task{Module: wat(b, e, "noop"), Func: "noop"}
	if kind == "pool" {
		p, err := pool.New(e, pool.Config{Workers: 2})
		require.NoError(b, err)
		b.Cleanup(func() { _ = p.Close() })
		return p, task
	}
	s := startServer(b, embedded.ServerConfig{})
	set := settings(b, 30*time.Second)
	set.Memory = true
	x := newExecutor(b, connect(b, s, "executor"), cluster.Config{Settings: set})
	for range 2 {
		newWorker(b, connect(b, s, "worker"), newEngine(b, nil), set, 1)
	}
	return x, task
}
