package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// newEngine returns an engine that closes with the test. Unless the test
// asks for its own cache directory, compiled code goes through the cache all
// tests share, so each module is compiled once per machine.
func newEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = testmod.CompileCache()
	}
	e, err := engine.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e
}

func compileWAT(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.WAT(t, name))
	require.NoError(t, err)
	return m
}

func compileGo(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.Path(t, name))
	require.NoError(t, err)
	return m
}

func TestModuleBytesAreTheCompiledBytes(t *testing.T) {
	e := newEngine(t, engine.Config{})
	wasm := testmod.WATBytes(t, "add")
	m, err := e.Compile(context.Background(), wasm)
	require.NoError(t, err)
	require.Equal(t, wasm, m.Bytes())

	// The module keeps its own copy: the caller reusing its buffer must not
	// change what the module says it is.
	clear(wasm)
	sum := sha256.Sum256(m.Bytes())
	assert.Equal(t, m.Digest(), hex.EncodeToString(sum[:]))
}

func TestCompileIsContentAddressed(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	wasm := testmod.WATBytes(t, "add")

	a, err := e.Compile(ctx, wasm)
	require.NoError(t, err)
	b, err := e.Compile(ctx, append([]byte(nil), wasm...))
	require.NoError(t, err)
	assert.Same(t, a, b, "the same bytes must give the same *Module")

	sum := sha256.Sum256(wasm)
	assert.Equal(t, hex.EncodeToString(sum[:]), a.Digest())
	assert.Equal(t, a.Digest()[:12], a.Name())

	f, err := e.CompileFile(ctx, testmod.WAT(t, "add"))
	require.NoError(t, err)
	assert.Equal(t, "add.wasm", f.Name())
	assert.Equal(t, a.Digest(), f.Digest())
	f2, err := e.CompileFile(ctx, testmod.WAT(t, "add"))
	require.NoError(t, err)
	assert.Same(t, f, f2)

	other, err := e.Compile(ctx, testmod.WATBytes(t, "noop"))
	require.NoError(t, err)
	assert.NotEqual(t, a.Digest(), other.Digest())
}

func TestModuleMetadata(t *testing.T) {
	e := newEngine(t, engine.Config{})
	add := compileWAT(t, e, "add")
	assert.False(t, add.IsCommand())
	require.Len(t, add.Exports(), 1)
	assert.Equal(t, "add", add.Exports()[0].Name)
	assert.Equal(t, "(i32, i32) -> i32", add.Exports()[0].Signature())
	assert.False(t, add.Exports()[0].IsTask())

	upper := compileGo(t, e, "upper")
	assert.False(t, upper.IsCommand())
	var names []string
	for _, x := range upper.Exports() {
		names = append(names, x.Name)
		if x.Name == "upper" {
			assert.True(t, x.IsTask())
		}
	}
	assert.Contains(t, names, "upper")
	assert.Contains(t, names, "_initialize")
	var abi int
	for _, im := range upper.Imports() {
		if im.Module == engine.ABIModule {
			abi++
		}
	}
	assert.Greater(t, abi, 0, "an SDK module imports the wasmpool ABI")

	cmd := compileGo(t, e, "wasicmd")
	assert.True(t, cmd.IsCommand())
}

func TestRunSDKExport(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		module, fn, in, want string
	}{
		{"upper", "upper", "hello, wasm", "HELLO, WASM"},
		{"sha256", "sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"fib", "fib", "20", "6765"},
		{"wordcount", "wordcount", "one two\nthree\n", `{"bytes":14,"lines":2,"words":3}`},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m := compileGo(t, e, tc.module)
			res, err := e.Run(ctx, engine.Task{Module: m, Func: tc.fn, Input: []byte(tc.in)})
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(res.Output))
			assert.Positive(t, res.Duration)
		})
	}
}

func TestRunEchoLargeInput(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "echo")
	in := []byte(strings.Repeat("0123456789abcdef", 64<<10)) // 1 MiB
	res, err := e.Run(context.Background(), engine.Task{Module: m, Func: "echo", Input: in})
	require.NoError(t, err)
	assert.Equal(t, in, res.Output)
}

func TestRawParamsAndValues(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "add")
	res, err := e.Run(context.Background(), engine.Task{Module: m, Func: "add", Params: []uint64{2, 40}})
	require.NoError(t, err)
	assert.Equal(t, []uint64{42}, res.Values)

	_, err = e.Run(context.Background(), engine.Task{Module: m, Func: "add", Params: []uint64{2}})
	assert.ErrorIs(t, err, engine.ErrNoFunction)
	assert.Contains(t, err.Error(), "(i32, i32) -> i32")
	_, err = e.Run(context.Background(), engine.Task{Module: m, Func: "add"})
	assert.ErrorIs(t, err, engine.ErrNoFunction, "add takes parameters, so it cannot run as an SDK task")
}

func TestTaskErrorFromGuest(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()

	_, err := e.Run(ctx, engine.Task{Module: compileWAT(t, e, "fail"), Func: "fail"})
	var te *engine.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "bad input", te.Message)

	_, err = e.Run(ctx, engine.Task{Module: compileGo(t, e, "fib"), Func: "fib", Input: []byte("x")})
	require.ErrorAs(t, err, &te)
	assert.Contains(t, te.Message, "whole number")
	assert.Contains(t, err.Error(), `module "fib.wasm"`)
}

func TestNoFunction(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	m := compileGo(t, e, "upper")
	_, err := e.Run(ctx, engine.Task{Module: m, Func: "lower"})
	require.ErrorIs(t, err, engine.ErrNoFunction)
	assert.Contains(t, err.Error(), `"lower"`)
	assert.Contains(t, err.Error(), "upper () -> i32", "the message lists what the module does export")

	_, err = e.Run(ctx, engine.Task{Module: m})
	require.ErrorIs(t, err, engine.ErrNoFunction, "a reactor is not a command")
	assert.Contains(t, err.Error(), "_start")
}

func TestBadModules(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	for _, tc := range []struct{ name, want string }{
		{"not_wasm", "not a valid WebAssembly module"},
		{"truncated", "not a valid WebAssembly module"},
		{"unknown_import", "env.mystery"},
		{"wrong_sig", "wasmpool.input_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.CompileFile(ctx, testmod.WAT(t, tc.name))
			require.ErrorIs(t, err, engine.ErrBadModule)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), tc.name+".wasm", "the error names the module")
		})
	}
	_, err := e.Compile(ctx, nil)
	assert.ErrorIs(t, err, engine.ErrBadModule)
	_, err = e.CompileFile(ctx, filepath.Join(t.TempDir(), "missing.wasm"))
	assert.ErrorIs(t, err, engine.ErrBadModule)
}

func TestMemoryMinimumOverLimit(t *testing.T) {
	e := newEngine(t, engine.Config{MemoryLimitBytes: 256 << 20})
	_, err := e.CompileFile(context.Background(), testmod.WAT(t, "bigmem"))
	require.ErrorIs(t, err, engine.ErrMemoryLimit)
	assert.Contains(t, err.Error(), "512 MiB")

	roomy := newEngine(t, engine.Config{MemoryLimitBytes: 1 << 30})
	m := compileWAT(t, roomy, "bigmem")
	_, err = roomy.Run(context.Background(), engine.Task{Module: m, Func: "run"})
	require.NoError(t, err)
}

func TestEngineErrorsAreMatchable(t *testing.T) {
	// Errors compose: the module wrapper, the sentinel, and context errors.
	e := newEngine(t, engine.Config{})
	_, err := e.CompileFile(context.Background(), testmod.WAT(t, "not_wasm"))
	var me *engine.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "not_wasm.wasm", me.Module)
	assert.False(t, errors.Is(err, engine.ErrTimeout))
}

func compileC(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.C(t, name))
	require.NoError(t, err)
	return m
}
