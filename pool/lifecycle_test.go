package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// running submits a task that blocks in the barrier capability, and returns
// once the guest is inside it, so tests can hold a worker busy without
// timing guesses.
func running(t *testing.T, p *pool.Pool, b *barrier, m *engine.Module) *future.Future[engine.Result] {
	t.Helper()
	f := p.Submit(context.Background(), engine.Task{Module: m, Func: "run"})
	select {
	case <-b.entered:
	case <-f.Done():
		_, err := f.Result(context.Background())
		t.Fatalf("the blocking task ended early: %v", err)
	}
	require.Equal(t, future.Running, f.State())
	return f
}

func TestBackpressureAndClose(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBarrier(2) // never reached by one worker: the task blocks until interrupted
			e := testEngine(t, engine.Config{}, b)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 1, QueueSize: 1})
			block := watModule(t, e, "barrier")
			upper := goModule(t, e, "upper")

			busy := running(t, p, b, block)
			queued := p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper"})
			assert.Equal(t, future.Pending, queued.State())

			// The queue is full: Submit blocks until its context ends.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			late := p.Submit(ctx, engine.Task{Module: upper, Func: "upper"})
			_, err := late.Result(context.Background())
			require.ErrorIs(t, err, engine.ErrTimeout)
			assert.Contains(t, err.Error(), "while queued")

			require.NoError(t, p.Close())
			_, err = busy.Result(context.Background())
			require.ErrorIs(t, err, engine.ErrCancelled, "Close interrupts running tasks")
			assert.ErrorIs(t, err, pool.ErrShutdown)
			// issue 13: a queued task ended as future.ErrCancelled, naming no
			// module and matching neither ErrShutdown nor engine.ErrCancelled.
			_, err = queued.Result(context.Background())
			require.ErrorIs(t, err, pool.ErrShutdown, "Close cancels queued tasks, as the cluster does")
			assert.ErrorIs(t, err, engine.ErrCancelled)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, `module "upper.wasm": cancelled while queued: pool is shut down`, err.Error())

			_, err = p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper"}).Result(context.Background())
			assert.ErrorIs(t, err, pool.ErrShutdown)
			require.NoError(t, p.Close(), "Close twice is fine")
			require.NoError(t, p.Shutdown(context.Background()), "and Shutdown after Close")
		})
	}
}

func TestShutdownFinishesQueuedTasks(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 2})
	fib := goModule(t, e, "fib")
	var fs []*future.Future[engine.Result]
	for range 30 {
		fs = append(fs, p.Submit(context.Background(), engine.Task{Module: fib, Func: "fib", Input: []byte("15")}))
	}
	require.NoError(t, p.Shutdown(within(t)))
	for _, f := range fs {
		select {
		case <-f.Done():
		default:
			t.Fatal("Shutdown returned before a queued task finished")
		}
		res, err := f.Result(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "610", string(res.Output))
	}
	_, err := p.Submit(context.Background(), engine.Task{Module: fib, Func: "fib"}).Result(context.Background())
	assert.ErrorIs(t, err, pool.ErrShutdown)
	require.NoError(t, p.Shutdown(within(t)), "Shutdown twice is fine")
}

func TestShutdownContextEndsFirst(t *testing.T) {
	b := newBarrier(2)
	e := testEngine(t, engine.Config{}, b)
	p := newPool(t, e, pool.Config{Workers: 1})
	busy := running(t, p, b, watModule(t, e, "barrier"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = busy.Result(context.Background())
	assert.ErrorIs(t, err, pool.ErrShutdown, "what was left is cancelled")
}

func TestShutdownWaitsForCallbacksOnWorkers(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 1})
	upper := goModule(t, e, "upper")
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	f := p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper", Input: []byte("x")})
	f.OnDone(func(*future.Future[engine.Result]) {
		close(entered)
		<-release
		finished.Store(true)
	})
	<-entered
	// The worker is inside the callback, which will not return until the
	// test lets it: a Shutdown from outside must wait for it, so its
	// context's end is what makes it return.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Shutdown returned while a worker was still running a callback")
	assert.False(t, finished.Load())
	close(release)
	require.NoError(t, p.Shutdown(within(t)))
	assert.True(t, finished.Load(), "once Shutdown returns, every callback a worker ran is over")
}

func TestShutdownAndCloseFromACallback(t *testing.T) {
	for _, tc := range []struct {
		stop      string
		isolation pool.Isolation
	}{
		{"Shutdown", pool.InProcess}, {"Close", pool.InProcess},
		{"Shutdown", pool.Subprocess}, {"Close", pool.Subprocess},
	} {
		stop := tc.stop
		t.Run(stop+"/"+tc.isolation.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Workers: 1, Isolation: tc.isolation})
			upper, hostile := goModule(t, e, "upper"), goModule(t, e, "hostile")
			// The one worker is held by the first task until the callback is
			// in place, so the callback surely runs on the worker.
			busy := p.Submit(context.Background(), engine.Task{Module: hostile, Func: "sleep", Input: []byte("1h")})
			returned := make(chan error, 1)
			f := p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper", Input: []byte("x")})
			f.OnDone(func(*future.Future[engine.Result]) {
				if stop == "Shutdown" {
					returned <- p.Shutdown(context.Background())
				} else {
					returned <- p.Close()
				}
			})
			busy.Cancel()
			select {
			case err := <-returned:
				require.NoError(t, err)
			case <-within(t).Done():
				t.Fatal("deadlock: stopping the pool from a callback never returned")
			}
		})
	}
}

func TestCancelRunningAndQueued(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBarrier(2)
			e := testEngine(t, engine.Config{}, b)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 1})
			block, upper := watModule(t, e, "barrier"), goModule(t, e, "upper")

			busy := running(t, p, b, block)
			queued := p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper", Input: []byte("q")})
			assert.True(t, queued.Cancel())
			assert.True(t, queued.Cancel(), "cancelling again is still true")
			assert.True(t, busy.Cancel(), "a running task can be cancelled")
			_, err := busy.Result(context.Background())
			assert.ErrorIs(t, err, context.Canceled)

			// The worker is free again: the next task runs.
			res, err := p.Submit(context.Background(), engine.Task{Module: upper, Func: "upper", Input: []byte("next")}).Result(within(t))
			require.NoError(t, err)
			assert.Equal(t, "NEXT", string(res.Output))
			assert.True(t, busy.Cancel(), "cancelling again is still true")
			assert.Equal(t, future.Cancelled, busy.State(), "the interrupted run's outcome does not replace the cancel")
			assert.Equal(t, int64(2), p.Stats().Cancelled)
		})
	}
}

func TestSubmitContextBoundsQueuedTask(t *testing.T) {
	b := newBarrier(2)
	e := testEngine(t, engine.Config{}, b)
	p := newPool(t, e, pool.Config{Workers: 1})
	busy := running(t, p, b, watModule(t, e, "barrier"))
	ctx, cancel := context.WithCancel(context.Background())
	queued := p.Submit(ctx, engine.Task{Module: goModule(t, e, "upper"), Func: "upper"})
	cancel()
	// The queued task's future ends with its context, while the worker is
	// still busy with another task.
	_, err := queued.Result(within(t))
	require.ErrorIs(t, err, engine.ErrCancelled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, future.Running, busy.State())
	busy.Cancel()
}

func TestInitRunsOnEveryNewInstance(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			counter := goModule(t, e, "counter")
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 1, Init: &engine.Task{Module: counter, Func: "count"}})
			want := []string{"2", "3"} // Init counted 1 on the warm instance
			if mode == pool.Processes {
				want = []string{"2", "2"} // each fresh instance is initialised
			}
			assert.Equal(t, want, counts(t, p, counter, 2))
		})
	}
}

func TestInitFailureBreaksThePool(t *testing.T) {
	b := newBarrier(2)
	e := testEngine(t, engine.Config{}, b)
	upper := goModule(t, e, "upper")
	fail := watModule(t, e, "fail")
	p := newPool(t, e, pool.Config{Workers: 1, Init: &engine.Task{Func: "fail"}})
	ctx := within(t)
	var fs []*future.Future[engine.Result]
	fs = append(fs, p.Submit(ctx, engine.Task{Module: fail, Func: "fail"}))
	for range 5 {
		fs = append(fs, p.Submit(ctx, engine.Task{Module: upper, Func: "upper"}))
	}
	for _, f := range fs {
		_, err := f.Result(ctx)
		require.ErrorIs(t, err, pool.ErrBroken)
		var te *engine.TaskError
		assert.ErrorAs(t, err, &te, "the cause is named")
	}
	_, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper"}).Result(ctx)
	assert.ErrorIs(t, err, pool.ErrBroken)
	assert.Contains(t, err.Error(), "Init")
}

func TestMapInOrderLazyAndCancellable(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 2})
			fib, div := goModule(t, e, "fib"), watModule(t, e, "divzero")
			var pulled atomic.Int64
			endless := func(yield func(engine.Task) bool) {
				for i := 0; ; i++ {
					pulled.Add(1)
					task := engine.Task{Module: fib, Func: "fib", Input: []byte{byte('0' + i%10)}}
					if i%7 == 3 {
						task = engine.Task{Module: div, Func: "run"}
					}
					if !yield(task) {
						return
					}
				}
			}
			fibs := []string{"0", "1", "1", "2", "3", "5", "8", "13", "21", "34"}
			i := 0
			for res, err := range p.Map(within(t), endless) {
				if i%7 == 3 {
					var trap *engine.TrapError
					require.ErrorAs(t, err, &trap, "item %d", i)
				} else {
					require.NoError(t, err, "item %d", i)
					assert.Equal(t, fibs[i%10], string(res.Output), "item %d", i)
				}
				assert.LessOrEqual(t, pulled.Load(), int64(i+1+2*2), "Map reads at most a window ahead")
				i++
				if i == 50 {
					break
				}
			}
			require.NoError(t, p.Shutdown(within(t)))
			assert.Zero(t, p.Stats().Running)
		})
	}
}

func TestMapContextEndsFirst(t *testing.T) {
	b := newBarrier(3)
	e := testEngine(t, engine.Config{}, b)
	p := newPool(t, e, pool.Config{Workers: 1})
	block := watModule(t, e, "barrier")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	tasks := func(yield func(engine.Task) bool) {
		for range 3 {
			if !yield(engine.Task{Module: block, Func: "run"}) {
				return
			}
		}
	}
	var errs []error
	for _, err := range p.Map(ctx, tasks) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	assert.True(t, errors.Is(errs[0], context.DeadlineExceeded))
	assert.False(t, future.IsFailure(errs[0]), "Map's own context ending is no task's failure")
}

// issue 13: Map yielded future.Cause(err), unwrapping the *Failure, so a
// task that timed out on its own and Map's context ending looked alike.
func TestMapTellsATaskFailureFromItsOwnContext(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 1})
	hostile := goModule(t, e, "hostile")
	tasks := func(yield func(engine.Task) bool) {
		_ = yield(engine.Task{Module: hostile, Func: "spin", Timeout: 20 * time.Millisecond}) &&
			yield(engine.Task{Module: hostile, Func: "echo", Input: []byte("x")})
	}
	var errs []error
	for _, err := range p.Map(within(t), tasks) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 2)
	require.ErrorIs(t, errs[0], engine.ErrTimeout)
	assert.ErrorIs(t, errs[0], context.DeadlineExceeded)
	assert.True(t, future.IsFailure(errs[0]), "the task's own timeout comes as the future's *Failure")
	assert.NoError(t, errs[1])
}
