package wasmbin

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// stateOnly is what the engine learns of a module it compiles: nothing, if
// Check refuses it.
func stateOnly(wasm []byte) bool {
	f, err := Check(wasm)
	return err == nil && f.StateOnlyInMemoryAndGlobals()
}

// scanModule scans the code of any binary with sections, even one Check
// refuses (the hostile modules, whose code is ordinary).
func scanModule(wasm []byte) bool {
	secs, err := sections(wasm)
	if err != nil {
		return false
	}
	for _, s := range secs {
		if s.id == secCode {
			return scanCode(s.body.b)
		}
	}
	return true
}

func TestScanDecodesEveryShippedModule(t *testing.T) {
	names, err := testmod.Names()
	require.NoError(t, err)
	for _, name := range names {
		// Go's output uses no table or segment instruction: the whole
		// state of a Go guest is its memory and its globals.
		assert.True(t, stateOnly(testmod.Bytes(t, name)), name)
	}
	root, err := testmod.Root()
	require.NoError(t, err)
	wats, err := filepath.Glob(filepath.Join(root, "testdata", "wat", "*.wasm"))
	require.NoError(t, err)
	require.NotEmpty(t, wats)
	for _, path := range wats {
		name := strings.TrimSuffix(filepath.Base(path), ".wasm")
		want := true
		switch name {
		case "not_wasm", "truncated":
			want = false // not modules: nothing is proven
		case "tablemut":
			want = false // table.set, memory.init
		case "tablegrow":
			want = false // table.grow
		}
		// A decoding slip desynchronises the scan, which then fails: every
		// hand-written module must decode to its end.
		assert.Equal(t, want, scanModule(testmod.WATBytes(t, name)), name)
	}
}

func TestScanFindsEachMutatingInstruction(t *testing.T) {
	body := func(code ...byte) []byte {
		fn := append([]byte{0}, code...) // no locals
		fn = append(fn, 0x0b)
		return append([]byte{1, byte(len(fn))}, fn...)
	}
	for name, code := range map[string][]byte{
		"table.set":   {0x41, 0, 0xd0, 0x70, 0x26, 0},
		"memory.init": {0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 8, 0, 0},
		"data.drop":   {0xfc, 9, 0},
		"table.init":  {0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 12, 0, 0},
		"elem.drop":   {0xfc, 13, 0},
		"table.copy":  {0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 14, 0, 0},
		"table.grow":  {0xd0, 0x70, 0x41, 1, 0xfc, 15, 0, 0x1a},
		"table.fill":  {0x41, 0, 0xd0, 0x70, 0x41, 1, 0xfc, 17, 0},
	} {
		assert.False(t, scanCode(body(code...)), name)
	}
	for name, code := range map[string][]byte{
		"memory.copy": {0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 10, 0, 0},
		"memory.fill": {0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 0},
		"table.get":   {0x41, 0, 0x25, 0, 0x1a},
		"br_table":    {0x02, 0x40, 0x41, 0, 0x0e, 2, 0, 0, 0, 0x0b},
		"i64.const":   {0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x1a},
		"f64.const":   {0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x1a},
		"load":        {0x41, 0, 0x28, 2, 0x80, 0x01, 0x1a},
		// The decoder knows SIMD and atomics, which touch only memory.
		"v128.const": append(append([]byte{0xfd, 0x0c}, make([]byte, 16)...), 0x1a),
		"v128.load8_lane": append(append([]byte{0x41, 0, 0xfd, 0x0c}, make([]byte, 16)...),
			0xfd, 0x54, 0, 0, 3, 0x1a),
		"i32.atomic.rmw.add": {0x41, 0, 0x41, 1, 0xfe, 0x1e, 2, 0, 0x1a},
	} {
		assert.True(t, scanCode(body(code...)), name)
	}
	// What it cannot decode proves nothing.
	assert.False(t, scanCode(body(0x06, 0x40, 0x0b)), "try (exceptions)")
	assert.False(t, scanCode(body(0xfb, 0x00)), "a GC instruction")
	assert.False(t, scanCode(body(0xfd, 0x0c)), "v128.const cut off")
	assert.False(t, scanCode([]byte{1, 2, 0, 0x41}), "an immediate cut off by the body's end")
}

func FuzzScanCode(f *testing.F) {
	f.Add([]byte{1, 4, 0, 0x41, 0, 0x0b})
	f.Add([]byte{1, 3, 0, 0xfc, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = scanCode(b) // must not panic, whatever the bytes
	})
}
