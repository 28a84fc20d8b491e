package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

type watchKey struct{}

// A queued task's future ends the moment its context does, while the
// worker is still busy: whether its context is shared with other queued
// tasks, derived from another's by WithValue (which shares its Done), or
// one of its own; the tasks of a context that did not end stay queued.
func TestQueuedTaskEndsWithItsContext(t *testing.T) {
	b := newBarrier(2) // never reached by one worker: the task blocks until interrupted
	e := testEngine(t, engine.Config{}, b)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1})
	upper := goModule(t, e, "upper")
	busy := running(t, p, b, watModule(t, e, "barrier"))

	a, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	derived := context.WithValue(a, watchKey{}, "v")
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	submit := func(ctx context.Context, n int) []*future.Future[engine.Result] {
		var fs []*future.Future[engine.Result]
		for range n {
			fs = append(fs, p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("x")}))
		}
		return fs
	}
	ending := append(submit(a, 3), submit(derived, 2)...)
	staying := submit(other, 2)

	cancelA()
	for i, f := range ending {
		select {
		case <-f.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("task %d: its context ended and its future did not, the worker being busy", i)
		}
		_, err := f.Result(context.Background())
		require.ErrorIs(t, err, engine.ErrCancelled)
		assert.Contains(t, err.Error(), "cancelled while queued")
	}
	for _, f := range staying {
		assert.Equal(t, future.Pending, f.State(), "its context did not end")
	}
	assert.Equal(t, future.Running, busy.State())

	require.NoError(t, p.Close())
	for _, f := range staying {
		_, err := f.Result(context.Background())
		require.ErrorIs(t, err, pool.ErrShutdown)
	}
	assert.Zero(t, p.ContextWatches(), "a closed pool keeps no callback on its callers' contexts")
}

// One watch serves every task of a context, and the watches of contexts
// that no longer submit are dropped: a pool fed tasks under ever new
// contexts (one per request, say) keeps a bounded number.
func TestContextWatchesStayBounded(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1})
	upper := goModule(t, e, "upper")
	shared, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 20 {
		_, err := p.Submit(shared, engine.Task{Module: upper, Func: "upper", Input: []byte("x")}).Result(shared)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, p.ContextWatches(), "the tasks of one context share its watch")

	// Contexts that do not end while the pool runs must not pin a watch.
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		_, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("x")}).Result(ctx)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, p.ContextWatches(), 65)
}
