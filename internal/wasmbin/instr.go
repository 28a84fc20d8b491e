package wasmbin

import (
	"errors"
	"fmt"
)

// The instruction decoder: one for every pass that reads code (the scan
// that proves a module pre-initialisable, the instrumentation). It decodes
// what wazero accepts with the features the engine enables (WebAssembly 2.0:
// bulk memory, reference types, multi-value, SIMD, sign extension,
// non-trapping conversions) plus tail calls and threads, whose encodings are
// settled. Anything else (exceptions, GC, typed function references) ends
// the decoding with errUnknownOpcode: a module using them is then simply not
// proven or rewritten, and wazero, which refuses those features here, says
// why it cannot run.

// errUnknownOpcode ends a decoding at an instruction the decoder does not
// know.
var errUnknownOpcode = errors.New("an instruction the decoder does not know")

// Opcodes the passes look at.
const (
	opUnreachable  = 0x00
	opNop          = 0x01
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opReturn       = 0x0f
	opCall         = 0x10
	opCallIndirect = 0x11
	opReturnCall   = 0x12
	opReturnCallIn = 0x13
	opDrop         = 0x1a
	opLocalGet     = 0x20
	opLocalSet     = 0x21
	opLocalTee     = 0x22
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opTableSet     = 0x26
	opI32Const     = 0x41
	opI64Const     = 0x42
	opF32Const     = 0x43
	opF64Const     = 0x44
	opI32Add       = 0x6a
	opI32Sub       = 0x6b
	opI32LtS       = 0x48
	opI32GeS       = 0x4e
	opI64GeS       = 0x59
	opI64LtS       = 0x53
	opI64Sub       = 0x7d
	opRefNull      = 0xd0
	opRefFunc      = 0xd2
	opPrefixMisc   = 0xfc
	opPrefixSIMD   = 0xfd
	opPrefixAtomic = 0xfe
)

// instr is one decoded instruction: its opcode, and the immediates the
// passes need. start and end delimit it in the decoded bytes (offsets
// relative to the reader's start); immAt is where its immediates begin.
type instr struct {
	op         byte
	sub        uint32 // the second opcode of a prefixed instruction
	idx        uint32 // the index immediate: a label depth, local, global, function or type
	bt         int64  // a block type: a type index, or negative for none or one value type
	start, end int
	immAt      int
	idxEnd     int // where the index immediate ends
	// targets holds a br_table's label depths, default last. It is the
	// decoder's buffer, valid until the next instruction.
	targets []uint32
}

// decoder reads the instructions of one function body.
type decoder struct {
	r       reader
	base    int // offset of the body's first byte, so that instr offsets are body-relative
	targets []uint32
}

func newDecoder(body []byte) decoder { return decoder{r: reader{b: body}} }

func (d *decoder) pos() int { return d.r.off - d.base }

// next decodes the next instruction into in.
func (d *decoder) next(in *instr) error {
	r := &d.r
	in.start = d.pos()
	in.targets = nil
	in.sub = 0
	in.idx = 0
	in.bt = -64
	op, err := r.byte()
	if err != nil {
		return err
	}
	in.op = op
	in.immAt = d.pos()
	err = d.immediates(in)
	in.end = d.pos()
	return err
}

func (d *decoder) u32s(n int) error {
	for range n {
		if _, err := d.r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) immediates(in *instr) error {
	r := &d.r
	op := in.op
	var err error
	switch {
	case op == opUnreachable, op == opNop, op == opElse, op == opEnd, op == opReturn,
		op == opDrop, op == 0x1b, op == 0xd1: // select, ref.is_null
		return nil
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension included
		return nil
	case op == opBlock, op == opLoop, op == opIf:
		in.bt, err = r.s33()
		return err
	case op == opBr, op == opBrIf, op == opCall, op == opReturnCall, op == opRefFunc,
		op >= opLocalGet && op <= 0x26: // locals, globals, table.get, table.set
		in.idx, err = r.u32()
		return err
	case op == opCallIndirect, op == opReturnCallIn:
		if in.idx, err = r.u32(); err != nil {
			return err
		}
		in.idxEnd = d.pos()
		_, err = r.u32()
		return err
	case op == opBrTable:
		n, err := r.count("a br_table", 1)
		if err != nil {
			return err
		}
		d.targets = d.targets[:0]
		for range n + 1 {
			l, err := r.u32()
			if err != nil {
				return err
			}
			d.targets = append(d.targets, l)
		}
		in.targets = d.targets
		return nil
	case op == 0x1c: // select with types
		n, err := r.count("a typed select", 1)
		if err != nil {
			return err
		}
		for range n {
			if err := skipValueType(r); err != nil {
				return err
			}
		}
		return nil
	case op >= 0x28 && op <= 0x3e: // loads and stores
		return skipMemarg(r)
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		_, err = r.u32()
		return err
	case op == opI32Const:
		// Skipped, not range-checked: a value out of range is wazero's to
		// refuse, with its own message, not a truncation.
		return r.skipSLEB(32)
	case op == opI64Const:
		return r.skipSLEB(64)
	case op == opF32Const:
		_, err = r.bytes(4)
		return err
	case op == opF64Const:
		_, err = r.bytes(8)
		return err
	case op == opRefNull:
		_, err = r.s33() // a heap type: one byte in 2.0
		return err
	case op == opPrefixMisc:
		if in.sub, err = r.u32(); err != nil {
			return err
		}
		return d.misc(in.sub)
	case op == opPrefixSIMD:
		if in.sub, err = d.byteOpcode(); err != nil {
			return err
		}
		return d.simd(in.sub)
	case op == opPrefixAtomic:
		if in.sub, err = d.byteOpcode(); err != nil {
			return err
		}
		if in.sub == 0x03 { // atomic.fence
			_, err = r.byte()
			return err
		}
		if in.sub <= 0x4e {
			return skipMemarg(r)
		}
	}
	return errUnknownOpcode
}

// byteOpcode reads the opcode after the SIMD or the atomic prefix as wazero
// does: as one byte, where the spec has a LEB128 number (wazero reads the
// misc prefix's as one). The two agree on an opcode under 0x80, and on the
// canonical encoding of a larger one, the opcode's byte then 0x01, which
// wazero reads as a nop. On anything else they part: 0xfd 0x8c 0x00 is
// v128.const and its sixteen bytes to the spec, i16x8.shr_s and unreachable
// to wazero, which then runs the bytes a spec decoder skips. So that is an
// instruction the decoder does not know.
func (d *decoder) byteOpcode() (uint32, error) {
	r := &d.r
	b, err := r.byte()
	if err != nil || b < 0x80 {
		return uint32(b), err
	}
	next, err := r.byte()
	if err != nil {
		return 0, err
	}
	if next != 0x01 {
		return 0, errUnknownOpcode
	}
	return uint32(b), nil
}

func (d *decoder) misc(sub uint32) error {
	switch {
	case sub <= 7: // saturating conversions
		return nil
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		return d.u32s(2)
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		return d.u32s(1)
	}
	return errUnknownOpcode
}

func (d *decoder) simd(sub uint32) error {
	r := &d.r
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		return skipMemarg(r)
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract and replace lane
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // load and store lane
		if err := skipMemarg(r); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub <= 0xff: // the rest take no immediates (wazero validates the number)
		return nil
	}
	return errUnknownOpcode
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

// skipValueType skips a value type: one byte, or a reference-type prefix and
// its heap type.
func skipValueType(r *reader) error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b == 0x63 || b == 0x64 {
		return r.skipSLEB(33)
	}
	return nil
}

// valueTypeName is for messages.
func valueTypeName(t byte) string {
	switch t {
	case 0x7f:
		return "i32"
	case 0x7e:
		return "i64"
	case 0x7d:
		return "f32"
	case 0x7c:
		return "f64"
	case 0x7b:
		return "v128"
	case 0x70:
		return "funcref"
	case 0x6f:
		return "externref"
	}
	return fmt.Sprintf("type 0x%x", t)
}
