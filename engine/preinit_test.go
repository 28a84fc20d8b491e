package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
)

// fresh runs fn on a new instance of m, as a process-like pool does.
func fresh(t *testing.T, rt *engine.Runtime, task engine.Task) string {
	t.Helper()
	res, err := rt.Run(context.Background(), task)
	require.NoError(t, err)
	return string(res.Output)
}

func TestPreinitializeStartsInstancesFromTheTemplate(t *testing.T) {
	ctx := context.Background()
	for _, pre := range []bool{false, true} {
		e := newEngine(t, engine.Config{Preinitialize: pre})
		rt, err := e.NewRuntime(ctx)
		require.NoError(t, err)
		defer rt.Close(ctx)
		counter := compileGo(t, e, "counter")
		draw := engine.Task{Module: counter, Func: "rand"}
		a, b := fresh(t, rt, draw), fresh(t, rt, draw)
		if pre {
			// The Go runtime seeded math/rand in _initialize, which ran once:
			// every instance made from the template starts from that seed.
			assert.Equal(t, a, b, "instances made from one template share its initialisation")
		} else {
			assert.NotEqual(t, a, b, "each instance initialises itself, with its own random seed")
		}
	}
}

func TestPreinitializedInstancesShareNothing(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, engine.Config{Preinitialize: true})
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	counter := compileGo(t, e, "counter")

	// The first instance is the one the template is taken from: what its
	// tasks do comes after, and never reaches the template.
	first, err := rt.Instantiate(ctx, engine.Task{Module: counter, Func: "count"})
	require.NoError(t, err)
	initial := first.MemoryBytes()
	big := strings.Repeat("s3cr3t ", 4<<20) // grows the guest's memory well past its initial size
	_, err = first.Call(ctx, engine.Task{Module: counter, Func: "secret_set", Input: []byte(big)})
	require.NoError(t, err)
	res, err := first.Call(ctx, engine.Task{Module: counter, Func: "count"})
	require.NoError(t, err)
	assert.Equal(t, "1", string(res.Output))
	require.Greater(t, first.MemoryBytes(), initial+16<<20)
	require.NoError(t, first.Close(ctx))

	for range 3 {
		inst, err := rt.Instantiate(ctx, engine.Task{Module: counter, Func: "count"})
		require.NoError(t, err)
		assert.Equal(t, initial, inst.MemoryBytes(), "a new instance has the template's memory, not a grown one")
		res, err := inst.Call(ctx, engine.Task{Module: counter, Func: "secret_get"})
		require.NoError(t, err)
		assert.Empty(t, res.Output, "a new instance cannot see an earlier task's data")
		res, err = inst.Call(ctx, engine.Task{Module: counter, Func: "count"})
		require.NoError(t, err)
		assert.Equal(t, "1", string(res.Output))
		_, err = inst.Call(ctx, engine.Task{Module: counter, Func: "secret_set", Input: []byte("mine")})
		require.NoError(t, err)
		require.NoError(t, inst.Close(ctx))
	}
}

func TestPreinitializeKeysTemplatesBySandbox(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, engine.Config{Preinitialize: true})
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	counter := compileGo(t, e, "counter")
	// Go copies the environment during initialisation: a template made
	// under one environment must never serve another.
	for _, v := range []string{"one", "two", "one", "two"} {
		task := engine.Task{Module: counter, Func: "getenv", Input: []byte("K"), Env: map[string]string{"K": v}}
		assert.Equal(t, v, fresh(t, rt, task))
	}
}

func TestPreinitializeRunsEveryExampleAsUsual(t *testing.T) {
	ctx := context.Background()
	plain, pre := newEngine(t, engine.Config{}), newEngine(t, engine.Config{Preinitialize: true})
	// Two guests, the smallest and the largest example: each pre-initialised
	// variant is one more compile of a multi-megabyte module (seconds under
	// -race on a fresh machine), and the Go runtime's start-up they skip is
	// the same in all of them.
	for _, tc := range []struct{ module, fn, input string }{
		{"upper", "upper", "hello"},
		{"jsonx", "jsonx", `{"b": 2, "a": [1, "x"]}`},
	} {
		task := func(e *engine.Engine) engine.Task {
			return engine.Task{Module: compileGo(t, e, tc.module), Func: tc.fn, Input: []byte(tc.input)}
		}
		want, err := plain.Run(ctx, task(plain))
		require.NoError(t, err, tc.module)
		for range 2 { // the first makes the template, the second uses it
			got, err := pre.Run(ctx, task(pre))
			require.NoError(t, err, tc.module)
			assert.Equal(t, string(want.Output), string(got.Output), tc.module)
		}
	}
	// Commands are not pre-initialised, and run as usual.
	cmd := compileGo(t, pre, "wasicmd")
	res, err := pre.Run(ctx, engine.Task{Module: cmd, Args: []string{"echo", "hi"}})
	require.NoError(t, err)
	assert.Contains(t, string(res.Output), "hi")
	// The globals it exports for itself are not the module's exports.
	for _, x := range compileGo(t, pre, "counter").Exports() {
		assert.False(t, strings.HasPrefix(x.Name, "\x00"), x.Name)
	}
}
