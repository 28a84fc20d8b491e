package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// Subprocess isolation against this process, for benchstat:
//
//	go test -run '^$' -bench 'Subprocess' -benchmem ./pool/

// BenchmarkSubprocessRoundTrip is the round trip of one no-op task, Submit
// to Result, one at a time, through a worker process (isolation=subprocess) and
// in this process (isolation=in-process), with a timeout on every task.
func BenchmarkSubprocessRoundTrip(b *testing.B) {
	for _, iso := range []pool.Isolation{pool.InProcess, pool.Subprocess} {
		for _, mode := range modes {
			b.Run("isolation="+iso.String()+"/"+mode.String(), func(b *testing.B) {
				e := testEngine(b, engine.Config{}, nil)
				p := newPool(b, e, pool.Config{Mode: mode, Workers: 1, TaskTimeout: 10 * time.Second, Isolation: iso})
				task := engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
				ctx := context.Background()
				if _, err := p.Submit(ctx, task).Result(ctx); err != nil { // compiled, sent, warm
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := p.Submit(ctx, task).Result(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSubprocessThroughput is the cost per no-op task at throughput:
// Map keeps many in flight, which a worker process takes in batches (the
// goal: at most 20µs a task, against a few in this process).
func BenchmarkSubprocessThroughput(b *testing.B) {
	for _, iso := range []pool.Isolation{pool.InProcess, pool.Subprocess} {
		for _, mode := range modes {
			b.Run("isolation="+iso.String()+"/"+mode.String(), func(b *testing.B) {
				e := testEngine(b, engine.Config{}, nil)
				p := newPool(b, e, pool.Config{Mode: mode, Workers: 1, Isolation: iso})
				task := engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
				ctx := context.Background()
				if _, err := p.Submit(ctx, task).Result(ctx); err != nil { // compiled, sent, warm
					b.Fatal(err)
				}
				b.ResetTimer()
				for _, err := range p.Map(ctx, func(yield func(engine.Task) bool) {
					for range b.N {
						if !yield(task) {
							return
						}
					}
				}) {
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSubprocessGoGuestTimeout is a CPU-bound Go guest (fib(27),
// recursive calls and no host calls) on a warm instance, three ways:
//
//   - in-process/unenforced: this process, the engine's NoInterrupt, no
//     timeout: full speed, and nothing could stop it. The baseline.
//   - in-process/enforced: this process, interrupt checks compiled in, a
//     timeout: what stopping a guest costs in-process.
//   - process/enforced: a worker process at full speed, a timeout the pool
//     enforces by killing it: the target is within 1.1x of the baseline.
func BenchmarkSubprocessGoGuestTimeout(b *testing.B) {
	cases := []struct {
		name    string
		engine  engine.Config
		iso     pool.Isolation
		timeout time.Duration
	}{
		{"in-process/unenforced", engine.Config{NoInterrupt: true}, pool.InProcess, 0},
		{"in-process/enforced", engine.Config{}, pool.InProcess, time.Minute},
		{"process/enforced", engine.Config{}, pool.Subprocess, time.Minute},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := testEngine(b, c.engine, nil)
			p := newPool(b, e, pool.Config{Workers: 1, Isolation: c.iso, TaskTimeout: c.timeout})
			task := engine.Task{Module: goModule(b, e, "fib"), Func: "fib", Input: []byte("27")}
			ctx := context.Background()
			if _, err := p.Submit(ctx, task).Result(ctx); err != nil { // compiled, sent, warm
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := p.Submit(ctx, task).Result(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if string(res.Output) != "196418" {
					b.Fatalf("fib(27) = %q", res.Output)
				}
			}
		})
	}
}
