package engine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
)

// A plugin host: the embedder grants guests one capability, a host function
// "host"."double", and nothing else. A plugin that uses it runs; a plugin
// that imports anything not granted is refused before it ever runs.
func Example_pluginHost() {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{
		HostModules: []engine.HostModule{{
			Name: "host",
			Define: func(b wazero.HostModuleBuilder) {
				b.NewFunctionBuilder().
					WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
						stack[0] = api.EncodeI32(api.DecodeI32(stack[0]) * 2)
					}), []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
					Export("double")
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx)

	plugin, err := e.CompileFile(ctx, "../testdata/wat/plugin.wasm")
	if err != nil {
		panic(err)
	}
	res, err := e.Run(ctx, engine.Task{Module: plugin, Func: "compute", Params: []uint64{20}, Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	fmt.Println("compute(20) =", api.DecodeI32(res.Values[0]))

	_, err = e.CompileFile(ctx, "../testdata/wat/plugin_greedy.wasm")
	fmt.Println("refused:", errors.Is(err, engine.ErrBadModule))
	fmt.Println(err)
	// Output:
	// compute(20) = 41
	// refused: true
	// module "plugin_greedy.wasm": imports fs.delete_everything, but host module "fs" is not granted to guests (granted: wasmpool, wasi_snapshot_preview1, host)
}

// Errors say what went wrong in one line and match with errors.Is / As.
func ExampleTrapError() {
	ctx := context.Background()
	e, _ := engine.New(ctx, engine.Config{})
	defer e.Close(ctx)
	m, _ := e.CompileFile(ctx, "../testdata/wat/divzero.wasm")

	_, err := e.Run(ctx, engine.Task{Module: m, Func: "run"})
	var trap *engine.TrapError
	if errors.As(err, &trap) {
		fmt.Println(trap.Kind)
	}
	fmt.Println(err)
	// Output:
	// divide by zero
	// module "divzero.wasm": function "run" trapped: integer divide by zero
}

// A timeout stops the guest even in an infinite loop, and the error matches
// both ErrTimeout and context.DeadlineExceeded.
func ExampleErrTimeout() {
	ctx := context.Background()
	e, _ := engine.New(ctx, engine.Config{})
	defer e.Close(ctx)
	m, _ := e.CompileFile(ctx, "../testdata/wat/spin.wasm")

	_, err := e.Run(ctx, engine.Task{Module: m, Func: "spin", Timeout: 10 * time.Millisecond})
	fmt.Println(errors.Is(err, engine.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	fmt.Println(err)
	// Output:
	// true true
	// module "spin.wasm": function "spin" timed out after 10ms
}

// A long-lived host bounds what it keeps of the modules it is given:
// MaxModules evicts the least recently used (a module evicted stays usable,
// compiled again when a task needs it), and Close releases one for good.
func ExampleModule_Close() {
	ctx := context.Background()
	e, _ := engine.New(ctx, engine.Config{MaxModules: 2})
	defer e.Close(ctx)
	add, _ := e.CompileFile(ctx, "../testdata/wat/add.wasm")
	_, _ = e.CompileFile(ctx, "../testdata/wat/noop.wasm")
	_, _ = e.CompileFile(ctx, "../testdata/wat/echo.wasm") // evicts add
	s := e.ModuleStats()
	fmt.Println(s.Modules, s.Evictions)

	res, err := e.Run(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{2, 3}})
	fmt.Println(res.Values, err)

	_ = add.Close(ctx)
	_, err = e.Run(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{2, 3}})
	fmt.Println(errors.Is(err, engine.ErrModuleClosed))
	fmt.Println(err)
	// Output:
	// 2 1
	// [5] <nil>
	// true
	// module "add.wasm": the module was closed (Module.Close): compile it again to run it
}
