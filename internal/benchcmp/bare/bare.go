// Package bare runs a wasmpool task module on wazero alone, with nothing of
// wasmpool in between: no pool, no limits, no error classification, no
// interruption. It is the anchor the benchmark harness measures wasmpool's
// instantiation and start-up against ("bare wazero").
//
// It provides the guest ABI's four imports (module "wasmpool") in the
// simplest way that works, and WASI with wazero's defaults. A Runtime is for
// one goroutine at a time.
//
//	r, err := bare.New(ctx, wasm, nil)
//	out, err := r.Run(ctx, "sha256", []byte("hello"))
package bare

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Runtime is a wazero runtime with WASI, the ABI and one compiled module.
type Runtime struct {
	r        wazero.Runtime
	compiled wazero.CompiledModule
	reactor  bool // exports _initialize, which must run before any export
}

// call is the one task in flight, found by the host functions through the
// context.
type call struct {
	input, output []byte
	failure       []byte
}

type callKey struct{}

// New compiles wasm in a new runtime with wazero's default settings, through
// cache if it is not nil (the caller closes it).
func New(ctx context.Context, wasm []byte, cache wazero.CompilationCache) (*Runtime, error) {
	return NewWithConfig(ctx, wasm, cache, false)
}

// NewWithConfig is New with wazero's close-on-context-done set as asked:
// how wazero alone stops a guest (at loop back-edges) when a call's context
// ends.
func NewWithConfig(ctx context.Context, wasm []byte, cache wazero.CompilationCache, closeOnContextDone bool) (*Runtime, error) {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnContextDone)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	rt := &Runtime{r: r}
	fail := func(err error) (*Runtime, error) {
		_ = rt.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return fail(err)
	}
	if _, err := defineABI(r).Instantiate(ctx); err != nil {
		return fail(err)
	}
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return fail(err)
	}
	rt.compiled = compiled
	_, rt.reactor = compiled.ExportedFunctions()["_initialize"]
	return rt, nil
}

// Instantiate makes a fresh instance (running _initialize for a reactor).
func (rt *Runtime) Instantiate(ctx context.Context) (api.Module, error) {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	if rt.reactor {
		cfg = cfg.WithStartFunctions("_initialize")
	}
	return rt.r.InstantiateModule(ctx, rt.compiled, cfg)
}

// Run instantiates the module, calls fn (a task export, () -> i32) with
// input, closes the instance and returns the task's output.
func (rt *Runtime) Run(ctx context.Context, fn string, input []byte) ([]byte, error) {
	mod, err := rt.Instantiate(ctx)
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	return Call(ctx, mod, fn, input)
}

// Call calls the task export fn of mod with input.
func Call(ctx context.Context, mod api.Module, fn string, input []byte) ([]byte, error) {
	f := mod.ExportedFunction(fn)
	if f == nil {
		return nil, fmt.Errorf("no exported function %q", fn)
	}
	c := &call{input: input}
	res, err := f.Call(context.WithValue(ctx, callKey{}, c))
	if err != nil {
		return nil, err
	}
	if len(res) == 1 && api.DecodeI32(res[0]) != 0 {
		return nil, fmt.Errorf("%s failed: %s", fn, c.failure)
	}
	return c.output, nil
}

// Close releases the runtime.
func (rt *Runtime) Close(ctx context.Context) error { return rt.r.Close(ctx) }

func defineABI(r wazero.Runtime) wazero.HostModuleBuilder {
	i32 := api.ValueTypeI32
	b := r.NewHostModuleBuilder("wasmpool")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
		s[0] = api.EncodeI32(int32(len(callFrom(ctx).input)))
	}), nil, []api.ValueType{i32}).Export("input_size")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		dst, _ := m.Memory().Read(api.DecodeU32(s[0]), api.DecodeU32(s[1]))
		s[0] = api.EncodeI32(int32(copy(dst, callFrom(ctx).input)))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("input_read")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		src, _ := m.Memory().Read(api.DecodeU32(s[0]), api.DecodeU32(s[1]))
		c := callFrom(ctx)
		c.output = append(c.output, src...)
		s[0] = 0
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("output_write")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
		src, _ := m.Memory().Read(api.DecodeU32(s[0]), api.DecodeU32(s[1]))
		c := callFrom(ctx)
		c.failure = append(c.failure, src...)
	}), []api.ValueType{i32, i32}, nil).Export("error_write")
	return b
}

// callFrom never returns nil: a guest calling the ABI from _initialize (no
// task in flight) sees an empty input and its output is dropped.
func callFrom(ctx context.Context) *call {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}
