package executortest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engineConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e
}

// within bounds a test's waits: a deadlock fails the test instead of hanging.
func within(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs c's task on x.
func run(ctx context.Context, x pool.Executor, c dcase) outcome {
	task, streamed := c.task()
	res, err := x.Submit(ctx, task).Result(ctx)
	o := outcome{res: res, err: err}
	if streamed != nil {
		o.streamed = streamed()
	}
	return o
}

// TestEveryExecutorGivesTheSameOutcome runs the corpus on every executor,
// each task on all of them at once, and holds each to the reference's
// outcome: a Threads pool in this process.
func TestEveryExecutorGivesTheSameOutcome(t *testing.T) {
	e := newEngine(t)
	cases := corpus(t, e)
	xs := startAll(t, e, 2)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := within(t)
			outs := make([]outcome, len(xs))
			var wg sync.WaitGroup
			for i, x := range xs {
				wg.Go(func() { outs[i] = run(ctx, x.x, c) })
			}
			wg.Wait()
			require.NoError(t, ctx.Err(), "the executors did not all answer")
			t.Run(xs[0].name+" (the reference)", func(t *testing.T) {
				c.check(t, outs[0])
				if t.Failed() {
					t.Logf("the reference's outcome: output %q, values %v, error %v", shorten(string(outs[0].res.Output)),
						outs[0].res.Values, outs[0].err)
				}
			})
			for i, x := range xs[1:] {
				got := outs[i+1]
				t.Run(x.name, func(t *testing.T) {
					if c.streams && !x.inProcess {
						require.ErrorIs(t, got.err, errors.ErrUnsupported, "a stream it cannot carry is refused, not dropped")
						assert.ErrorContains(t, got.err, "Task.Stdin")
						assert.Empty(t, got.streamed)
						return
					}
					assertSame(t, outs[0], got, c.varies)
				})
			}
		})
	}
}
