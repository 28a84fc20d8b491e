package wasmbin

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

const big = 0xFFFFFFFF

// The engine's tests compile these through wazero and bound what that
// allocates; here, what Check calls them, which decides how the engine
// reports them.
func TestCheckRefusesCountsOverTheBytesLeft(t *testing.T) {
	typ := sectionBytes(1, []byte{1, 0x60, 0, 1, 0x7f})
	for name, wasm := range map[string][]byte{
		"imports":        wasmModule(sectionBytes(2, uleb(big), wasmName("a"), wasmName("b"), []byte{0, 0})),
		"functions":      wasmModule(typ, sectionBytes(3, uleb(big), []byte{0})),
		"data bytes":     wasmModule(sectionBytes(5, []byte{1, 0, 1}), sectionBytes(11, []byte{1, 0, 0x41, 0, 0x0b}, uleb(big))),
		"function names": wasmModule(sectionBytes(0, wasmName("name"), []byte{1}, uleb(6), uleb(big), []byte{0, 0})),
		"parameters":     wasmModule(sectionBytes(1, []byte{1, 0x60}, uleb(big), []byte{0x7f})),
	} {
		_, err := Check(wasm)
		var short *ShortError
		require.ErrorAs(t, err, &short, name)
		var le *LimitError
		assert.False(t, errors.As(err, &le), name)
	}
}

func TestCheckLimits(t *testing.T) {
	fn := func(locals []byte) []byte {
		body := cat(locals, []byte{0x41, 7, 0x0b})
		return wasmModule(
			sectionBytes(1, []byte{1, 0x60, 0, 1, 0x7f}),
			sectionBytes(3, []byte{1, 0}),
			sectionBytes(10, []byte{1}, uleb(uint64(len(body))), body))
	}
	_, err := Check(fn(cat([]byte{1}, uleb(50_000), []byte{0x7e})))
	require.NoError(t, err)
	_, err = Check(fn(cat([]byte{2}, uleb(30_000), []byte{0x7f}, uleb(30_000), []byte{0x7e})))
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.False(t, le.Memory, "too many locals is a bad module, not a memory limit")
	assert.Contains(t, err.Error(), "declares more than 50000 locals")

	// The tables' minima, defined and imported, count together.
	imported := sectionBytes(2, []byte{1}, wasmName("env"), wasmName("t"), []byte{1, 0x70, 0}, uleb(6_000_000))
	defined := sectionBytes(4, []byte{1, 0x70, 0}, uleb(6_000_000))
	_, err = Check(wasmModule(imported, defined))
	require.ErrorAs(t, err, &le)
	assert.True(t, le.Memory)
	assert.Equal(t, "the module declares tables of 12000000 elements, over the limit of 10000000", err.Error())
}

func TestCheckFacts(t *testing.T) {
	wasm := wasmModule(
		sectionBytes(2, []byte{3},
			wasmName("env"), wasmName("mem"), []byte{2, 0, 3}, // memory, min 3 pages
			wasmName("env"), wasmName("g\n"), []byte{3, 0x7f, 0}, // global
			wasmName("env"), wasmName("t"), []byte{1, 0x70, 0, 1}), // table
		sectionBytes(5, []byte{1, 0, 2}),
	)
	f, err := Check(wasm)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), f.MemoryMinPages, "the largest minimum, imported or defined")
	assert.Equal(t, &Import{Kind: "global", Module: "env", Name: "g\n"}, f.Unsatisfiable, "the first one")
	assert.False(t, f.TablesNeedCap, "imported tables are the host's")
	assert.True(t, f.StateOnlyInMemoryAndGlobals(), "no code")
}

// A module with two faults: an unchecked count in its first section, a
// section out of order after it. wazero meets the count first, and sizes a
// buffer from it, so Check must report that one: a caller may give wazero
// bytes Check calls malformed (the fuzz test does), never bytes with a count
// Check did not check.
func TestCheckReportsFaultsInWazerosOrder(t *testing.T) {
	wasm := wasmModule(
		sectionBytes(3, uleb(big), []byte{0}),
		sectionBytes(1, []byte{0}), // out of order
	)
	_, err := Check(wasm)
	var short *ShortError
	require.ErrorAs(t, err, &short)
	assert.Contains(t, err.Error(), "the function section declares 4294967295 entries")

	wasm = wasmModule(sectionBytes(3, []byte{0}), sectionBytes(1, []byte{0}))
	_, err = Check(wasm)
	assert.EqualError(t, err, "the type section at offset 11 is out of order")
}

func TestCheckNameSectionSizes(t *testing.T) {
	// A function name map of one entry, declared one byte longer than it is.
	names := cat([]byte{1}, uleb(1), wasmName("f"))
	wasm := wasmModule(sectionBytes(0, wasmName("name"), []byte{1}, uleb(uint64(len(names)+1)), names, []byte{0}))
	_, err := Check(wasm)
	assert.EqualError(t, err, "custom section: name section: subsection 1 declares 5 bytes but holds 4")
}

func TestRewriteCapsTables(t *testing.T) {
	// Three defined tables: without a maximum, with a small one, with one
	// over the cap.
	wasm := wasmModule(sectionBytes(4, []byte{3},
		[]byte{0x70, 0}, uleb(100),
		[]byte{0x70, 1}, uleb(10), uleb(20),
		[]byte{0x6f, 1}, uleb(5), uleb(big)))
	f, err := Check(wasm)
	require.NoError(t, err)
	require.True(t, f.TablesNeedCap)
	rw, err := Rewrite(wasm, f, RewriteOptions{})
	require.NoError(t, err)

	capped, err := Check(rw.Wasm)
	require.NoError(t, err)
	assert.False(t, capped.TablesNeedCap)
	var maxima []uint64
	for _, tb := range capped.tables {
		require.True(t, tb.hasMax)
		maxima = append(maxima, tb.max)
	}
	// The room above the minima (10,000,000 - 115) goes to the tables in
	// order, each up to the maximum it declared.
	assert.Equal(t, []uint64{100 + 10_000_000 - 115, 10, 5}, maxima)

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	_, err = r.CompileModule(ctx, rw.Wasm)
	require.NoError(t, err, "wazero accepts the capped tables")
}

func TestRewriteNeedsTheFactsOfTheSameBytes(t *testing.T) {
	a := wasmModule(sectionBytes(5, []byte{1, 0, 1}))
	f, err := Check(a)
	require.NoError(t, err)
	_, err = Rewrite(append(a, sectionBytes(0, wasmName("x"))...), f, RewriteOptions{})
	require.Error(t, err)
	_, err = Rewrite(a, nil, RewriteOptions{})
	require.Error(t, err)
	rw, err := Rewrite(a, f, RewriteOptions{Preinitialize: true})
	require.NoError(t, err)
	assert.Equal(t, &a[0], &rw.Wasm[0], "nothing to rewrite: the input itself")
	assert.False(t, rw.Preinitializable, "no _initialize")
}
