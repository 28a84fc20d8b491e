package engine

import (
	"errors"
	"fmt"
)

// Limits on what a module may declare, on top of wazero's own checks. They
// run on the raw bytes before wazero sees them, because wazero sizes its
// decoding buffers from the counts a module declares before it reads the
// entries: a 20-byte module claiming four billion imports made the host
// allocate hundreds of gigabytes and die of a fatal out-of-memory error,
// which no recover catches. Every such count is checked here against the
// bytes that would have to hold it.
const (
	// maxFunctionLocals is the most locals one function may declare: the
	// limit browsers enforce (the JS API's), so every module that runs on
	// the web fits. Without it a 30-byte function declaring a hundred
	// million locals cost seconds and gigabytes to compile.
	maxFunctionLocals = 50_000
	// maxTableElements caps a module's tables, all together: each element
	// is 8 bytes of host memory that the memory limit does not see. Tables
	// declared without a maximum (Go's are) or with a larger one get their
	// maximum lowered, so that table.grow past it fails with -1 as the spec
	// allows, instead of a guest growing a table by four billion elements
	// and crashing the host.
	maxTableElements = 10_000_000
)

// moduleFacts is what the checks learn about a module.
type moduleFacts struct {
	memMinPages uint64 // the largest declared memory minimum, in pages
	// tableCap, when set, is the edit that lowers the table maxima to fit
	// maxTableElements: the binary to compile is the input spliced with it.
	tableCap *sectionEdit
	// unsatisfiable names an import no host can provide (a table or a
	// global: host modules export only functions), for a clear error.
	unsatisfiable string
}

// limitErr is a module over one of the limits above (or the memory limit),
// as opposed to one that is malformed.
type limitErr struct {
	memory bool // over a memory figure: reported as ErrMemoryLimit
	msg    string
}

func (e *limitErr) Error() string { return e.msg }

// checkModule reads the module's sections the way wazero will and applies
// the limits. An error is either a *limitErr or says why the bytes are not
// a module wazero could accept.
func checkModule(wasm []byte) (moduleFacts, error) {
	var facts moduleFacts
	if len(wasm) < 4 || string(wasm[:4]) != "\x00asm" {
		return facts, errors.New("not a WebAssembly binary (bad magic number)")
	}
	if len(wasm) < 8 || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return facts, errors.New("unsupported WebAssembly version (want 1)")
	}
	c := checker{facts: &facts}
	r := reader{b: wasm[8:], off: 8}
	var last byte
	for !r.done() {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return facts, err
		}
		size, err := r.u32()
		if err != nil {
			return facts, err
		}
		var ok bool
		if last, ok = sectionOrder(id, last); !ok {
			return facts, fmt.Errorf("the %s section at offset %d is out of order", sectionName(id), start)
		}
		body, err := r.sub(uint64(size))
		if err != nil {
			return facts, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
		if err := c.section(id, body); err != nil {
			var le *limitErr
			if errors.As(err, &le) {
				return facts, err
			}
			return facts, fmt.Errorf("%s section: %w", sectionName(id), err)
		}
		if id == 4 {
			c.tableSection = span{start: start, end: r.off}
		}
	}
	if c.tableMin > maxTableElements {
		return facts, &limitErr{memory: true, msg: fmt.Sprintf(
			"the module declares tables of %d elements, over the limit of %d", c.tableMin, maxTableElements)}
	}
	if c.needCap {
		edit := c.capTables(wasm)
		facts.tableCap = &edit
	}
	return facts, nil
}

// sectionOrder is wazero's rule for the order of sections (so each appears
// at most once): custom sections anywhere, the tag section between memory
// and global, data count between element and code, the rest increasing.
func sectionOrder(current, previous byte) (byte, bool) {
	switch {
	case current == 0:
		return previous, true
	case current == 13:
		return current, previous <= 5
	case previous == 13:
		return current, current >= 6
	case current > 12:
		return current, false
	case current == 12:
		return current, previous <= 9
	case previous == 12:
		return current, current >= 10
	}
	return current, current > previous
}

func sectionName(id byte) string {
	names := [...]string{"custom", "type", "import", "function", "table", "memory", "global",
		"export", "start", "element", "code", "data", "data count", "tag"}
	if int(id) < len(names) {
		return names[id]
	}
	return fmt.Sprintf("unknown (id %d)", id)
}

type checker struct {
	facts        *moduleFacts
	tables       []tableLimits
	tableMin     uint64
	tableSection span
	needCap      bool
	sawName      bool
}

func (c *checker) section(id byte, s reader) error {
	var err error
	switch id {
	case 0:
		err = c.custom(s)
	case 1:
		err = each(&s, "the type section", 2, c.typeEntry)
	case 2:
		err = each(&s, "the import section", 4, c.importEntry)
	case 3:
		err = each(&s, "the function section", 1, func(r *reader) error { _, err := r.u32(); return err })
	case 4:
		err = each(&s, "the table section", 3, func(r *reader) error { return c.table(r, true) })
	case 5:
		err = each(&s, "the memory section", 2, c.memory)
	case 6:
		err = each(&s, "the global section", 3, func(r *reader) error {
			if err := valueType(r); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil {
				return err
			}
			return constExpr(r)
		})
	case 7:
		err = each(&s, "the export section", 3, func(r *reader) error {
			if _, err := r.name("an export name"); err != nil {
				return err
			}
			if _, err := r.byte(); err != nil {
				return err
			}
			_, err := r.u32()
			return err
		})
	case 9:
		err = each(&s, "the element section", 3, elementSegment)
	case 10:
		err = each(&s, "the code section", 3, c.code)
	case 11:
		err = each(&s, "the data section", 2, dataSegment)
	case 13:
		err = each(&s, "the tag section", 2, func(r *reader) error {
			if _, err := r.byte(); err != nil {
				return err
			}
			_, err := r.u32()
			return err
		})
	}
	// Start (8), data count (12) and unknown sections hold no counts that
	// wazero sizes anything from.
	return err
}

// each reads a vector whose entries take at least minSize bytes.
func each(r *reader, what string, minSize int, entry func(*reader) error) error {
	n, err := r.count(what, minSize)
	if err != nil {
		return err
	}
	for range n {
		if err := entry(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) typeEntry(r *reader) error {
	if len(r.b) > 0 && r.b[0] == 0x4e { // a recursive group (GC proposal)
		r.advance(1)
		return each(r, "a type group", 3, funcType)
	}
	return funcType(r)
}

func funcType(r *reader) error {
	form, err := r.byte()
	if err != nil {
		return err
	}
	if form != 0x60 {
		return fmt.Errorf("invalid type form 0x%x at offset %d", form, r.off-1)
	}
	for range 2 { // parameters, results
		if err := each(r, "a function type", 1, valueType); err != nil {
			return err
		}
	}
	return nil
}

// valueType skips a value type: one byte, or a reference-type prefix and its
// heap type.
func valueType(r *reader) error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b == 0x63 || b == 0x64 {
		return r.skipSLEB(33)
	}
	return nil
}

func (c *checker) importEntry(r *reader) error {
	mod, err := r.name("an import's module name")
	if err != nil {
		return err
	}
	name, err := r.name("an import name")
	if err != nil {
		return err
	}
	kind, err := r.byte()
	if err != nil {
		return err
	}
	switch kind {
	case 0: // function: type index
		_, err = r.u32()
	case 1:
		if c.facts.unsatisfiable == "" {
			c.facts.unsatisfiable = "table " + importName(mod, name)
		}
		err = c.table(r, false)
	case 2:
		err = c.memory(r)
	case 3:
		if c.facts.unsatisfiable == "" {
			c.facts.unsatisfiable = "global " + importName(mod, name)
		}
		if err = valueType(r); err == nil {
			_, err = r.byte()
		}
	case 4: // tag: attribute, type index
		if _, err = r.byte(); err == nil {
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("invalid import kind 0x%x", kind)
	}
	return err
}

// limits reads a limits structure as wazero does (flags 0 to 3).
func limits(r *reader) (flag byte, min, max uint64, hasMax bool, err error) {
	if flag, err = r.byte(); err != nil {
		return
	}
	if flag > 3 {
		err = fmt.Errorf("invalid limits flag 0x%x", flag)
		return
	}
	if min, err = r.uleb(32); err != nil {
		return
	}
	if hasMax = flag&1 != 0; hasMax {
		max, err = r.uleb(32)
	}
	return
}

func (c *checker) memory(r *reader) error {
	_, min, _, _, err := limits(r)
	c.facts.memMinPages = max(c.facts.memMinPages, min)
	return err
}

// table reads a table type; defined tables are noted for capping.
func (c *checker) table(r *reader, defined bool) error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	initExpr := false
	if b == 0x40 { // a table with an initialiser (function references)
		if _, err := r.byte(); err != nil {
			return err
		}
		if b, err = r.byte(); err != nil {
			return err
		}
		initExpr = true
	}
	if b == 0x63 || b == 0x64 {
		if err := r.skipSLEB(33); err != nil {
			return err
		}
	}
	at := r.off
	flag, min, max, hasMax, err := limits(r)
	if err != nil {
		return err
	}
	if flag&2 != 0 {
		return errors.New("a table cannot be shared")
	}
	if hasMax && max < min {
		return errors.New("a table's minimum is over its maximum")
	}
	c.tableMin += min
	if defined {
		c.tables = append(c.tables, tableLimits{limitsAt: at, limitsEnd: r.off, flag: flag, min: min, max: max, hasMax: hasMax})
		if !hasMax || max > maxTableElements {
			c.needCap = true
		}
	}
	if initExpr {
		return constExpr(r)
	}
	return nil
}

// constExpr skips a constant expression, accepting what wazero's decoder
// accepts.
func constExpr(r *reader) error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41: // i32.const
			err = r.skipSLEB(32)
		case 0x42: // i64.const
			err = r.skipSLEB(64)
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = r.u32()
		case 0xd0: // ref.null: a reference type, or a type index
			if len(r.b) > 0 && (r.b[0] == 0x70 || r.b[0] == 0x6f || r.b[0] == 0x69) {
				r.advance(1)
			} else {
				_, err = r.u32()
			}
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		case 0xfd: // v128.const
			var sub byte
			if sub, err = r.byte(); err == nil {
				if sub != 0x0c {
					return fmt.Errorf("invalid vector opcode 0x%x in a constant expression", sub)
				}
				_, err = r.bytes(16)
			}
		default:
			return fmt.Errorf("invalid opcode 0x%x in a constant expression at offset %d", op, r.off-1)
		}
		if err != nil {
			return err
		}
	}
}

func elementSegment(r *reader) error {
	prefix, err := r.u32()
	if err != nil {
		return err
	}
	if prefix > 7 {
		return fmt.Errorf("invalid element segment prefix %d", prefix)
	}
	if prefix == 2 || prefix == 6 { // table index
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if prefix&1 == 0 { // active: an offset
		if err := constExpr(r); err != nil {
			return err
		}
	}
	if prefix != 0 && prefix != 4 { // element kind or reference type
		if prefix < 4 {
			_, err = r.byte()
		} else {
			err = valueType(r)
		}
		if err != nil {
			return err
		}
	}
	if prefix < 4 { // function indices
		return each(r, "an element segment", 1, func(r *reader) error { _, err := r.u32(); return err })
	}
	return each(r, "an element segment", 1, constExpr)
}

func dataSegment(r *reader) error {
	prefix, err := r.u32()
	if err != nil {
		return err
	}
	switch prefix {
	case 0:
	case 1:
	case 2: // memory index
		if _, err := r.u32(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("invalid data segment prefix %d", prefix)
	}
	if prefix != 1 {
		if err := constExpr(r); err != nil {
			return err
		}
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	_, err = r.bytes(uint64(n))
	return err
}

// code reads one function body's header: its size and its locals.
func (c *checker) code(r *reader) error {
	at := r.off
	size, err := r.u32()
	if err != nil {
		return err
	}
	body, err := r.sub(uint64(size))
	if err != nil {
		return err
	}
	groups, err := body.count("a function's locals", 2)
	if err != nil {
		return err
	}
	var locals uint64
	for range groups {
		n, err := body.u32()
		if err != nil {
			return err
		}
		if err := valueType(&body); err != nil {
			return err
		}
		locals += uint64(n)
		if locals > maxFunctionLocals {
			return &limitErr{msg: fmt.Sprintf(
				"the function whose body is at offset %d declares more than %d locals, the most a function may (as in browsers)", at, maxFunctionLocals)}
		}
	}
	return nil
}

// custom checks the name section, whose counts wazero also sizes from.
func (c *checker) custom(s reader) error {
	name, err := s.name("a custom section's name")
	if err != nil {
		return err
	}
	if name != "name" {
		return nil
	}
	if c.sawName {
		return errors.New("a second name section")
	}
	c.sawName = true
	names := func(r *reader) error {
		return each(r, "a name map", 2, func(r *reader) error {
			if _, err := r.u32(); err != nil {
				return err
			}
			_, err := r.name("a name")
			return err
		})
	}
	for !s.done() {
		id, err := s.byte()
		if err != nil {
			return err
		}
		size, err := s.u32()
		if err != nil {
			return err
		}
		// wazero reads the module, function and local names from the
		// section as a whole, and counts its way through the section with
		// the declared sizes: where the two disagree it reads on past the
		// section's end, sizing buffers from whatever bytes it finds there.
		// So the declared size must be the true one.
		at := s.off
		switch id {
		case 0:
			_, err = s.name("the module name")
		case 1:
			err = names(&s)
		case 2:
			err = each(&s, "the local names", 2, func(r *reader) error {
				if _, err := r.u32(); err != nil {
					return err
				}
				return names(r)
			})
		default:
			_, err = s.bytes(uint64(size))
		}
		if err != nil {
			return fmt.Errorf("name section: %w", err)
		}
		if s.off-at != int(size) {
			return fmt.Errorf("name section: subsection %d declares %d bytes but holds %d", id, size, s.off-at)
		}
	}
	return nil
}
