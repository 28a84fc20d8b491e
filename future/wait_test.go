package future_test

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/future"
)

func futures(n int) ([]*future.Future[int], []*future.Promise[int]) {
	fs := make([]*future.Future[int], n)
	ps := make([]*future.Promise[int], n)
	for i := range fs {
		fs[i], ps[i] = future.New[int]()
	}
	return fs, ps
}

func TestAsCompletedOrderDuplicatesAndCancelled(t *testing.T) {
	fs, ps := futures(4)
	ps[2].Resolve(2, nil) // already done: yielded first
	next, stop := iter.Pull2(future.AsCompleted(context.Background(), fs[0], fs[1], fs[2], fs[3], fs[0], fs[2]))
	defer stop()

	f, err, ok := next()
	require.True(t, ok)
	require.NoError(t, err)
	assert.Same(t, fs[2], f)

	fs[3].Cancel() // cancelled futures are done too
	f, _, _ = next()
	assert.Same(t, fs[3], f)
	ps[0].Resolve(0, errors.New("failed"))
	f, _, _ = next()
	assert.Same(t, fs[0], f)
	ps[1].Resolve(1, nil)
	f, _, _ = next()
	assert.Same(t, fs[1], f)
	_, _, ok = next()
	assert.False(t, ok, "each distinct future exactly once")
}

func TestAsCompletedContextEnd(t *testing.T) {
	fs, ps := futures(2)
	ps[0].Resolve(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []*future.Future[int]
	var last error
	for f, err := range future.AsCompleted(ctx, fs...) {
		if err != nil {
			last = err
			assert.Nil(t, f)
			continue
		}
		got = append(got, f)
		cancel()
	}
	assert.Equal(t, []*future.Future[int]{fs[0]}, got)
	assert.ErrorIs(t, last, context.Canceled)
	ps[1].Resolve(1, nil) // no one is listening any more; must not block
}

func TestAsCompletedHoldsNoYieldedFuture(t *testing.T) {
	fs, ps := futures(3)
	collected := make(chan struct{})
	runtime.AddCleanup(fs[0], func(struct{}) { close(collected) }, struct{}{})
	ps[0].Resolve(0, nil)
	next, stop := iter.Pull2(future.AsCompleted(context.Background(), fs...))
	defer stop()
	f, _, _ := next()
	require.NotNil(t, f)
	f, fs[0], ps[0] = nil, nil, nil
	ps[1].Resolve(1, nil)
	f, _, _ = next() // now suspended holding fs[1] only
	require.Same(t, fs[1], f)
	for i := 0; ; i++ {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if i == 100 {
			t.Fatal("AsCompleted still holds a future it has yielded")
		}
	}
}

func TestWaitModes(t *testing.T) {
	t.Run("all completed, with a deadline", func(t *testing.T) {
		fs, ps := futures(3)
		ps[0].Resolve(0, nil)
		fs[1].Cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		done, pending, err := future.Wait(ctx, future.AllCompleted, fs...)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, fs[:2], done)
		assert.Equal(t, fs[2:], pending)
		ps[2].Resolve(2, nil)
		done, pending, err = future.Wait(context.Background(), future.AllCompleted, append(fs, fs[0])...)
		require.NoError(t, err)
		assert.Equal(t, fs, done, "duplicates count once")
		assert.Empty(t, pending)
	})
	t.Run("first completed", func(t *testing.T) {
		fs, ps := futures(3)
		go ps[1].Resolve(1, nil)
		done, pending, err := future.Wait(context.Background(), future.FirstCompleted, fs...)
		require.NoError(t, err)
		assert.Equal(t, []*future.Future[int]{fs[1]}, done)
		assert.Equal(t, []*future.Future[int]{fs[0], fs[2]}, pending)
	})
	t.Run("first error skips successes and cancels", func(t *testing.T) {
		fs, ps := futures(4)
		ps[0].Resolve(0, nil)
		fs[1].Cancel()
		go ps[2].Resolve(0, errors.New("boom"))
		done, pending, err := future.Wait(context.Background(), future.FirstError, fs...)
		require.NoError(t, err)
		assert.Equal(t, fs[:3], done)
		assert.Equal(t, fs[3:], pending)
	})
	t.Run("first error with none failing waits for all", func(t *testing.T) {
		fs, ps := futures(2)
		ps[0].Resolve(0, nil)
		go fs[1].Cancel()
		done, pending, err := future.Wait(context.Background(), future.FirstError, fs...)
		require.NoError(t, err)
		assert.Len(t, done, 2)
		assert.Empty(t, pending)
	})
	t.Run("nothing to wait for", func(t *testing.T) {
		done, pending, err := future.Wait[int](context.Background(), future.AllCompleted)
		assert.NoError(t, err)
		assert.Empty(t, done)
		assert.Empty(t, pending)
	})
}
