package wasmbin

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
	// maximum lowered by Rewrite, so that table.grow past it fails with -1
	// as the spec allows, instead of a guest growing a table by four
	// billion elements and crashing the host.
	maxTableElements = 10_000_000
)

// LimitError is a module over one of the limits above, as opposed to one
// that is malformed: wazero would accept it, the host does not.
type LimitError struct {
	// Memory: the limit is on host memory (the tables' size), which the
	// engine reports like a memory minimum over its memory limit.
	Memory bool
	msg    string
}

func (e *LimitError) Error() string { return e.msg }

// Import names an import.
type Import struct {
	Kind         string // "func", "table", "memory", "global" or "tag"
	Module, Name string
}

// Facts is what Check learns about a module: what the engine decides on,
// and what Rewrite needs to rewrite the same bytes without reading them
// again.
type Facts struct {
	// MemoryMinPages is the largest minimum a memory declares, defined or
	// imported, in 64 KiB pages.
	MemoryMinPages uint64
	// Unsatisfiable is the first import no host can provide (a table or a
	// global: host modules export only functions), or nil.
	Unsatisfiable *Import
	// TablesNeedCap: a table has no maximum, or a larger one than the
	// tables may have together; Rewrite lowers it.
	TablesNeedCap bool

	size    int
	secs    []section
	secAt   [secTag + 1]int // index in secs of each known section, -1 if absent
	tables  []tableLimits   // the defined tables
	tableMn uint64          // the minima of all tables, imported ones included

	// untidy has bit id set for a section with bytes past its last entry
	// (which wazero refuses): the rewrites leave what they do not fully
	// understand alone.
	untidy uint32

	importedGlobals uint32
	definedGlobals  uint32
	mutableGlobals  []uint32 // indices of the defined mutable globals

	exportCount       uint32
	exportsInitialize bool // a function export named _initialize
	exportsStart      bool // a function export named _start

	hasMemorySection bool
	definedMemMin    uint64 // the largest minimum of a defined memory, in pages

	// segs are the data segments while every one is active, for memory 0,
	// at a plain i32.const offset (dataExact); nil otherwise.
	segs      []activeSegment
	dataExact bool
}

func (f *Facts) tidy(id byte) bool { return f.untidy&(1<<id) == 0 }

// section returns the module's section of the given (non-custom) id.
func (f *Facts) section(id byte) (section, bool) {
	if int(id) >= len(f.secAt) || f.secAt[id] < 0 {
		return section{}, false
	}
	return f.secs[f.secAt[id]], true
}

// Check reads the module's sections the way wazero will and applies the
// limits. An error is a *LimitError, a *ShortError (the bytes end before
// what they declare), or says why the bytes are not a module wazero could
// accept.
func Check(wasm []byte) (*Facts, error) {
	// The sections are checked in order, up to one that cannot be read:
	// as wazero decodes them, so that the first error is the one it would
	// meet first (a caller may give wazero bytes that failed for a reason
	// of their own, but not bytes that would make it size a buffer from an
	// unchecked count).
	secs, walkErr := sections(wasm)
	f := &Facts{size: len(wasm), secs: secs, dataExact: true}
	for i := range f.secAt {
		f.secAt[i] = -1
	}
	c := checker{facts: f}
	for i, s := range secs {
		if s.id != secCustom && int(s.id) < len(f.secAt) {
			f.secAt[s.id] = i
		}
		if err := c.section(s); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return nil, err
			}
			return nil, fmt.Errorf("%s section: %w", sectionName(s.id), err)
		}
	}
	if walkErr != nil {
		return nil, walkErr
	}
	if f.tableMn > maxTableElements {
		return nil, &LimitError{Memory: true, msg: fmt.Sprintf(
			"the module declares tables of %d elements, over the limit of %d", f.tableMn, maxTableElements)}
	}
	return f, nil
}

type checker struct {
	facts   *Facts
	sawName bool
}

func (c *checker) section(s section) error {
	r := s.body
	var err error
	switch s.id {
	case secCustom:
		err = c.custom(r)
	case secType:
		err = each(&r, "the type section", 2, typeEntry)
	case secImport:
		err = each(&r, "the import section", 4, c.importEntry)
	case secFunction:
		err = each(&r, "the function section", 1, func(r *reader) error { _, err := r.u32(); return err })
	case secTable:
		err = each(&r, "the table section", 3, c.table)
	case secMemory:
		c.facts.hasMemorySection = true
		err = each(&r, "the memory section", 2, c.memory)
	case secGlobal:
		err = each(&r, "the global section", 3, c.global)
	case secExport:
		err = each(&r, "the export section", 3, c.export)
	case secElement:
		err = each(&r, "the element section", 3, elementSegment)
	case secCode:
		err = each(&r, "the code section", 3, code)
	case secData:
		// A reader of its own, which stays on the stack (r escapes to
		// each's callbacks): a Go guest's 30,000 segments are the bulk of
		// what Check reads, and every advance of a reader on the heap is
		// a write barrier while the collector runs.
		d := s.body
		err = c.data(&d)
		r = d
	case secTag:
		err = each(&r, "the tag section", 2, func(r *reader) error {
			if _, err := r.byte(); err != nil {
				return err
			}
			_, err := r.u32()
			return err
		})
	}
	// Start, data count and unknown sections hold no counts that wazero
	// sizes anything from.
	if err == nil && !r.done() && s.id != secCustom && s.id < 32 {
		c.facts.untidy |= 1 << s.id
	}
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

func typeEntry(r *reader) error {
	if len(r.b) > 0 && r.b[0] == 0x4e { // a recursive group (GC proposal)
		r.advance(1)
		return each(r, "a type group", 3, checkFuncType)
	}
	return checkFuncType(r)
}

func checkFuncType(r *reader) error {
	form, err := r.byte()
	if err != nil {
		return err
	}
	if form != 0x60 {
		return fmt.Errorf("invalid type form 0x%x at offset %d", form, r.off-1)
	}
	for range 2 { // parameters, results
		if err := each(r, "a function type", 1, skipValueType); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) importEntry(r *reader) error {
	imp, err := readImport(r)
	if err != nil {
		return err
	}
	f := c.facts
	switch imp.kind {
	case importKindTable:
		f.tableMn += imp.limits.min
		if f.Unsatisfiable == nil {
			f.Unsatisfiable = &Import{Kind: "table", Module: imp.module, Name: imp.name}
		}
	case importKindMemory:
		f.MemoryMinPages = max(f.MemoryMinPages, imp.limits.min)
	case importKindGlobal:
		f.importedGlobals++
		if f.Unsatisfiable == nil {
			f.Unsatisfiable = &Import{Kind: "global", Module: imp.module, Name: imp.name}
		}
	}
	return nil
}

func (c *checker) memory(r *reader) error {
	_, min, _, _, err := limits(r)
	c.facts.MemoryMinPages = max(c.facts.MemoryMinPages, min)
	c.facts.definedMemMin = max(c.facts.definedMemMin, min)
	return err
}

// table reads a defined table, noting it for capping.
func (c *checker) table(r *reader) error {
	t, err := readTableType(r)
	if err != nil {
		return err
	}
	f := c.facts
	f.tableMn += t.min
	f.tables = append(f.tables, t)
	if !t.hasMax || t.max > maxTableElements {
		f.TablesNeedCap = true
	}
	return nil
}

func (c *checker) global(r *reader) error {
	if err := skipValueType(r); err != nil {
		return err
	}
	mut, err := r.byte()
	if err != nil {
		return err
	}
	f := c.facts
	if mut == globalMutable {
		f.mutableGlobals = append(f.mutableGlobals, f.importedGlobals+f.definedGlobals)
	}
	f.definedGlobals++
	return skipConstExpr(r)
}

func (c *checker) export(r *reader) error {
	name, err := r.name("an export name")
	if err != nil {
		return err
	}
	kind, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	f := c.facts
	f.exportCount++
	if kind == exportKindFunc {
		switch name {
		case "_initialize":
			f.exportsInitialize = true
		case "_start":
			f.exportsStart = true
		}
	}
	return nil
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
		if err := skipConstExpr(r); err != nil {
			return err
		}
	}
	if prefix != 0 && prefix != 4 { // element kind or reference type
		if prefix < 4 {
			_, err = r.byte()
		} else {
			err = skipValueType(r)
		}
		if err != nil {
			return err
		}
	}
	if prefix < 4 { // function indices
		return each(r, "an element segment", 1, func(r *reader) error { _, err := r.u32(); return err })
	}
	return each(r, "an element segment", 1, skipConstExpr)
}

func (c *checker) data(r *reader) error {
	n, err := r.count("the data section", 2)
	if err != nil {
		return err
	}
	// Room for every segment, as a Go guest's all are exact: n is checked
	// against the bytes that hold the segments, so this is bounded by the
	// module's size.
	c.facts.segs = make([]activeSegment, 0, n)
	for range n {
		if err := c.dataSegment(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) dataSegment(r *reader) error {
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
	f := c.facts
	var offset uint64
	exact := false
	if prefix == 0 && f.dataExact {
		var n int
		if offset, n, exact = plainOffset(*r); exact {
			r.advance(n) // what skipConstExpr would skip
		}
	}
	if prefix != 1 && !exact {
		if err := skipConstExpr(r); err != nil {
			return err
		}
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	data, err := r.bytes(uint64(n))
	if err != nil {
		return err
	}
	if exact {
		f.segs = append(f.segs, activeSegment{offset: offset, data: data})
	} else {
		f.segs, f.dataExact = nil, false
	}
	return nil
}

// plainOffset reads an offset expression that is one i32.const, and
// returns its value and length.
func plainOffset(r reader) (offset uint64, n int, ok bool) {
	at := r.off
	if op, err := r.byte(); err != nil || op != opI32Const {
		return 0, 0, false
	}
	off, err := r.s32()
	if err != nil {
		return 0, 0, false
	}
	if end, err := r.byte(); err != nil || end != opEnd {
		return 0, 0, false
	}
	return uint64(uint32(off)), r.off - at, true
}

// code reads one function body's header: its size and its locals.
func code(r *reader) error {
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
		if err := skipValueType(&body); err != nil {
			return err
		}
		locals += uint64(n)
		if locals > maxFunctionLocals {
			return &LimitError{msg: fmt.Sprintf(
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
