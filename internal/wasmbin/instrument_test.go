package wasmbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// These tests hold Instrument to wazero: what it writes must be a module
// wazero accepts, with the same exports and imports, that computes the same
// results (the engine's own differential test does the same through the
// engine, on every shipped module with its real inputs).

// runner runs modules in a wazero runtime with the host side of the
// instrumentation: yield counts the yields and returns a small tick (so
// that the yield path is taken often), out_of_fuel panics.
type runner struct {
	r      wazero.Runtime
	yields int
}

var errRunnerOutOfFuel = errors.New("out of fuel")

func newRunner(tb testing.TB, interpreter bool) *runner {
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	if interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	// The tests' shared compilation cache: a Go guest compiles in seconds.
	cache, err := wazero.NewCompilationCacheWithDir(testmod.CompileCache())
	require.NoError(tb, err)
	cfg = cfg.WithCompilationCache(cache)
	// Memory capped as the engine caps it: the hostile fixtures grow.
	x := &runner{r: wazero.NewRuntimeWithConfig(ctx, cfg.WithMemoryLimitPages(1024))}
	tb.Cleanup(func() { x.r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, x.r)
	h := x.r.NewHostModuleBuilder(InterruptModule)
	h.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, s []uint64) {
		x.yields++
		s[0] = 1000
	}), nil, []api.ValueType{api.ValueTypeI32}).Export(YieldFunc)
	h.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
		panic(errRunnerOutOfFuel)
	}), nil, nil).Export(OutOfFuelFunc)
	_, err = h.Instantiate(ctx)
	require.NoError(tb, err)
	// Every host function any fixture imports, doing nothing.
	for mod, fns := range map[string][]string{
		"test": {"done", "barrier", "wait", "block", "garbage", "badframe", "exit", "fatal"},
	} {
		b := x.r.NewHostModuleBuilder(mod)
		for _, fn := range fns {
			b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), nil, nil).Export(fn)
		}
		_, err := b.Instantiate(ctx)
		require.NoError(tb, err)
	}
	b := x.r.NewHostModuleBuilder("host")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) {
		s[0] = api.EncodeI32(2 * api.DecodeI32(s[0]))
	}), []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("double")
	_, err = b.Instantiate(ctx)
	require.NoError(tb, err)
	return x
}

// outcomes calls the exports of the module named in only (every export
// but _initialize if only is nil) with zeros for their parameters, each in a
// fresh instance, and describes what each did: its results or its trap.
// fuel is the budget of metered code; 0 for code without the counter.
func (x *runner) outcomes(tb testing.TB, wasm []byte, fuel uint64, only map[string]bool) map[string]string {
	ctx := context.Background()
	compiled, err := x.r.CompileModule(ctx, wasm)
	require.NoError(tb, err)
	defer compiled.Close(ctx)
	out := map[string]string{}
	for name, def := range compiled.ExportedFunctions() {
		if name == "_initialize" || (only != nil && !only[name]) {
			continue
		}
		out[name] = x.call(ctx, compiled, name, def, fuel)
	}
	return out
}

// bounded are the exports of wasm that end within a budget of fuel: those
// it is safe to run uninstrumented, which nothing can stop.
func (x *runner) bounded(tb testing.TB, wasm []byte) map[string]bool {
	metered, err := Instrument(wasm, InstrumentOptions{Fuel: true})
	require.NoError(tb, err)
	ok := map[string]bool{}
	for name, o := range x.outcomes(tb, metered, 50_000_000, nil) {
		ok[name] = o != "out of fuel"
	}
	return ok
}

func (x *runner) call(ctx context.Context, compiled wazero.CompiledModule, name string, def api.FunctionDefinition, fuel uint64) string {
	cctx := ctx
	m, err := x.r.InstantiateModule(cctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return "instantiate: " + trapText(err)
	}
	defer m.Close(ctx)
	if g, ok := m.ExportedGlobal(FuelGlobalExport).(api.MutableGlobal); ok {
		g.Set(fuel)
	}
	if init := m.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(cctx); err != nil {
			return "_initialize: " + trapText(err)
		}
	}
	res, err := m.ExportedFunction(name).Call(cctx, make([]uint64, len(def.ParamTypes()))...)
	if err != nil {
		return trapText(err)
	}
	return fmt.Sprint(res)
}

// trapText is the part of an error that says what the guest did, without
// the stack trace (whose frames the instrumentation adds to).
func trapText(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if rest, ok := strings.CutPrefix(s, "start function["); ok {
		_, s, _ = strings.Cut(rest, "] ") // named by index, which changes
	}
	if strings.Contains(s, errRunnerOutOfFuel.Error()) {
		return "out of fuel"
	}
	return s
}

// fixturePaths lists the committed modules and, of the Go guests, those
// named (the engine's differential test runs all of them).
func fixturePaths(t *testing.T, goGuests ...string) []string {
	root, err := testmod.Root()
	require.NoError(t, err)
	var paths []string
	for _, dir := range []string{"wat", "c", "rust", "assemblyscript"} {
		p, err := filepath.Glob(filepath.Join(root, "testdata", dir, "*.wasm"))
		require.NoError(t, err)
		paths = append(paths, p...)
	}
	for _, n := range goGuests {
		paths = append(paths, testmod.Path(t, n))
	}
	return paths
}

// TestInstrumentedModulesAreValid: every shipped module wazero accepts is,
// instrumented either way, a module wazero accepts, with the same exports
// and imports (but the instrumentation's own), and the same name section
// names for its functions.
func TestInstrumentedModulesAreValid(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	names, err := testmod.Names()
	require.NoError(t, err)
	for _, path := range fixturePaths(t, names...) {
		wasm, err := os.ReadFile(path)
		require.NoError(t, err)
		if _, err := Check(wasm); err != nil {
			continue // the hostile fixtures (wazero must never see some)
		}
		orig, err := r.CompileModule(ctx, wasm)
		if err != nil {
			continue
		}
		for _, fuel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fuel=%v", filepath.Base(path), fuel), func(t *testing.T) {
				out, err := Instrument(wasm, InstrumentOptions{Fuel: fuel})
				require.NoError(t, err)
				ins, err := r.CompileModule(ctx, out)
				require.NoError(t, err)
				assert.Equal(t, signatures(orig.ExportedFunctions()), signatures(ins.ExportedFunctions()))
				var imports []string
				for _, def := range ins.ImportedFunctions() {
					if mod, _, _ := def.Import(); mod != InterruptModule {
						imports = append(imports, fmt.Sprint(def.Import()))
					}
				}
				var want []string
				for _, def := range orig.ImportedFunctions() {
					want = append(want, fmt.Sprint(def.Import()))
				}
				assert.Equal(t, want, imports)
				assert.Equal(t, orig.Name(), ins.Name())
			})
		}
	}
}

func signatures(defs map[string]api.FunctionDefinition) map[string]string {
	out := map[string]string{}
	for name, d := range defs {
		out[name] = fmt.Sprint(d.ParamTypes(), d.ResultTypes())
	}
	return out
}

// TestInstrumentedModulesComputeTheSame: every export of every shipped
// module, called with zeros, does the same instrumented (plain and
// metered) as it does as it is, under wazero's compiler and interpreter,
// with a tick so small that the yields are taken all the time.
func TestInstrumentedModulesComputeTheSame(t *testing.T) {
	for _, interp := range []bool{false, true} {
		x := newRunner(t, interp)
		// The Go guests all run in the engine's differential test, with
		// real inputs; here a command and a reactor, with a tick small
		// enough that their yields are taken all the time.
		goGuests := []string{"wasicmd", "fib"}
		if interp {
			goGuests = nil // slow there, and the same code
		}
		for _, path := range fixturePaths(t, goGuests...) {
			wasm, err := os.ReadFile(path)
			require.NoError(t, err)
			if _, err := Check(wasm); err != nil {
				continue
			}
			if _, err := x.r.CompileModule(context.Background(), wasm); err != nil {
				continue
			}
			t.Run(fmt.Sprintf("%s/interpreter=%v", filepath.Base(path), interp), func(t *testing.T) {
				only := x.bounded(t, wasm)
				want := x.outcomes(t, wasm, 0, only)
				for _, fuel := range []bool{false, true} {
					out, err := Instrument(wasm, InstrumentOptions{Fuel: fuel})
					require.NoError(t, err)
					assert.Equal(t, want, x.outcomes(t, out, 1<<50, only), "fuel=%v", fuel)
				}
			})
		}
	}
}

// TestInstrumentedLoopsYield: a loop without calls and a recursion without
// loops both reach the yield, and fuel runs out in both.
func TestInstrumentedLoopsYield(t *testing.T) {
	x := newRunner(t, false)
	for _, name := range []string{"xorshift", "fibrec"} {
		wasm := testmod.WATBytes(t, name)
		out, err := Instrument(wasm, InstrumentOptions{})
		require.NoError(t, err)
		x.yields = 0
		compiled, err := x.r.CompileModule(context.Background(), out)
		require.NoError(t, err)
		for fn := range compiled.ExportedFunctions() {
			m, err := x.r.InstantiateModule(context.Background(), compiled, wazero.NewModuleConfig().WithName(""))
			require.NoError(t, err)
			// A loop count, fib's n: millions of instructions.
			_, err = m.ExportedFunction(fn).Call(context.Background(), 25_000_000)
			if name == "fibrec" {
				_, err = m.ExportedFunction(fn).Call(context.Background(), 30)
			}
			require.NoError(t, err)
			m.Close(context.Background())
		}
		assert.NotZero(t, x.yields, name)
		metered, err := Instrument(wasm, InstrumentOptions{Fuel: true})
		require.NoError(t, err)
		ctx := context.Background()
		compiled, err = x.r.CompileModule(ctx, metered)
		require.NoError(t, err)
		for fn, def := range compiled.ExportedFunctions() {
			params := make([]uint64, len(def.ParamTypes()))
			params[0] = 1 << 40 // endless for both: a loop count, fib's n
			m, err := x.r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
			require.NoError(t, err)
			m.ExportedGlobal(FuelGlobalExport).(api.MutableGlobal).Set(100_000)
			_, err = m.ExportedFunction(fn).Call(ctx, params...)
			assert.Equal(t, "out of fuel", trapText(err), name)
			m.Close(ctx)
		}
	}
}

// FuzzInstrument holds the instrumentation to wazero on arbitrary modules:
// a module wazero accepts must instrument (or be refused as not
// instrumentable) into a module wazero accepts, that computes the same.
func FuzzInstrument(f *testing.F) {
	root, err := testmod.Root()
	if err != nil {
		f.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(root, "testdata", "wat", "*.wasm"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if _, err := Check(wasm); err != nil {
			return // what the engine refuses before instrumenting
		}
		x := newRunner(t, true)
		ctx := context.Background()
		if _, err := x.r.CompileModule(ctx, wasm); err != nil {
			return
		}
		for _, fuel := range []bool{false, true} {
			out, err := Instrument(wasm, InstrumentOptions{Fuel: fuel})
			if errors.Is(err, ErrNotInstrumentable) {
				return
			}
			require.NoError(t, err, "wazero accepts the module")
			if _, err := x.r.CompileModule(ctx, out); err != nil {
				t.Fatalf("the instrumented module is invalid: %v", err)
			}
		}
		only := x.bounded(t, wasm)
		want := x.outcomes(t, wasm, 0, only)
		out, _ := Instrument(wasm, InstrumentOptions{})
		got := x.outcomes(t, out, 0, only)
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %s uninstrumented, %s instrumented", k, v, got[k])
			}
		}
	})
}
