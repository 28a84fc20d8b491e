package wasmbin

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// memoryImage instantiates wasm without running any start function and
// returns its whole linear memory, or the instantiation error.
func memoryImage(t *testing.T, wasm []byte) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	// The interpreter: applying data segments is the store's work, the same
	// for both engines, and the interpreter compiles a Go guest in a fraction
	// of the compiler's time (this test compiles each one twice, uncached).
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, wasm)
	require.NoError(t, err)
	for _, imp := range compiled.ImportedFunctions() {
		mod, name, _ := imp.Import()
		// Go guests import WASI and the ABI; no start function runs, so
		// stubs of the right signature are enough.
		b := r.NewHostModuleBuilder(mod)
		if r.Module(mod) != nil {
			continue
		}
		for _, f := range compiled.ImportedFunctions() {
			if m, n, _ := f.Import(); m == mod {
				b.NewFunctionBuilder().WithGoFunction(noopHostFunc{}, f.ParamTypes(), f.ResultTypes()).Export(n)
			}
		}
		_, err := b.Instantiate(ctx)
		require.NoError(t, err, name)
	}
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		return nil, err
	}
	mem := mod.ExportedMemory("memory")
	require.NotNil(t, mem)
	b, ok := mem.Read(0, mem.Size())
	require.True(t, ok)
	return bytes.Clone(b), nil
}

type noopHostFunc struct{}

func (noopHostFunc) Call(context.Context, []uint64) {}

func TestMergeDataSegmentsKeepsGoGuestsMemoryExact(t *testing.T) {
	// A reactor, a command and the largest guest: one linker lays out all
	// of them the same way, and each costs two interpreter compiles.
	for _, name := range []string{"upper", "wasicmd", "jsonx"} {
		t.Run(name, func(t *testing.T) {
			wasm := testmod.Bytes(t, name)
			merged := mergeDataSegments(t, wasm)
			require.Less(t, len(merged), len(wasm)*2, "the rewrite must not blow the module up")
			before, err := activeSegmentCount(wasm)
			require.NoError(t, err)
			after, err := activeSegmentCount(merged)
			require.NoError(t, err)
			require.Less(t, after, before/100, "a Go guest's segments are merged (%d -> %d)", before, after)

			want, err := memoryImage(t, wasm)
			require.NoError(t, err)
			got, err := memoryImage(t, merged)
			require.NoError(t, err)
			require.Equal(t, len(want), len(got))
			assert.True(t, bytes.Equal(want, got), "the memory after instantiation differs")
		})
	}
}

func activeSegmentCount(wasm []byte) (int, error) {
	secs, err := sections(wasm)
	if err != nil {
		return 0, err
	}
	for _, s := range secs {
		if s.id == secData {
			n, err := s.body.u32()
			return int(n), err
		}
	}
	return 0, nil
}

// mergeDataSegments applies Rewrite's data merge alone (a Go guest's
// tables are capped too). A module Check refuses is returned as it is: the
// engine never rewrites one.
func mergeDataSegments(t *testing.T, wasm []byte) []byte {
	t.Helper()
	facts, err := Check(wasm)
	if err != nil {
		return wasm
	}
	edit, ok := dataEdit(facts)
	if !ok {
		return wasm
	}
	return splice(wasm, edit)
}

// seg is one data segment of a hand-assembled module: flag 0 with an
// i32.const offset, unless raw (the whole encoded segment) is given.
type seg struct {
	offset int32
	data   string
	raw    []byte
}

// moduleWithData assembles a module with a memory of minPages, exported as
// "memory", and the given data segments; extra sections go before the data
// section (ids must stay in order: 12, data count, is the only one used).
func moduleWithData(minPages uint32, segs []seg, extra ...[]byte) []byte {
	section := func(id byte, body []byte) []byte {
		return append(binary.AppendUvarint([]byte{id}, uint64(len(body))), body...)
	}
	w := []byte("\x00asm\x01\x00\x00\x00")
	w = append(w, section(5, append([]byte{1, 0}, binary.AppendUvarint(nil, uint64(minPages))...))...)
	w = append(w, section(7, []byte{1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0})...)
	for _, x := range extra {
		w = append(w, x...)
	}
	body := binary.AppendUvarint(nil, uint64(len(segs)))
	for _, s := range segs {
		if s.raw != nil {
			body = append(body, s.raw...)
			continue
		}
		body = append(body, 0, 0x41)
		body = appendSLEB(body, int64(s.offset))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, uint64(len(s.data)))
		body = append(body, s.data...)
	}
	return append(w, section(11, body)...)
}

func TestMergeDataSegmentsMergesAcrossSmallGapsOnly(t *testing.T) {
	wasm := moduleWithData(1, []seg{
		{offset: 300, data: "third"},
		{offset: 100, data: "first"},
		{offset: 140, data: "second"},  // 35 zero bytes after "first"
		{offset: 9000, data: "far"},    // more than maxMergedGap after "third"
		{offset: 65535, data: "x"},     // the last byte of the memory
		{offset: 2000, data: ""},       // empty: nothing to write
		{offset: 12000, data: "after"}, // within the gap of "far"
	})
	merged := mergeDataSegments(t, wasm)
	n, err := activeSegmentCount(merged)
	require.NoError(t, err)
	// Sorted: 100..305 and the empty 2000 are under 4096 apart; 9000 is 7000
	// past 2000 and starts anew, 12000 joins it; 65535 is far past 12005.
	assert.Equal(t, 3, n, "want [100, 2000], [9000, 12005], [65535]")

	want, err := memoryImage(t, wasm)
	require.NoError(t, err)
	got, err := memoryImage(t, merged)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
}

func TestMergeDataSegmentsLeavesInexactCasesAlone(t *testing.T) {
	for name, wasm := range map[string][]byte{
		// Applied in file order "aaaa" overwrites "bb": sorting by offset
		// first would let "bb" win.
		"overlapping":     moduleWithData(1, []seg{{offset: 12, data: "bb"}, {offset: 10, data: "aaaa"}, {offset: 30, data: "c"}}),
		"out of bounds":   moduleWithData(1, []seg{{offset: 10, data: "a"}, {offset: 65535, data: "too long"}}),
		"negative offset": moduleWithData(1, []seg{{offset: 10, data: "a"}, {offset: -4, data: "b"}}),
		"passive segment": moduleWithData(1, []seg{{offset: 10, data: "a"}, {raw: []byte{1, 1, 'p'}}},
			[]byte{12, 1, 2}), // a data count section, as passive segments need
		"data count section": moduleWithData(1, []seg{{offset: 10, data: "a"}, {offset: 20, data: "b"}},
			[]byte{12, 1, 2}),
		"global offset": moduleWithData(1, []seg{{offset: 10, data: "a"}, {raw: []byte{0, 0x23, 0, 0x0b, 1, 'g'}}}),
		"one segment":   moduleWithData(1, []seg{{offset: 10, data: "a"}}),
		"truncated":     moduleWithData(1, []seg{{offset: 10, data: "a"}, {offset: 20, data: "b"}})[:30],
		"not wasm":      []byte("hello, world"),
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, wasm, mergeDataSegments(t, wasm), "must be returned as it is")
		})
	}
}

func TestSLEB128RoundTrip(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, 64, -64, -65, 1 << 20, -1 << 31, 1<<31 - 1} {
		r := reader{b: appendSLEB(nil, int64(v))}
		got, err := r.s32()
		require.NoError(t, err)
		assert.Equal(t, v, got)
		assert.True(t, r.done())
	}
}
