//go:build linux

package pool_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// TestSubprocessProcessLimits: the kernel stops a worker process that goes
// over its address space or its CPU time, even with no timeout set, and the
// pool says which limit it was.
func TestSubprocessProcessLimits(t *testing.T) {
	// Guests may have 1 GiB: the process limits below are what stop them.
	e := testEngine(t, engine.Config{MemoryLimitBytes: 1 << 30}, nil)
	hostile := goModule(t, e, "hostile")
	ctx := within(t)
	echo := func(t *testing.T, p *pool.Pool) {
		t.Helper()
		res, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("next")}).Result(ctx)
		require.NoError(t, err, "the replacement runs tasks")
		assert.Equal(t, "next", string(res.Output))
	}

	t.Run("address space", func(t *testing.T) {
		// Enough to run tasks (the Go heap maps 64 MiB at a time), not for
		// a guest of 1 GiB: the process dies before the engine's limit.
		p := subprocessPool(t, e, pool.Config{Workers: 1, ProcessLimits: pool.ProcessLimits{AddressSpace: 256 << 20}})
		echo(t, p)
		_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "membomb"}).Result(ctx)
		ce := crashError(t, err)
		assert.True(t, ce.OutOfMemory, "%v", err)
		assert.ErrorIs(t, err, engine.ErrMemoryLimit)
		assert.Contains(t, err.Error(), "ran out of memory (its address-space limit is ")
		echo(t, p)
	})

	t.Run("cpu time", func(t *testing.T) {
		// The kernel kills at twice CPUTime: 2s of spinning, no timeout.
		p := subprocessPool(t, e, pool.Config{Workers: 1, ProcessLimits: pool.ProcessLimits{CPUTime: time.Second}})
		_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "spin"}).Result(ctx)
		ce := crashError(t, err)
		assert.Equal(t, "SIGKILL", ce.Signal)
		assert.Contains(t, err.Error(), "killed by the kernel at its CPU time limit of 2s (RLIMIT_CPU")
		echo(t, p)
	})
}
