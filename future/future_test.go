package future_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/future"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLifecycleAndFirstOutcomeWins(t *testing.T) {
	f, p := future.New[int]()
	assert.Equal(t, future.Pending, f.State())
	require.True(t, p.Start())
	assert.Equal(t, future.Running, f.State())
	assert.False(t, p.Start(), "a running future cannot start again")

	require.True(t, p.Resolve(42, nil))
	assert.False(t, p.Resolve(7, errors.New("late")), "the first outcome wins")
	assert.False(t, f.Cancel(), "a finished future cannot be cancelled")

	v, err := f.Result(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.Equal(t, future.Succeeded, f.State())
	assert.Equal(t, "succeeded", f.State().String())
	select {
	case <-f.Done():
	default:
		t.Fatal("Done must be closed once resolved")
	}
}

func TestFailureIsNotConfusedWithTheWait(t *testing.T) {
	// The task itself timed out: its error matches DeadlineExceeded, but it
	// is a *Failure, which the wait's own timeout never is.
	f, p := future.New[string]()
	p.Resolve("partial", context.DeadlineExceeded)
	v, err := f.Result(context.Background())
	assert.Equal(t, "partial", v, "a failed task keeps what it produced")
	assert.True(t, future.IsFailure(err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, context.DeadlineExceeded, future.Cause(err))
	assert.Equal(t, future.Failed, f.State())

	g, _ := future.New[string]()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = g.Result(ctx)
	assert.Equal(t, context.Canceled, err, "the wait's own end is the bare context error")
	assert.False(t, future.IsFailure(err))
	assert.Equal(t, future.Pending, g.State(), "giving up the wait leaves the future alone")
}

func TestResultTimeoutLeavesTheTaskRunning(t *testing.T) {
	f, p := future.New[int]()
	p.Start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := f.Result(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, future.Running, f.State())
	p.Resolve(3, nil)
	v, err := f.Result(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, v)
}

func TestAFinishedFutureWinsOverAnEndedContext(t *testing.T) {
	f, p := future.New[int]()
	p.Resolve(1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := f.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
}

type myErr struct{}

func (*myErr) Error() string { return "mine" }

func TestTypedNilErrorIsSuccess(t *testing.T) {
	f, p := future.New[int]()
	var e *myErr
	require.True(t, p.Resolve(5, e))
	assert.Equal(t, future.Succeeded, f.State())
	assert.NoError(t, f.Err(context.Background()))
}

func TestCancel(t *testing.T) {
	for _, start := range []bool{false, true} {
		f, p := future.New[int]()
		if start {
			p.Start()
		}
		require.True(t, f.Cancel())
		require.True(t, f.Cancel(), "cancelling again is still true")
		assert.Equal(t, future.Cancelled, f.State())
		assert.False(t, p.Start(), "a cancelled future must not start")
		assert.False(t, p.Resolve(1, nil), "a cancelled future stays cancelled")
		err := f.Err(context.Background())
		assert.ErrorIs(t, err, future.ErrCancelled)
		assert.ErrorIs(t, err, context.Canceled)
		assert.True(t, future.IsFailure(err))
		<-f.Done()
	}
}

func TestOnDoneOrderOnceAndImmediate(t *testing.T) {
	f, p := future.New[int]()
	var order []int
	for i := range 3 {
		f.OnDone(func(*future.Future[int]) { order = append(order, i) })
	}
	p.Resolve(1, nil)
	p.Resolve(2, nil)
	f.Cancel()
	assert.Equal(t, []int{0, 1, 2}, order)
	f.OnDone(func(*future.Future[int]) { order = append(order, 3) })
	assert.Equal(t, []int{0, 1, 2, 3}, order, "a callback on a done future runs at once")
}

func TestCallbackMayReadItsOwnFuture(t *testing.T) {
	f, p := future.New[int]()
	got := make(chan int, 1)
	f.OnDone(func(f *future.Future[int]) {
		v, _ := f.Result(context.Background()) // must not wait on itself
		got <- v
	})
	p.Resolve(9, nil)
	assert.Equal(t, 9, <-got)
}

func TestDoneClosesAfterCallbacks(t *testing.T) {
	f, p := future.New[int]()
	var seen atomic.Bool
	f.OnDone(func(*future.Future[int]) { seen.Store(true) })
	go p.Resolve(1, nil)
	<-f.Done()
	assert.True(t, seen.Load(), "a waiter sees every effect of the callbacks")
}

func TestPanickingCallbackIsContained(t *testing.T) {
	var reported []any
	var mu sync.Mutex
	prev := future.SetPanicHandler(func(v any, stack []byte) {
		mu.Lock()
		reported = append(reported, v)
		mu.Unlock()
		assert.NotEmpty(t, stack)
	})
	defer future.SetPanicHandler(prev)

	f, p := future.New[int]()
	var after bool
	f.OnDone(func(*future.Future[int]) { panic("callback bug") })
	f.OnDone(func(*future.Future[int]) { after = true })
	assert.NotPanics(t, func() { p.Resolve(1, nil) })
	assert.True(t, after, "later callbacks still run")
	assert.NotPanics(t, func() { f.OnDone(func(*future.Future[int]) { panic("again") }) })
	assert.Equal(t, []any{"callback bug", "again"}, reported)
}

func TestRacingOutcomesResolveExactlyOnce(t *testing.T) {
	for range 200 {
		f, p := future.New[int]()
		var calls, wins atomic.Int32
		f.OnDone(func(*future.Future[int]) { calls.Add(1) })
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var won bool
				switch i % 3 {
				case 0:
					won = p.Resolve(i, nil)
				case 1:
					won = p.Resolve(i, errors.New("x"))
				default:
					won = f.Cancel() && f.State() == future.Cancelled
				}
				if won && i%3 != 2 {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), calls.Load())
		if f.State() != future.Cancelled {
			assert.Equal(t, int32(1), wins.Load())
		}
	}
}

// issue 13: Result could return before the producer's bookkeeping ran (a
// pool's Stats lagged the result). A BeforeDone hook runs before the
// outcome shows anywhere.
func TestBeforeDoneRunsBeforeTheOutcomeShows(t *testing.T) {
	f, p := future.New[int]()
	entered, release := make(chan struct{}), make(chan struct{})
	var seen future.State
	var seenErr error
	p.BeforeDone(func(s future.State, err error) {
		seen, seenErr = s, err
		close(entered)
		<-release
	})
	boom := errors.New("boom")
	go p.Resolve(7, boom)
	<-entered

	ended, stop := context.WithCancel(context.Background())
	stop()
	_, err := f.Result(ended)
	assert.Equal(t, context.Canceled, err, "no outcome shows while the hook runs")
	assert.Equal(t, future.Pending, f.State())
	select {
	case <-f.Done():
		t.Fatal("done before the hook returned")
	default:
	}
	assert.False(t, f.Cancel(), "the outcome being recorded wins")
	assert.False(t, p.Resolve(8, nil))

	close(release)
	v, err := f.Result(context.Background())
	assert.Equal(t, 7, v)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, future.Failed, seen)
	assert.Equal(t, boom, seenErr, "the hook gets the task's own error")
}

func TestBeforeDoneSeesACancel(t *testing.T) {
	f, p := future.New[int]()
	var seen future.State
	p.BeforeDone(func(s future.State, err error) {
		seen = s
		assert.ErrorIs(t, err, future.ErrCancelled)
	})
	assert.True(t, f.Cancel())
	assert.Equal(t, future.Cancelled, seen)
	assert.True(t, f.Cancel(), "again: still true")
}
