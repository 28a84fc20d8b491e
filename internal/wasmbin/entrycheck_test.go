package wasmbin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entryChecks instruments a module of one type, (i32) -> (), whose
// functions have the given bodies (without locals), and says which of
// them got a check on entry.
func entryChecks(t *testing.T, bodies ...[]byte) []bool {
	t.Helper()
	var funcs, code [][]byte
	for _, b := range bodies {
		funcs = append(funcs, []byte{0})
		body := cat([]byte{0}, b, []byte{opEnd})
		code = append(code, cat(uleb(uint64(len(body))), body))
	}
	wasm := wasmModule(
		sectionBytes(secType, []byte{1, 0x60, 1, valueI32, 0}),
		sectionBytes(secFunction, uleb(uint64(len(funcs))), cat(funcs...)),
		sectionBytes(secCode, uleb(uint64(len(code))), cat(code...)),
	)
	m, err := readModuleInfo(wasm)
	require.NoError(t, err)
	in := newInstrumenter(m, InstrumentOptions{})
	require.NoError(t, in.leafWeights(m.code))
	r := m.code
	n, err := r.u32()
	require.NoError(t, err)
	var out []bool
	for i := range n {
		size, err := r.u32()
		require.NoError(t, err)
		fn, err := r.sub(uint64(size))
		require.NoError(t, err)
		require.NoError(t, skipLocals(&fn))
		entry, err := in.analyse(fn, i)
		require.NoError(t, err)
		out = append(out, entry)
	}
	_, err = Instrument(wasm, InstrumentOptions{})
	require.NoError(t, err)
	return out
}

// A function needs a check on entry only if it can call something before
// any of its checks: recursion through it must pass a check each time.
func TestEntryCheckOnlyWhereACallPrecedesEveryCheck(t *testing.T) {
	callSelf := []byte{opLocalGet, 0, opCall, 0}
	got := entryChecks(t,
		// a call inside a loop: reached only through the loop's check
		cat([]byte{opLoop, blockTypeEmpty}, callSelf, []byte{opLocalGet, 0, opBrIf, 0, opEnd}),
		// an early return, then the loop: fib as clang writes it
		cat([]byte{opLocalGet, 0, opIf, blockTypeEmpty, opReturn, opEnd, opLoop, blockTypeEmpty}, callSelf, []byte{opLocalGet, 0, opBrIf, 0, opEnd}),
		// a call outside any loop
		cat([]byte{opLocalGet, 0, opIf, blockTypeEmpty}, callSelf, []byte{opEnd}),
		// a branch around the loop to a call after it
		cat([]byte{opBlock, blockTypeEmpty, opLocalGet, 0, opBrIf, 0, opLoop, blockTypeEmpty, opLocalGet, 0, opBrIf, 0, opEnd, opEnd}, callSelf),
		// a leaf
		[]byte{opLocalGet, 0, opDrop},
	)
	assert.Equal(t, []bool{false, false, true, true, false}, got)
}

// A loop's yield is outside the loop it checks, in the $outer loop that
// re-enters it: wazevo spills a loop's registers when a call is inside it,
// even on a path never taken (see loopCheck). Only the entry check, whose
// loop wraps the whole function, yields inside its own if (loops with
// parameters would too: none in the fixtures).
func TestNoYieldInsideALoop(t *testing.T) {
	yields := 0
	for _, path := range fixturePaths(t, "fib", "sha256") {
		wasm, err := os.ReadFile(path)
		require.NoError(t, err)
		out, err := Instrument(wasm, InstrumentOptions{})
		if err != nil {
			continue // not a module the engine instruments
		}
		m, err := readModuleInfo(out)
		require.NoError(t, err)
		yield := uint32(0)
		for i, imp := range m.importTypes {
			_ = imp
			yield = uint32(i) // the last import is the one added: yield
		}
		r := m.code
		n, err := r.u32()
		require.NoError(t, err)
		for f := range n {
			size, _ := r.u32()
			fn, _ := r.sub(uint64(size))
			require.NoError(t, skipLocals(&fn))
			d := decoder{r: fn, base: fn.off}
			var ins instr
			var frames []byte
			for !d.r.done() {
				require.NoError(t, d.next(&ins))
				switch ins.op {
				case opBlock, opLoop, opIf:
					frames = append(frames, ins.op)
				case opEnd:
					if len(frames) > 0 {
						frames = frames[:len(frames)-1]
					}
				case opCall:
					if ins.idx != yield {
						continue
					}
					innermost := frames[len(frames)-1]
					entry := len(frames) == 2 && frames[0] == opLoop && innermost == opIf
					assert.True(t, innermost == opLoop || entry, "%s: function %d yields inside the loop it checks", filepath.Base(path), f)
					yields++
				}
			}
		}
	}
	assert.Greater(t, yields, 1000)
}
