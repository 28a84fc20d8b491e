package engine_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
)

// lots is a budget no test task comes near: it meters without limiting.
const lots = 1 << 50

// fuelOf runs task with a budget too large to run out and returns what it
// used.
func fuelOf(t *testing.T, e *engine.Engine, task engine.Task) uint64 {
	t.Helper()
	task.Fuel = lots
	res, err := e.Run(context.Background(), task)
	require.NoError(t, err)
	require.NotZero(t, res.Fuel)
	return res.Fuel
}

// TestFuelIsExact: a task that uses F succeeds with a budget of F, using F,
// and fails with F-1 with ErrFuelExhausted, never a trap.
func TestFuelIsExact(t *testing.T) {
	e := newEngine(t, engine.Config{})
	for name, task := range map[string]engine.Task{
		"wat loop":      {Module: compileWAT(t, e, "xorshift"), Func: "run", Params: []uint64{1000}},
		"wat recursion": {Module: compileWAT(t, e, "fibrec"), Func: "fib", Params: []uint64{15}},
		"go":            {Module: compileGo(t, e, "fib"), Func: "fib", Input: []byte("15")},
		"c":             {Module: compileC(t, e, "kernels"), Func: "fib", Input: []byte("15")},
		"c command":     {Module: compileC(t, e, "wasicat"), Args: []string{"-a", "x", "y"}},
	} {
		t.Run(name, func(t *testing.T) {
			used := fuelOf(t, e, task)
			task.Fuel = used
			res, err := e.Run(context.Background(), task)
			require.NoError(t, err, "a budget of exactly what it needs is enough")
			assert.Equal(t, used, res.Fuel)

			task.Fuel = used - 1
			res, err = e.Run(context.Background(), task)
			require.ErrorIs(t, err, engine.ErrFuelExhausted)
			assert.Equal(t, used-1, res.Fuel, "it used all of its budget")
			var trap *engine.TrapError
			assert.False(t, errors.As(err, &trap), "running out is not a trap: %v", err)
			assert.NotErrorIs(t, err, engine.ErrTimeout)
			assert.NotErrorIs(t, err, engine.ErrCancelled)
			assert.Contains(t, err.Error(), "used up its budget of "+strconv.FormatUint(used-1, 10)+" instructions")
		})
	}
}

// TestFuelIsLinearInWork: the fuel of a loop grows by the same amount with
// every iteration, and a Go guest's fib by about the golden ratio per step.
func TestFuelIsLinearInWork(t *testing.T) {
	e := newEngine(t, engine.Config{})
	loop := compileWAT(t, e, "xorshift")
	f := func(n uint64) uint64 {
		return fuelOf(t, e, engine.Task{Module: loop, Func: "run", Params: []uint64{n}})
	}
	perIteration := f(2) - f(1)
	require.NotZero(t, perIteration)
	assert.Equal(t, f(1)+999*perIteration, f(1000))
	assert.Equal(t, f(1)+99_999*perIteration, f(100_000))

	fib := compileGo(t, e, "fib")
	g := func(n int) float64 {
		return float64(fuelOf(t, e, engine.Task{Module: fib, Func: "fib", Input: []byte(strconv.Itoa(n))}))
	}
	ratio := g(24) / g(23)
	assert.InDelta(t, 1.618, ratio, 0.05, "fib's work grows by the golden ratio")
}

// TestFuelStopsEndlessGuests: a budget ends a guest that never returns,
// loop or recursion, without any timeout; the instance built for it runs
// tasks without a budget too.
func TestFuelStopsEndlessGuests(t *testing.T) {
	started := make(chan struct{}, 16)
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{barrierHost(started)}})
	for _, name := range endlessNames {
		task := endless(t, e)[name]
		t.Run(name, func(t *testing.T) {
			task.Fuel = 1_000_000
			res, err := e.Run(context.Background(), task)
			require.ErrorIs(t, err, engine.ErrFuelExhausted)
			assert.Equal(t, uint64(1_000_000), res.Fuel)
		})
	}
	ctx := context.Background()
	echo := compileWAT(t, e, "echo")
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	inst, err := rt.Instantiate(ctx, engine.Task{Module: echo, Func: "echo", Fuel: 1})
	require.NoError(t, err)
	defer inst.Close(ctx)
	res, err := inst.Call(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("hi")})
	require.NoError(t, err)
	assert.Equal(t, "hi", string(res.Output))
	assert.Zero(t, res.Fuel, "no budget, no count")
	res, err = inst.Call(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("hi"), Fuel: lots})
	require.NoError(t, err)
	assert.NotZero(t, res.Fuel)
}

// TestFuelAndTimeoutTogether: whichever runs out first stops the task, and
// says which.
func TestFuelAndTimeoutTogether(t *testing.T) {
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{barrierHost(make(chan struct{}, 4))}})
	busy := compileWAT(t, e, "busy")
	_, err := e.Run(context.Background(), engine.Task{Module: busy, Func: "loop", Fuel: lots, Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, engine.ErrTimeout)
	res, err := e.Run(context.Background(), engine.Task{Module: busy, Func: "loop", Fuel: 10_000, Timeout: time.Hour})
	require.ErrorIs(t, err, engine.ErrFuelExhausted)
	assert.Equal(t, uint64(10_000), res.Fuel)
}
