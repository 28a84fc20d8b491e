package pool_test

import (
	"context"
	"fmt"
	"iter"
	"testing"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// The pool's hot paths, for benchstat:
//
//	go test -run '^$' -bench . -benchmem ./pool/

// BenchmarkSubmitResult is the round trip of one no-op task, Submit to
// Result, one at a time, with a timeout enforced on every task.
func BenchmarkSubmitResult(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := testEngine(b, engine.Config{}, nil)
			p := newPool(b, e, pool.Config{Mode: mode, Workers: 1, TaskTimeout: 10e9})
			task := engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
			ctx := context.Background()
			for b.Loop() {
				if _, err := p.Submit(ctx, task).Result(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSubmitResultCancellable is BenchmarkSubmitResult under a context
// that can end (a request's, say), which the pool watches while the task
// is queued and the engine while it runs.
func BenchmarkSubmitResultCancellable(b *testing.B) {
	e := testEngine(b, engine.Config{}, nil)
	p := newPool(b, e, pool.Config{Mode: pool.Threads, Workers: 1, TaskTimeout: 10e9})
	task := engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for b.Loop() {
		if _, err := p.Submit(ctx, task).Result(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitMany keeps the pool busy: the throughput of no-op tasks
// submitted in batches, collected with AsCompleted.
func BenchmarkSubmitMany(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := testEngine(b, engine.Config{}, nil)
			p := newPool(b, e, pool.Config{Mode: mode, Workers: 2})
			task := engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
			ctx := context.Background()
			fs := make([]*future.Future[engine.Result], 0, 256)
			for b.Loop() {
				fs = append(fs, p.Submit(ctx, task))
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
		})
	}
}

// BenchmarkMapFib is CPU-bound work (a recursive fib(25) in a Go guest)
// through Map with 1 and 2 workers: the ratio is the pool's scaling.
func BenchmarkMapFib(b *testing.B) {
	benchmarkMap(b, func(b *testing.B, e *engine.Engine) engine.Task {
		return engine.Task{Module: goModule(b, e, "fib"), Func: "fib", Input: []byte("25")}
	})
}

// BenchmarkSubmitResultGo is BenchmarkSubmitResult for a Go guest (a
// reactor): in Processes mode, every task is a fresh Go instance.
func BenchmarkSubmitResultGo(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode.String(), func(b *testing.B) {
			e := testEngine(b, engine.Config{}, nil)
			p := newPool(b, e, pool.Config{Mode: mode, Workers: 1, TaskTimeout: 10e9})
			task := engine.Task{Module: goModule(b, e, "upper"), Func: "upper", Input: []byte("x")}
			ctx := context.Background()
			// Not counted: the worker's runtime loading the compiled code
			// (tens of milliseconds for a Go guest), once per pool.
			if _, err := p.Submit(ctx, task).Result(ctx); err != nil {
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

// BenchmarkMapNoop is no-op tasks through Map with 1 and 2 workers: the
// pool's own overhead, which no work hides.
func BenchmarkMapNoop(b *testing.B) {
	benchmarkMap(b, func(b *testing.B, e *engine.Engine) engine.Task {
		return engine.Task{Module: watModule(b, e, "noop"), Func: "noop"}
	})
}

// benchmarkMap runs b.N copies of one task through Map, in each mode with 1
// and 2 workers.
func benchmarkMap(b *testing.B, taskFor func(*testing.B, *engine.Engine) engine.Task) {
	for _, mode := range modes {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", mode, workers), func(b *testing.B) {
				e := testEngine(b, engine.Config{}, nil)
				p := newPool(b, e, pool.Config{Mode: mode, Workers: workers})
				task := taskFor(b, e)
				tasks := func(yield func(engine.Task) bool) {
					for range b.N {
						if !yield(task) {
							return
						}
					}
				}
				b.ResetTimer()
				for _, err := range p.Map(context.Background(), iter.Seq[engine.Task](tasks)) {
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
