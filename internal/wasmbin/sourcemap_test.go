package wasmbin

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func codeSection(t *testing.T, wasm []byte) []byte {
	secs, err := sections(wasm)
	require.NoError(t, err)
	for _, s := range secs {
		if s.id == secCode {
			return s.body.b
		}
	}
	t.Fatal("no code section")
	return nil
}

// Every instruction the pass copies as it was must be found, through the
// source map, at the same bytes in the input; every offset inside what it
// inserted maps to an instruction of the input.
func TestSourceMapFindsEachInstruction(t *testing.T) {
	rewritten := map[byte]bool{opLocalGet: true, opLocalSet: true, opLocalTee: true, opCall: true,
		opCallIndirect: true, opRefFunc: true, opReturn: true}
	checked := 0
	for _, path := range fixturePaths(t, "fib", "sha256") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			wasm, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, fuel := range []bool{false, true} {
				opts := InstrumentOptions{Fuel: fuel}
				out, err := Instrument(wasm, opts)
				if err != nil {
					return // not a module the engine instruments: it refuses it
				}
				sm, err := InstrumentSourceMap(wasm, opts)
				require.NoError(t, err)
				in, got := codeSection(t, wasm), codeSection(t, out)
				for i, p := range sm.pairs {
					if p.out >= uint64(len(got)) || p.in >= uint64(len(in)) {
						t.Fatalf("pair %d (0x%x → 0x%x) is outside the code", i, p.out, p.in)
					}
					if o, ok := sm.Original(p.out); !ok || o != p.in {
						t.Fatalf("0x%x maps to 0x%x, not 0x%x", p.out, o, p.in)
					}
					// A function's own checks map to its first instruction
					// as well: only the second pair is that instruction.
					start := i+1 < len(sm.pairs) && sm.pairs[i+1].in == p.in
					if !start && !rewritten[in[p.in]] && in[p.in] != opEnd {
						if in[p.in] != got[p.out] {
							t.Fatalf("the instruction at 0x%x (now 0x%x) was 0x%x, is 0x%x", p.in, p.out, in[p.in], got[p.out])
						}
						checked++
					}
				}
				// Inside inserted code: the instruction before it.
				if len(sm.pairs) > 1 {
					p := sm.pairs[len(sm.pairs)/2]
					o, ok := sm.Original(p.out + 1)
					assert.True(t, ok)
					assert.GreaterOrEqual(t, o, p.in)
				}
			}
		})
	}
	assert.Greater(t, checked, 10_000, "instructions checked")
}

// The synthetic DWARF gives every code offset a line, so that wazero
// prints each frame's offset; the input's own DWARF gives the real lines.
func TestSyntheticDWARFCoversEveryOffset(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join("..", "..", "testdata", "c", "ctool.wasm"))
	require.NoError(t, err)
	out, err := Instrument(wasm, InstrumentOptions{})
	require.NoError(t, err)
	synthetic, err := ReadLineTable(out)
	require.NoError(t, err)
	require.NotNil(t, synthetic)
	for _, off := range []uint64{1, 0x10, 0x442, 123456} {
		assert.Equal(t, []string{fmt.Sprintf("%#x: %s:1", off, syntheticFile)}, synthetic.Lines(off))
	}
	own, err := ReadLineTable(wasm)
	require.NoError(t, err)
	assert.Equal(t, []string{"0x442: modules/c/ctool.c:87:21"}, own.Lines(0x442), "as wazero run prints it")

	plain, err := ReadLineTable(codeOnly(t))
	require.NoError(t, err)
	assert.Nil(t, plain, "a module without DWARF")
}

func codeOnly(t *testing.T) []byte {
	wasm, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wat", "fibrec.wasm"))
	require.NoError(t, err)
	return wasm
}
