package wasmbin

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

// wazero reads the opcode after the SIMD prefix as one byte, where the spec
// has a LEB128 number: 0xfd 0x8c 0x00 is v128.const to a spec decoder and
// i16x8.shr_s then unreachable to wazero. A decoder that read it the spec's
// way would skip sixteen bytes that wazero runs, here a table.set after the
// block ends: the scan would prove pre-initialisable a module that mutates
// its table.
func TestDecoderReadsPrefixedOpcodesAsWazeroDoes(t *testing.T) {
	v128 := make([]byte, 16)
	hidden := cat(
		[]byte{0x0b},                // end (of the block)
		[]byte{0x41, 0},             // i32.const 0
		[]byte{0xd0, 0x70},          // ref.null func
		[]byte{0x26, 0},             // table.set 0
		[]byte{0x02, 0x40},          // block
		[]byte{1, 1, 1, 1, 1, 1, 1}) // nops
	require.Len(t, hidden, 16)
	body := cat([]byte{0}, // no locals
		[]byte{0x02, 0x40},       // block
		[]byte{0xfd, 0x0c}, v128, // v128.const
		[]byte{0x41, 1},          // i32.const 1
		[]byte{0xfd, 0x8c, 0x00}, // i16x8.shr_s, unreachable (to wazero)
		hidden,
		[]byte{0x0b, 0x0b})
	wasm := wasmModule(
		sectionBytes(1, []byte{1, 0x60, 0, 0}),
		sectionBytes(3, []byte{1, 0}),
		sectionBytes(4, []byte{1, 0x70, 0, 1}),
		sectionBytes(10, []byte{1}, uleb(uint64(len(body))), body))

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	_, err := r.CompileModule(ctx, wasm)
	require.NoError(t, err, "wazero accepts the module")
	assert.False(t, stateOnly(wasm), "the table.set wazero sees must not be hidden")

	// The canonical encoding of an opcode over 0x7f is read alike: the
	// opcode byte, and a 0x01 that wazero reads as a nop.
	dot := cat([]byte{0}, []byte{0xfd, 0x0c}, v128, []byte{0xfd, 0x0c}, v128,
		[]byte{0xfd, 0xba, 0x01}, // i32x4.dot_i16x8_s
		[]byte{0x1a, 0x0b})
	wasm = wasmModule(
		sectionBytes(1, []byte{1, 0x60, 0, 0}),
		sectionBytes(3, []byte{1, 0}),
		sectionBytes(10, []byte{1}, uleb(uint64(len(dot))), dot))
	_, err = r.CompileModule(ctx, wasm)
	require.NoError(t, err)
	assert.True(t, stateOnly(wasm))
}
