package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

// eachPool runs f on a pool of cfg in every mode, in process and with
// worker processes: the pool's Init is the same code in both places.
func eachPool(t *testing.T, e *engine.Engine, cfg pool.Config, f func(t *testing.T, p *pool.Pool)) {
	for _, iso := range []pool.Isolation{pool.InProcess, pool.Subprocess} {
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%v/%v", iso, mode), func(t *testing.T) {
				c := cfg
				c.Mode, c.Isolation = mode, iso
				if iso == pool.Subprocess {
					// The worker process stops its tasks itself: a kill
					// (instantiating a Go guest under the race detector
					// takes longer than these timeouts) would only blur
					// what is tested.
					c.KillGrace = time.Minute
				}
				f(t, newPool(t, e, c))
			})
		}
	}
}

// bounded is within, shorter: these tests hung for ever before their fix.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// issue 13: an Init had no timeout of its own (one that loops hung its
// worker), and any failure of it broke the pool for good. Init's own
// Timeout, or else the pool's TaskTimeout, bounds it; a timeout fails the
// task it ran for, and the pool goes on.
func TestInitHasATimeoutOfItsOwn(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	hostile, echo := goModule(t, e, "hostile"), watModule(t, e, "echo")
	for _, c := range []struct {
		name string
		cfg  pool.Config
		says string
	}{
		{"Init.Timeout", pool.Config{Workers: 1, Init: &engine.Task{Module: hostile, Func: "spin", Timeout: 50 * time.Millisecond}},
			`module "hostile.wasm": the pool's Init ("spin") failed: function "spin" timed out after 50ms`},
		{"TaskTimeout", pool.Config{Workers: 1, TaskTimeout: 100 * time.Millisecond, Init: &engine.Task{Module: hostile, Func: "spin"}},
			`module "hostile.wasm": function "echo" timed out after 100ms`},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachPool(t, e, c.cfg, func(t *testing.T, p *pool.Pool) {
				ctx := bounded(t)
				_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo"}).Result(ctx)
				require.ErrorIs(t, err, engine.ErrTimeout)
				assert.NotErrorIs(t, err, pool.ErrBroken, "a timeout is no failure of the module's own")
				assert.Equal(t, c.says, err.Error())
				res, err := p.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("on")}).Result(ctx)
				require.NoError(t, err, "the pool goes on")
				assert.Equal(t, "on", string(res.Output))
			})
		})
	}
}

// issue 13: a cold task could take its Timeout for the instance, Init as
// long as it liked, then its Timeout again for the call. The task's
// Timeout bounds all that is done for it.
func TestATaskTimeoutBoundsItsInit(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	hostile := goModule(t, e, "hostile")
	cfg := pool.Config{Workers: 1, Init: &engine.Task{Module: hostile, Func: "spin", Timeout: time.Hour}}
	eachPool(t, e, cfg, func(t *testing.T, p *pool.Pool) {
		ctx := bounded(t)
		_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Timeout: 100 * time.Millisecond}).Result(ctx)
		require.ErrorIs(t, err, engine.ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, pool.ErrBroken)
		assert.Equal(t, `module "hostile.wasm": function "echo" timed out after 100ms`, err.Error())
	})
}

// issue 13: with Init.Module nil, a module without Init's export broke the
// pool for every module. Init runs on the modules that export it, and a
// module that does not is left alone.
func TestInitWithoutAModuleRunsWhereItIsExported(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	counter, upper := goModule(t, e, "counter"), goModule(t, e, "upper")
	eachPool(t, e, pool.Config{Workers: 1, Init: &engine.Task{Func: "count"}}, func(t *testing.T, p *pool.Pool) {
		ctx := bounded(t)
		res, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("no init")}).Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "NO INIT", string(res.Output))
		assert.Equal(t, "2", counts(t, p, counter, 1)[0], "Init counted 1 on the instance first")
	})
}
