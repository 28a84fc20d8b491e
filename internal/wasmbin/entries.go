package wasmbin

import (
	"errors"
	"fmt"
)

// The readers of entries that more than one section (or more than one
// pass) holds: imports, table types and constant expressions.

// Import kinds.
const (
	importKindFunc   = 0
	importKindTable  = 1
	importKindMemory = 2
	importKindGlobal = 3
	importKindTag    = 4
)

// importEntry is one import.
type importEntry struct {
	module, name string
	kind         byte
	typeIdx      uint32      // a function's type
	limits       tableLimits // a table's or a memory's limits
}

// readImport reads one entry of the import section.
func readImport(r *reader) (imp importEntry, err error) {
	if imp.module, err = r.name("an import's module name"); err != nil {
		return imp, err
	}
	if imp.name, err = r.name("an import name"); err != nil {
		return imp, err
	}
	if imp.kind, err = r.byte(); err != nil {
		return imp, err
	}
	switch imp.kind {
	case importKindFunc:
		imp.typeIdx, err = r.u32()
	case importKindTable:
		imp.limits, err = readTableType(r)
	case importKindMemory:
		imp.limits.flag, imp.limits.min, imp.limits.max, imp.limits.hasMax, err = limits(r)
	case importKindGlobal: // a value type and a mutability
		if err = skipValueType(r); err == nil {
			_, err = r.byte()
		}
	case importKindTag: // an attribute and a type index
		if _, err = r.byte(); err == nil {
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("invalid import kind 0x%x", imp.kind)
	}
	return imp, err
}

// tableLimits is a table's limits, and where they are in the binary (for
// the table cap to replace them).
type tableLimits struct {
	limitsAt, limitsEnd int
	flag                byte
	min, max            uint64
	hasMax              bool
}

// readTableType reads a table type, and the initialiser of a table declared
// with one.
func readTableType(r *reader) (t tableLimits, err error) {
	b, err := r.byte()
	if err != nil {
		return t, err
	}
	initExpr := false
	if b == 0x40 { // a table with an initialiser (function references)
		if _, err := r.byte(); err != nil {
			return t, err
		}
		if b, err = r.byte(); err != nil {
			return t, err
		}
		initExpr = true
	}
	if b == 0x63 || b == 0x64 {
		if err := r.skipSLEB(33); err != nil {
			return t, err
		}
	}
	t.limitsAt = r.off
	if t.flag, t.min, t.max, t.hasMax, err = limits(r); err != nil {
		return t, err
	}
	t.limitsEnd = r.off
	if t.flag&2 != 0 {
		return t, errors.New("a table cannot be shared")
	}
	if t.hasMax && t.max < t.min {
		return t, errors.New("a table's minimum is over its maximum")
	}
	if initExpr {
		return t, skipConstExpr(r)
	}
	return t, nil
}

// skipConstExpr skips a constant expression, accepting what wazero's
// decoder accepts. Each instruction is checked to be a constant one before
// the decoder reads its immediates, so that an instruction out of place is
// named as such rather than as what its bytes might be cut short of.
func skipConstExpr(r *reader) error {
	d := decoder{r: *r, base: r.off}
	var in instr
	for {
		if err := constantOp(d.r); err != nil {
			return err
		}
		if err := d.next(&in); err != nil {
			return err
		}
		if in.op == opEnd {
			r.advance(in.end)
			return nil
		}
	}
}

// constantOp checks that the instruction r starts with may be in a constant
// expression.
func constantOp(r reader) error {
	if len(r.b) == 0 {
		return errTruncated
	}
	switch op := r.b[0]; op {
	case opEnd, opI32Const, opI64Const, opF32Const, opF64Const, opGlobalGet, opRefNull, opRefFunc,
		0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		return nil
	case opPrefixSIMD:
		if len(r.b) < 2 {
			return errTruncated
		}
		if r.b[1] != 0x0c { // v128.const
			return fmt.Errorf("invalid vector opcode 0x%x in a constant expression", r.b[1])
		}
		return nil
	default:
		return fmt.Errorf("invalid opcode 0x%x in a constant expression at offset %d", op, r.off)
	}
}
