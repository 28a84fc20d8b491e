package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// TestRunningTaskContextEndsIsNotQueued: once a worker runs a task, the end
// of its Submit context stops it like any interrupt; the future ends when
// the guest has stopped, with the engine's error, not "while queued".
func TestRunningTaskContextEndsIsNotQueued(t *testing.T) {
	b := newBarrier(2) // never reached: the task blocks until its context ends
	e := testEngine(t, engine.Config{}, b)
	p := newPool(t, e, pool.Config{Workers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f := p.Submit(ctx, engine.Task{Module: watModule(t, e, "barrier"), Func: "run"})
	<-b.entered
	_, err := f.Result(within(t))
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Equal(t, `module "barrier.wasm": function "run" timed out: the context's deadline passed`, err.Error())
}
