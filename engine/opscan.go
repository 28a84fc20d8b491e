package engine

import "errors"

// codeFacts is what a scan of a module's function bodies proves about it.
type codeFacts struct {
	// stateOnlyInMemoryAndGlobals: no instruction can change a table or a
	// segment's state (table.set, table.grow, table.fill, table.copy,
	// table.init, elem.drop, memory.init, data.drop). Such a module's whole
	// mutable state after instantiation is its linear memory and its
	// globals, which is what a template can capture (see template.go).
	stateOnlyInMemoryAndGlobals bool
}

// errUnknownOpcode ends a scan at an instruction the scanner does not
// decode (SIMD, threads, exceptions, a proposal yet to come): the module is
// then simply not proven to be anything.
var errUnknownOpcode = errors.New("an instruction the scanner does not decode")

// scanCode decodes every instruction of every function body in the code
// section body. It never panics on hostile input: anything it cannot decode
// yields the zero codeFacts, which proves nothing.
func scanCode(body []byte) codeFacts {
	r := reader{b: body}
	n, err := r.u32()
	if err != nil {
		return codeFacts{}
	}
	facts := codeFacts{stateOnlyInMemoryAndGlobals: true}
	for range n {
		size, err := r.u32()
		if err != nil {
			return codeFacts{}
		}
		fn, err := r.bytes(uint64(size))
		if err != nil {
			return codeFacts{}
		}
		mutates, err := scanFunction(reader{b: fn})
		if err != nil {
			return codeFacts{}
		}
		if mutates {
			facts.stateOnlyInMemoryAndGlobals = false
		}
	}
	if !r.done() {
		return codeFacts{}
	}
	return facts
}

// scanFunction decodes one function body (locals, then instructions) and
// reports whether it holds an instruction that mutates a table or a segment.
func scanFunction(r reader) (mutates bool, err error) {
	groups, err := r.u32()
	if err != nil {
		return false, err
	}
	for range groups {
		if _, err := r.u32(); err != nil {
			return false, err
		}
		if _, err := r.byte(); err != nil {
			return false, err
		}
	}
	for !r.done() {
		op, err := r.byte()
		if err != nil {
			return false, err
		}
		m, err := skipImmediates(&r, op)
		if err != nil {
			return false, err
		}
		mutates = mutates || m
	}
	return mutates, nil
}

// skipImmediates consumes the immediates of op and reports whether op is a
// table or segment mutation.
func skipImmediates(r *reader, op byte) (mutates bool, err error) {
	u32s := func(n int) error {
		for range n {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	}
	switch {
	case op <= 0x01, op == 0x05, op == 0x0B, op == 0x0F, op == 0x1A, op == 0x1B, op == 0xD1:
		return false, nil // no immediates
	case op >= 0x45 && op <= 0xC4:
		return false, nil // numeric instructions, sign extension included
	case op >= 0x02 && op <= 0x04: // block, loop, if: a block type
		return false, skipBlockType(r)
	case op == 0x0C, op == 0x0D, op == 0x10, op == 0x12, op == 0xD2: // br, br_if, call, return_call, ref.func
		return false, u32s(1)
	case op >= 0x20 && op <= 0x25: // locals, globals, table.get
		return false, u32s(1)
	case op == 0x26: // table.set
		return true, u32s(1)
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		return false, u32s(2)
	case op == 0x0E: // br_table
		n, err := r.u32()
		if err != nil {
			return false, err
		}
		return false, u32s(int(n) + 1)
	case op == 0x1C: // select with types
		n, err := r.u32()
		if err != nil {
			return false, err
		}
		_, err = r.bytes(uint64(n))
		return false, err
	case op >= 0x28 && op <= 0x3E: // loads and stores: a memarg
		return false, skipMemarg(r)
	case op == 0x3F, op == 0x40: // memory.size, memory.grow
		return false, u32s(1)
	case op == 0x41:
		_, err := r.s32()
		return false, err
	case op == 0x42:
		return false, r.skipSLEB(64)
	case op == 0x43:
		_, err := r.bytes(4)
		return false, err
	case op == 0x44:
		_, err := r.bytes(8)
		return false, err
	case op == 0xD0: // ref.null: a reference type
		_, err := r.byte()
		return false, err
	case op == 0xFC:
		sub, err := r.u32()
		if err != nil {
			return false, err
		}
		switch {
		case sub <= 7: // saturating conversions
			return false, nil
		case sub == 8, sub == 12, sub == 14: // memory.init, table.init, table.copy
			return true, u32s(2)
		case sub == 9, sub == 13, sub == 15, sub == 17: // data.drop, elem.drop, table.grow, table.fill
			return true, u32s(1)
		case sub == 10: // memory.copy
			return false, u32s(2)
		case sub == 11, sub == 16: // memory.fill, table.size
			return false, u32s(1)
		}
	}
	return false, errUnknownOpcode
}

func skipBlockType(r *reader) error {
	if len(r.b) > 0 && (r.b[0] == 0x40 || (r.b[0] >= 0x6F && r.b[0] <= 0x7F)) {
		_, err := r.byte() // empty, or one value type
		return err
	}
	return r.skipSLEB(33) // a type index, as s33
}

func skipMemarg(r *reader) error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 { // multi-memory: a memory index follows
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	_, err = r.uleb(64)
	return err
}

// scanModule finds the code section of wasm and scans it. A module without
// code proves the facts trivially.
func scanModule(wasm []byte) codeFacts {
	var code []byte
	if !eachSection(wasm, func(id byte, _, _ int, body []byte) bool {
		if id == 10 {
			code = body
		}
		return true
	}) {
		return codeFacts{}
	}
	if code == nil {
		return codeFacts{stateOnlyInMemoryAndGlobals: true}
	}
	return scanCode(code)
}
