package future_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wasmpool/wasmpool/future"
)

// The futures' hot paths, for benchstat:
//
//	go test -run '^$' -bench . -benchmem ./future/
//
// Every pool task pays for New, one OnDone (the pool's own bookkeeping),
// Start, Resolve and a Result; collecting many pays for AsCompleted or Wait.

var sink int

// BenchmarkNewResolveResult is a future's whole life on one goroutine: the
// result is there before anyone asks, so Result must not block.
func BenchmarkNewResolveResult(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f, p := future.New[int]()
		p.Start()
		p.Resolve(1, nil)
		v, _ := f.Result(ctx)
		sink += v
	}
}

// BenchmarkResolveAcross is what a pool does: a worker resolves, the
// submitter blocked in Result wakes up.
func BenchmarkResolveAcross(b *testing.B) {
	ctx := context.Background()
	promises := make(chan *future.Promise[int])
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case p := <-promises:
				p.Start()
				p.Resolve(1, nil)
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	b.ReportAllocs()
	for b.Loop() {
		f, p := future.New[int]()
		promises <- p
		v, _ := f.Result(ctx)
		sink += v
	}
}

// BenchmarkOnDone is one callback registered while pending, run by Resolve
// (the pool's case), and one registered once done, run at once.
func BenchmarkOnDone(b *testing.B) {
	count := func(*future.Future[int]) { sink++ }
	b.Run("pending", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, p := future.New[int]()
			f.OnDone(count)
			p.Resolve(1, nil)
		}
	})
	b.Run("done", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, p := future.New[int]()
			p.Resolve(1, nil)
			f.OnDone(count)
		}
	})
}

// resolveLater resolves the promises on another goroutine, in reverse order:
// the waiter sees some done already and the rest complete while it waits.
func resolveLater(ps []*future.Promise[int]) {
	go func() {
		for i := len(ps) - 1; i >= 0; i-- {
			ps[i].Resolve(i, nil)
		}
	}()
}

func pending(n int) ([]*future.Future[int], []*future.Promise[int]) {
	fs := make([]*future.Future[int], n)
	ps := make([]*future.Promise[int], n)
	for i := range fs {
		fs[i], ps[i] = future.New[int]()
	}
	return fs, ps
}

// BenchmarkAsCompleted collects n futures as another goroutine resolves them;
// one op is the whole collection (divide by n for a future's share).
func BenchmarkAsCompleted(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fs, ps := pending(n)
				resolveLater(ps)
				got := 0
				for _, err := range future.AsCompleted(ctx, fs...) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("AsCompleted yielded %d futures, want %d", got, n)
				}
			}
		})
	}
}

// BenchmarkWaitAll waits for n futures another goroutine resolves.
func BenchmarkWaitAll(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fs, ps := pending(n)
				resolveLater(ps)
				done, notDone, err := future.Wait(ctx, future.AllCompleted, fs...)
				if err != nil || len(done) != n || len(notDone) != 0 {
					b.Fatalf("Wait: %d done, %d pending, %v", len(done), len(notDone), err)
				}
			}
		})
	}
}
