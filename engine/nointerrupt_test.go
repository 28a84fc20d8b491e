package engine_test

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// doneHost grants countdown's test.done, counting its calls.
func doneHost(calls *atomic.Int64) engine.HostModule {
	return engine.HostModule{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			calls.Add(1)
		}), nil, nil).Export("done")
	}}
}

// TestNoInterrupt: without interrupt checks a timeout cannot stop a loop in
// the middle; the guest runs to its next call, and the task still reports
// the timeout it overran. With them (the default), the loop is cut short.
func TestNoInterrupt(t *testing.T) {
	ctx := context.Background()
	for _, noInterrupt := range []bool{false, true} {
		var calls atomic.Int64
		e := newEngine(t, engine.Config{NoInterrupt: noInterrupt, HostModules: []engine.HostModule{doneHost(&calls)}})
		m := compileWAT(t, e, "countdown")
		rt, err := e.NewRuntime(ctx)
		require.NoError(t, err)
		defer rt.Close(ctx)
		// Instantiated first: the timeout then runs out in the loop.
		inst, err := rt.Instantiate(ctx, engine.Task{Module: m, Func: "run"})
		require.NoError(t, err)
		defer inst.Close(ctx)
		// 2^26 rounds: far more than a millisecond, however fast the machine.
		_, err = inst.Call(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{1 << 26}, Timeout: time.Millisecond})
		require.ErrorIs(t, err, engine.ErrTimeout, "NoInterrupt %v", noInterrupt)
		if noInterrupt {
			assert.Equal(t, int64(1), calls.Load(), "the loop ran to its end")
		} else {
			assert.Zero(t, calls.Load(), "the loop was stopped in the middle")
		}
	}
}

func TestCompileNamedAndWriteTo(t *testing.T) {
	e := newEngine(t, engine.Config{})
	wasm, err := os.ReadFile(testmod.WAT(t, "exit"))
	require.NoError(t, err)
	named, err := e.CompileNamed(context.Background(), "tool.wasm", wasm)
	require.NoError(t, err)
	plain, err := e.Compile(context.Background(), wasm)
	require.NoError(t, err)
	assert.Equal(t, "tool.wasm", named.Name())
	assert.Equal(t, plain.Digest(), named.Digest())
	again, err := e.CompileNamed(context.Background(), "tool.wasm", wasm)
	require.NoError(t, err)
	assert.Same(t, named, again, "content-addressed, name included")

	_, err = e.Run(context.Background(), engine.Task{Module: named, Args: []string{"x"}})
	assert.ErrorContains(t, err, `module "tool.wasm"`)

	var buf bytes.Buffer
	n, err := named.WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, int64(len(wasm)), n)
	assert.Equal(t, wasm, buf.Bytes())

	assert.Equal(t, 16<<20, e.OutputLimit(), "the default")
}
