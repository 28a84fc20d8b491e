package wasmbin

import (
	"encoding/binary"
	"sort"
	"strconv"
)

// Instrumented code moves every instruction, and adds functions and
// parameters, so the stack trace wazero prints for a trap in it would name
// wrappers, show the counters in every signature and point at offsets no
// source line belongs to. Instrument therefore leaves three marks that let
// the engine print the trace the original module would have given:
//
//   - every function of the module's own code is named in the name section
//     with FrameMarker after its name ("$" and its index in the input when
//     it had none, as wazero would print it), so that its counters can be
//     told from its own parameters and results;
//   - every function the pass adds is named WrapperName, so that its frames
//     can be dropped;
//   - a module with DWARF line information gets, in place of its DWARF,
//     one that maps every code offset to one line: wazero then prints each
//     frame's code offset, which SourceMap takes back to the input's, where
//     LineTable looks it up in the input's own DWARF.

// FrameMarker follows the name of each of the module's own functions in an
// instrumented module's name section. A NUL cannot come from a toolchain's
// names in practice, and reads as nothing if a trace is printed unmapped.
const FrameMarker = "\x00wasmpool"

// WrapperName names the functions Instrument adds.
const WrapperName = "\x00wasmpool:wrapper"

// syntheticFile is the one source file of the DWARF that stands in for the
// module's: what wazero prints after an offset, which the engine replaces.
const syntheticFile = "wasmpool:instrumented-offset"

// SourceMap takes a code offset in an instrumented module back to the
// offset of the instruction it came from in the input. Offsets are from the
// start of the code section's content, as DWARF and wazero count them.
type SourceMap struct {
	pairs []offsetPair // by out, ascending
}

type offsetPair struct{ out, in uint64 }

// InstrumentSourceMap instruments wasm as Instrument does with the same
// options and returns where each instruction went. It is meant for the
// rare trace to symbolise, not for every compile: the pass runs again.
func InstrumentSourceMap(wasm []byte, opts InstrumentOptions) (*SourceMap, error) {
	m, err := readModuleInfo(wasm)
	if err != nil {
		return nil, err
	}
	sm := &SourceMap{}
	if !m.hasCode || len(m.definedFuncs) == 0 {
		return sm, nil
	}
	in := newInstrumenter(m, opts)
	in.srcMap = sm
	if _, err := in.rewrite(wasm); err != nil {
		return nil, err
	}
	// Bodies are laid out in order and instructions within each in order,
	// so the pairs are sorted already; sort anyway, cheaply, in case a
	// later change emits out of order.
	sort.SliceStable(sm.pairs, func(i, j int) bool { return sm.pairs[i].out < sm.pairs[j].out })
	return sm, nil
}

// Original returns the input offset of the instruction whose rewritten
// code holds off: the last instruction that begins at or before it, so that
// a check inserted before an instruction maps to it. ok is false for an
// offset before the first function.
func (sm *SourceMap) Original(off uint64) (uint64, bool) {
	i := sort.Search(len(sm.pairs), func(i int) bool { return sm.pairs[i].out > off })
	if i == 0 {
		return 0, false
	}
	return sm.pairs[i-1].in, true
}

// frameName is what an instrumented module's name section calls function
// f of the input, whose name there was name.
func frameName(name string, f uint32) string {
	if name == "" {
		name = "$" + strconv.FormatUint(uint64(f), 10)
	}
	return name + FrameMarker
}

// syntheticDWARF returns the custom sections of a DWARF with one compile
// unit spanning every code offset and one line for all of it. wazero skips
// ranges starting at 0 (a linker's tombstone), so the unit starts at 1: no
// instruction can be at 0, where the section's function count is.
func syntheticDWARF() [][]byte {
	const (
		low, high = 1, 0xffff_fff0
	)
	abbrev := []byte{
		1, 0x11, 0, // abbreviation 1: DW_TAG_compile_unit, no children
		0x10, 0x17, // DW_AT_stmt_list, DW_FORM_sec_offset
		0x11, 0x01, // DW_AT_low_pc, DW_FORM_addr
		0x12, 0x01, // DW_AT_high_pc, DW_FORM_addr
		0, 0,
		0,
	}
	var info []byte
	info = binary.LittleEndian.AppendUint16(info, 4) // DWARF 4
	info = binary.LittleEndian.AppendUint32(info, 0) // its abbreviations' offset
	info = append(info, 4, 1)                        // address size; the unit's abbreviation
	info = binary.LittleEndian.AppendUint32(info, 0) // its line program's offset
	info = binary.LittleEndian.AppendUint32(info, low)
	info = binary.LittleEndian.AppendUint32(info, high)
	info = append(binary.LittleEndian.AppendUint32(nil, uint32(len(info))), info...)

	var header []byte
	header = append(header, 1, 1, 1)                            // min instruction length, max ops, default is_stmt
	header = append(header, 0xfb, 14, 13)                       // line base -5, line range, opcode base
	header = append(header, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1) // standard opcode lengths
	header = append(header, 0)                                  // no include directories
	header = append(header, syntheticFile...)                   // NUL-terminated by the 0 after
	header = append(header, 0, 0, 0, 0, 0)                      // its directory, time and size; end of files
	var program []byte
	setAddress := func(a uint32) {
		program = append(program, 0, 5, 2) // extended, 5 bytes, DW_LNE_set_address
		program = binary.LittleEndian.AppendUint32(program, a)
	}
	setAddress(low)
	program = append(program, 1) // DW_LNS_copy: the one row, line 1
	setAddress(high)
	program = append(program, 0, 1, 1) // DW_LNE_end_sequence
	var line []byte
	line = binary.LittleEndian.AppendUint16(line, 4)
	line = binary.LittleEndian.AppendUint32(line, uint32(len(header)))
	line = append(line, header...)
	line = append(line, program...)
	line = append(binary.LittleEndian.AppendUint32(nil, uint32(len(line))), line...)

	section := func(name string, content []byte) []byte {
		return append(appendName(nil, name), content...)
	}
	return [][]byte{
		section(".debug_abbrev", abbrev),
		section(".debug_info", info),
		section(".debug_line", line),
	}
}
