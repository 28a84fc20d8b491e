package engine_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

const big = 0xFFFFFFFF

// allocatedBy returns how many bytes of Go heap f allocated.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Each of these tiny modules declares a count that wazero sized a buffer
// from before reading the entries. Before wasmbin.Check, compiling any of them
// killed the whole process with a fatal out-of-memory error (the data one
// "only" allocated 4 GiB), which no recover catches.
func TestHugeDeclaredCountsAreRefused(t *testing.T) {
	typ := section(1, []byte{1, 0x60, 0, 1, 0x7f})
	oneCode := section(10, []byte{1, 2, 0, 0x0b})
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"imports", wasmModule(section(2, uleb(big), wasmName("a"), wasmName("b"), []byte{0, 0}))},
		{"functions", wasmModule(typ, section(3, uleb(big), []byte{0}))},
		{"tables", wasmModule(section(4, uleb(big), []byte{0x70, 0, 0}))},
		{"globals", wasmModule(section(6, uleb(big), []byte{0x7f, 0, 0x41, 0, 0x0b}))},
		{"exports", wasmModule(section(7, uleb(big), wasmName("a"), []byte{0, 0}))},
		{"elements", wasmModule(section(9, uleb(big), []byte{0}))},
		{"element entries", wasmModule(section(9, []byte{1, 0, 0x41, 0, 0x0b}, uleb(big), []byte{0}))},
		{"code", wasmModule(typ, section(3, []byte{1, 0}), section(10, uleb(big), []byte{2, 0, 0x0b}))},
		{"data", wasmModule(section(5, []byte{1, 0, 1}), section(11, uleb(big), []byte{0, 0x41, 0, 0x0b, 0}))},
		{"data bytes", wasmModule(section(5, []byte{1, 0, 1}), section(11, []byte{1, 0, 0x41, 0, 0x0b}, uleb(big)))},
		{"parameters", wasmModule(section(1, []byte{1, 0x60}, uleb(big), []byte{0x7f}))},
		{"import name", wasmModule(section(2, []byte{1}, uleb(big), []byte("a")))},
		{"function names", wasmModule(section(0, wasmName("name"), []byte{1}, uleb(6), uleb(big), []byte{0, 0}))},
		{"local names", wasmModule(typ, section(3, []byte{1, 0}), oneCode,
			section(0, wasmName("name"), []byte{2}, uleb(11), []byte{1, 0}, uleb(big), []byte{0, 0}))},
		{"name subsection size", wasmModule(section(0, wasmName("name"), []byte{1}, uleb(big), []byte{0}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, engine.Config{CacheDir: t.TempDir()})
			var err error
			alloc := allocatedBy(func() { _, err = e.Compile(context.Background(), tc.wasm) })
			require.ErrorIs(t, err, engine.ErrBadModule)
			assert.Contains(t, err.Error(), "not a valid WebAssembly module")
			assert.Less(t, alloc, uint64(16<<20), "compiling %d bytes must not allocate %d", len(tc.wasm), alloc)
		})
	}
}

func TestLocalsLimit(t *testing.T) {
	e := newEngine(t, engine.Config{CacheDir: t.TempDir()})
	ctx := context.Background()
	locals := func(n uint64) []byte { return cat([]byte{1}, uleb(n), []byte{0x7e}) }

	// The most browsers accept compiles and runs...
	m, err := e.Compile(ctx, oneFunc(locals(50_000), []byte{0x41, 7}))
	require.NoError(t, err)
	res, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}})
	require.NoError(t, err)
	assert.Equal(t, []uint64{7}, res.Values)

	// ...one more is refused before wazero spends anything on it; a hundred
	// million took seconds and gigabytes to compile.
	for _, n := range []uint64{50_001, 100_000_000, big} {
		var err error
		alloc := allocatedBy(func() { _, err = e.Compile(ctx, oneFunc(locals(n), []byte{0x41, 7})) })
		require.ErrorIs(t, err, engine.ErrBadModule, "%d locals", n)
		assert.Contains(t, err.Error(), "more than 50000 locals")
		assert.Less(t, alloc, uint64(16<<20))
	}
	// Split over several groups, they still add up.
	two := cat([]byte{2}, uleb(30_000), []byte{0x7f}, uleb(30_000), []byte{0x7e})
	_, err = e.Compile(ctx, oneFunc(two, []byte{0x41, 7}))
	assert.ErrorIs(t, err, engine.ErrBadModule)
}

// A table is host memory the memory limit does not see: 8 bytes an
// element. A guest could grow one by billions of elements (a fatal
// out-of-memory for the host) or declare one of 2^27.
func TestTablesAreCapped(t *testing.T) {
	e := newEngine(t, engine.Config{CacheDir: t.TempDir()})
	ctx := context.Background()
	wasm := testmod.WATBytes(t, "tablegrow")
	m, err := e.Compile(ctx, wasm)
	require.NoError(t, err)
	assert.Equal(t, len(wasm), m.Size(), "the size is the input's, whatever is compiled")

	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	inst, err := rt.Instantiate(ctx, engine.Task{Module: m, Func: "grow"})
	require.NoError(t, err)
	defer inst.Close(ctx)
	call := func(fn string, params ...uint64) int32 {
		t.Helper()
		if params == nil {
			params = []uint64{}
		}
		res, err := inst.Call(ctx, engine.Task{Module: m, Func: fn, Params: params})
		require.NoError(t, err)
		return api.DecodeI32(res.Values[0])
	}
	for _, n := range []uint32{big, 0x7fffffff, 10_000_000} {
		var got int32
		alloc := allocatedBy(func() { got = call("grow", uint64(n)) })
		assert.Equal(t, int32(-1), got, "growing by %d must fail", n)
		assert.Less(t, alloc, uint64(16<<20))
	}
	assert.Equal(t, int32(1), call("size"))
	// Up to the cap, growing works.
	assert.Equal(t, int32(1), call("grow", 9_999_999))
	assert.Equal(t, int32(10_000_000), call("size"))
	assert.Equal(t, int32(-1), call("grow", 1))

	// A declared minimum over the cap is refused like a memory minimum over
	// the memory limit.
	for _, min := range []uint64{10_000_001, 100_000_000} {
		_, err := e.Compile(ctx, wasmModule(section(4, []byte{1, 0x70, 0}, uleb(min))))
		require.ErrorIs(t, err, engine.ErrMemoryLimit)
		assert.Contains(t, err.Error(), "over the limit of 10000000")
	}
	// Several tables share the cap.
	two := wasmModule(section(4, []byte{2, 0x70, 0}, uleb(6_000_000), []byte{0x70, 0}, uleb(6_000_000)))
	_, err = e.Compile(ctx, two)
	require.ErrorIs(t, err, engine.ErrMemoryLimit)
}

func TestTableAndGlobalImportsAreRefused(t *testing.T) {
	e := newEngine(t, engine.Config{CacheDir: t.TempDir()})
	for name, imp := range map[string][]byte{
		"table":  cat(wasmName("env"), wasmName("t"), []byte{1, 0x70, 0, 1}),
		"global": cat(wasmName("env"), wasmName("g"), []byte{3, 0x7f, 0}),
	} {
		_, err := e.Compile(context.Background(), wasmModule(section(2, []byte{1}, imp)))
		require.ErrorIs(t, err, engine.ErrBadModule, name)
		assert.Contains(t, err.Error(), "imports "+name+" env.", name)
		assert.Contains(t, err.Error(), "does not provide")
	}
}
