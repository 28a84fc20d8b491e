package wasmbin

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Instrumentation: the checks that let the host stop a guest and meter it,
// compiled into the guest's own code.
//
// Why in the code and not in the runtime: wazero can stop compiled code only
// with close-on-context-done, which leaves native code for Go at every loop
// back-edge (tens of nanoseconds each: several times slower on real loops)
// and checks nothing at function entries, so a loop-free recursion is never
// stopped. And Go cannot preempt native code: a guest that never leaves it
// holds its P, so no timer fires on that P, and no garbage collection can
// stop the world, until the guest returns.
//
// What is inserted:
//
//   - A tick counter, charged at function entries and loop headers with the
//     number of instructions the code may run until the next such point, so
//     that it counts work rather than checks. It is threaded through every
//     call as an extra parameter and result, so that it lives in a register
//     (a counter in a global costs a load and a store at every check; one
//     kept in a local and written back around calls costs those at every
//     call instead). When it runs out, the guest calls the host's yield
//     import, which stops the task if it must (its deadline passed, it was
//     cancelled or interrupted) by panicking, and otherwise lets the Go
//     scheduler run (timers, a stop-the-world, the goroutine that would
//     cancel the task) and returns the next tick.
//   - With fuel, a second counter threaded the same way, charged at the start
//     of every basic block with the cost of its instructions. A block that
//     would take it below zero calls the host's out_of_fuel import instead of
//     running. The count is exact: the same module, state and input use the
//     same fuel on every run, and a task that used F succeeds with a budget
//     of F and fails with F-1.
//
// How the checks stay cheap, in wazero's compiler:
//
//   - A check is a subtraction, a comparison and a branch on a register.
//   - No call is inside the loop a check guards: wazero's register allocator
//     keeps a loop's values on the stack, and loads and stores them on every
//     iteration, when a call is anywhere in the loop, even on a path never
//     taken (C's SHA-256 rounds ran 20% slower for it). So a checked loop is
//     written inside three frames of its own:
//
//     block $done (the loop's type)
//     loop $outer (the loop's type)
//     block $yield
//     loop (the original, with its check first: br_if $yield when the tick
//     ran out) ... end
//     br $done
//     end
//     (the yield) br $outer
//     end
//     end
//
//     and a branch from inside it to a label outside adds 3 to its depth.
//     The yield's branch back re-enters the loop at its header. A loop with
//     parameters, whose values are not at hand outside it, and the entry
//     check, whose loop wraps the function body, yield in the else arm of an
//     if with an empty then arm instead.
//   - Around the yield, the loop's live locals are stored in globals and
//     loaded back: nothing is live across the call, so nothing of the
//     function must be kept on the stack for it.
//   - Leaf functions (no loop, no call) run a bounded number of instructions:
//     they get no tick check, and a direct call to one is charged its size.
//     A function whose body reaches a loop in straight-line code gets no entry
//     check either: the loop's check comes first (every Go function starts
//     with the loop its resumption points branch to); nor does one whose
//     every call is inside a checked loop (see analyse).
//
// The host sees the original signatures: each exported function (and a
// start function) is called through a wrapper that takes the counters from
// globals and puts them back, and an imported function that ends up in a
// table (or a funcref) is wrapped the other way round.

// The names of the host module and functions instrumented code imports, and
// of the globals that hold the counters between calls. An export name is any
// UTF-8 string; none a toolchain writes starts with a NUL, so these never
// clash with a module's own.
const (
	InterruptModule  = "wasmpool:interrupt"
	YieldFunc        = "yield"       // () -> i32: the next tick; panics to stop the guest
	OutOfFuelFunc    = "out_of_fuel" // () -> (): never returns
	FuelGlobalExport = "\x00wasmpool:fuel"
	TickGlobalExport = "\x00wasmpool:tick"
	// InitialTick is what the tick starts at in a new instance.
	InitialTick = 1 << 20
	// maxLeafWeight caps the size of a function treated as a leaf, so
	// that what a call to one is charged stays bounded.
	maxLeafWeight = 1 << 16
	maxFuel       = math.MaxInt64
)

// Value types, and other binary constants the rewrites write.
const (
	valueI32         = 0x7f
	valueI64         = 0x7e
	valueF32         = 0x7d
	valueF64         = 0x7c
	valueV128        = 0x7b
	valueFuncRef     = 0x70
	valueExternRef   = 0x6f
	blockTypeEmpty   = 0x40
	exportKindFunc   = 0
	exportKindGlobal = 3
	globalMutable    = 1
)

// InstrumentOptions chooses what instrumented code counts.
type InstrumentOptions struct {
	// Fuel adds the fuel counter; the global exported as FuelGlobalExport
	// holds what is left between calls.
	Fuel bool
}

// ErrNotInstrumentable is a module whose code the instrumentation cannot
// rewrite: it uses an instruction the decoder does not know, or a feature
// the pass does not handle (typed function references, exceptions, tail
// calls). wazero, as the engine configures it, refuses such modules too.
var ErrNotInstrumentable = errors.New("the module cannot be instrumented")

// funcType is a function type: its parameter and result value types.
type funcType struct{ params, results []byte }

// moduleInfo is what the instrumentation needs to know of the whole module.
type moduleInfo struct {
	secs          []section
	types         []funcType
	importTypes   []uint32 // type index of each imported function
	globalImports uint32
	definedFuncs  []uint32 // type index of each defined function
	definedGlobal uint32
	code          reader
	hasCode       bool
}

// wrapper is a function the instrumentation adds: the original-signature
// entry to a defined function (for the host), or the threaded-signature
// entry to an imported one (for tables).
type wrapper struct {
	target   uint32 // the wrapped function's index in the input
	ofImport bool
}

type instrumenter struct {
	m    *moduleInfo
	opts InstrumentOptions

	added    uint32 // imported functions added: defined ones shift by this
	yield    uint32
	outFuel  uint32
	wrapBase uint32 // the first wrapper's function index
	wrappers []wrapper
	wrapOf   map[wrapper]uint32

	newTypes  []funcType
	typeIndex map[string]uint32 // a new type's encoding → its index
	threaded  map[uint32]uint32 // input type → its threaded type

	tickG, fuelG uint32
	scratch      map[scratchKey]uint32
	scratchOrder []scratchKey
	nextGlobal   uint32

	leafWeight []uint32 // per defined function: its size if a leaf, else 0
	// refs are the functions instrumented code takes a reference to: a
	// declarative element segment declares them, as ref.func requires.
	refs map[uint32]bool

	// Buffers reused across functions.
	instrs  []fnInstr
	stack   []frame
	weights []uint32
	costs   []uint32
	locals  []byte
	// indirect: the function being instrumented makes indirect calls.
	indirect     bool
	tableTargets map[int][]uint32 // its br_tables' targets, by instruction
	wrapped      []int32          // its frames while it is written (see function)
	below        []int32

	// srcMap, when wanted, records where each instruction goes (see
	// sourcemap.go); dwarf: the input has DWARF, replaced by a synthetic one.
	srcMap *SourceMap
	dwarf  bool
}

type scratchKey struct {
	t byte
	n int
}

// Instrument returns wasm with the checks above compiled into its code. A
// module without code is returned as it is.
func Instrument(wasm []byte, opts InstrumentOptions) ([]byte, error) {
	m, err := readModuleInfo(wasm)
	if err != nil {
		return nil, err
	}
	if !m.hasCode || len(m.definedFuncs) == 0 {
		return wasm, nil
	}
	return newInstrumenter(m, opts).rewrite(wasm)
}

func newInstrumenter(m *moduleInfo, opts InstrumentOptions) *instrumenter {
	return &instrumenter{
		m: m, opts: opts,
		wrapOf: map[wrapper]uint32{}, typeIndex: map[string]uint32{}, threaded: map[uint32]uint32{},
		scratch: map[scratchKey]uint32{}, refs: map[uint32]bool{}, tableTargets: map[int][]uint32{},
	}
}

func notInstrumentable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotInstrumentable, fmt.Sprintf(format, args...))
}

func readModuleInfo(wasm []byte) (*moduleInfo, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	m := &moduleInfo{secs: secs}
	for _, s := range secs {
		r := s.body
		switch s.id {
		case secType:
			if m.types, err = readTypes(r); err != nil {
				return nil, err
			}
		case secImport:
			if m.importTypes, m.globalImports, err = readImports(r); err != nil {
				return nil, err
			}
		case secFunction:
			n, err := r.count("the function section", 1)
			if err != nil {
				return nil, err
			}
			m.definedFuncs = make([]uint32, n)
			for i := range m.definedFuncs {
				if m.definedFuncs[i], err = r.u32(); err != nil {
					return nil, err
				}
			}
		case secGlobal:
			if m.definedGlobal, err = r.u32(); err != nil {
				return nil, err
			}
		case secCode:
			m.code, m.hasCode = r, true
		}
	}
	for i, t := range m.definedFuncs {
		if int(t) >= len(m.types) {
			return nil, fmt.Errorf("function %d has type %d, which does not exist", i, t)
		}
	}
	for i, t := range m.importTypes {
		if int(t) >= len(m.types) {
			return nil, fmt.Errorf("imported function %d has type %d, which does not exist", i, t)
		}
	}
	return m, nil
}

func readTypes(r reader) ([]funcType, error) {
	n, err := r.count("the type section", 3)
	if err != nil {
		return nil, err
	}
	types := make([]funcType, n)
	for i := range types {
		form, err := r.byte()
		if err != nil {
			return nil, err
		}
		if form != 0x60 {
			return nil, notInstrumentable("type %d is not a plain function type (form 0x%x)", i, form)
		}
		for k := range 2 {
			c, err := r.count("a function type", 1)
			if err != nil {
				return nil, err
			}
			vt, err := r.bytes(uint64(c))
			if err != nil {
				return nil, err
			}
			for _, t := range vt {
				if !plainValueType(t) {
					return nil, notInstrumentable("type %d uses value type 0x%x", i, t)
				}
			}
			if k == 0 {
				types[i].params = vt
			} else {
				types[i].results = vt
			}
		}
	}
	return types, r.errIfLeft("the type section")
}

func plainValueType(t byte) bool {
	switch t {
	case valueI32, valueI64, valueF32, valueF64, valueV128, valueFuncRef, valueExternRef:
		return true
	}
	return false
}

func (r *reader) errIfLeft(what string) error {
	if !r.done() {
		return fmt.Errorf("%s has %d bytes past its last entry", what, len(r.b))
	}
	return nil
}

// readImports returns the type of each imported function, and counts the
// imported globals.
func readImports(r reader) (funcs []uint32, globals uint32, err error) {
	n, err := r.count("the import section", 4)
	if err != nil {
		return nil, 0, err
	}
	for range n {
		imp, err := readImport(&r)
		if err != nil {
			return nil, 0, err
		}
		switch imp.kind {
		case importKindFunc:
			funcs = append(funcs, imp.typeIdx)
		case importKindGlobal:
			globals++
		}
	}
	return funcs, globals, r.errIfLeft("the import section")
}

func (in *instrumenter) funcImports() uint32 { return uint32(len(in.m.importTypes)) }

// callee maps the index of a function that instrumented code calls (or
// takes a reference to, for a table) to the output's: a defined function
// shifts past the added imports; an import is reached through a wrapper
// with the threaded signature.
func (in *instrumenter) callee(f uint32) uint32 {
	if f < in.funcImports() {
		return in.wrap(wrapper{target: f, ofImport: true})
	}
	return f + in.added
}

// entry maps the index of a function the host calls (an export, the start
// function) to the output's: a wrapper with the original signature for a
// defined function, the import itself for an import.
func (in *instrumenter) entry(f uint32) uint32 {
	if f < in.funcImports() {
		return f
	}
	return in.wrap(wrapper{target: f})
}

func (in *instrumenter) wrap(w wrapper) uint32 {
	if idx, ok := in.wrapOf[w]; ok {
		return idx
	}
	idx := in.wrapBase + uint32(len(in.wrappers))
	in.wrappers = append(in.wrappers, w)
	in.wrapOf[w] = idx
	return idx
}

// typeOf adds (or finds) a new function type.
func (in *instrumenter) typeOf(t funcType) uint32 {
	key := string(t.params) + "\x00" + string(t.results)
	if idx, ok := in.typeIndex[key]; ok {
		return idx
	}
	idx := uint32(len(in.m.types) + len(in.newTypes))
	in.newTypes = append(in.newTypes, t)
	in.typeIndex[key] = idx
	return idx
}

// counters are the value types threaded through every call.
func (in *instrumenter) counters() []byte {
	if in.opts.Fuel {
		return []byte{valueI32, valueI64}
	}
	return []byte{valueI32}
}

// threadedType is input type t with the counters added to its parameters
// and results.
func (in *instrumenter) threadedType(t uint32) uint32 {
	if idx, ok := in.threaded[t]; ok {
		return idx
	}
	ft := in.m.types[t]
	c := in.counters()
	idx := in.typeOf(funcType{
		params:  append(append([]byte(nil), ft.params...), c...),
		results: append(append([]byte(nil), ft.results...), c...),
	})
	in.threaded[t] = idx
	return idx
}

// appendBlockType appends the block type of a block that yields results.
func (in *instrumenter) appendBlockType(out []byte, results []byte) []byte {
	switch len(results) {
	case 0:
		return append(out, blockTypeEmpty)
	case 1:
		return append(out, results[0])
	}
	return appendSLEB(out, int64(in.typeOf(funcType{results: results})))
}

func (in *instrumenter) rewrite(wasm []byte) ([]byte, error) {
	m := in.m
	in.added = 1
	if in.opts.Fuel {
		in.added = 2
	}
	in.yield = in.funcImports()
	in.outFuel = in.yield + 1
	in.wrapBase = in.funcImports() + in.added + uint32(len(m.definedFuncs))
	in.tickG = m.globalImports + m.definedGlobal
	in.fuelG = in.tickG + 1
	in.nextGlobal = in.tickG + 1
	if in.opts.Fuel {
		in.nextGlobal++
	}
	yieldType := in.typeOf(funcType{results: []byte{valueI32}})
	outFuelType := in.typeOf(funcType{})

	// Everything whose rewrite adds types, wrappers or globals comes first;
	// the sections that list those are written last.
	contents := map[byte][]byte{}
	customs := map[int][]byte{} // by section start; nil content: dropped
	var nameSec *section
	for _, s := range m.secs {
		var content []byte
		var err error
		switch s.id {
		case secExport:
			content, err = in.exports(s.body)
		case secStart:
			content, err = in.start(s.body)
		case secElement:
			content, err = in.elements(s.body)
		case secTable:
			content, err = in.tables(s.body)
		case secCode:
			content, err = in.code(s.body)
		case secCustom:
			if name, _, ok := customName(s); ok && name == "name" && nameSec == nil {
				nameSec = &s // named last: wrappers are still being added
				continue
			}
			content, err = in.custom(s, wasm)
			customs[s.start] = content
			if err != nil {
				return nil, err
			}
			continue
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		contents[s.id] = content
	}
	// The global section may hold ref.func, which adds wrappers: before
	// the code section's wrappers are written.
	var globalBody reader
	for _, s := range m.secs {
		if s.id == secGlobal {
			globalBody = s.body
		}
	}
	defined, err := in.definedGlobals(globalBody)
	if err != nil {
		return nil, err
	}
	if contents[secExport] == nil {
		contents[secExport], _ = in.exports(reader{})
	}
	if len(in.refs) > 0 {
		contents[secElement] = in.declareRefs(contents[secElement])
	}
	// Wrappers, appended to the function and code sections. Writing one
	// adds no wrapper (it calls its target directly).
	funcSec, codeSec := in.functionSection(), in.appendWrappers(contents[secCode])
	contents[secFunction], contents[secCode] = funcSec, codeSec
	contents[secGlobal] = in.globals(defined)
	contents[secImport] = in.imports(m, yieldType, outFuelType)
	contents[secType] = in.typeSection(m)
	var names []byte
	if nameSec != nil {
		_, r, _ := customName(*nameSec)
		if names, err = in.names(r); err != nil {
			// A malformed name section is the module's to fail on: keep
			// it as it is, and let wazero say why.
			names = nameSec.body.b
		}
		customs[nameSec.start] = names
	} else {
		names, _ = in.names(reader{})
	}

	out := make([]byte, 0, len(wasm)+len(wasm)/3)
	out = append(out, wasm[:8]...)
	written := map[byte]bool{}
	emitMissingBefore := func(rank int) {
		for _, id := range []byte{secType, secImport, secFunction, secGlobal, secExport, secElement} {
			if contents[id] == nil {
				continue
			}
			if !written[id] && sectionRank(id) < rank {
				out = appendSection(out, id, contents[id])
				written[id] = true
			}
		}
	}
	for _, s := range m.secs {
		if s.id == secCustom {
			if content, ok := customs[s.start]; ok && content != nil {
				out = appendSection(out, secCustom, content)
			}
			continue
		}
		emitMissingBefore(sectionRank(s.id))
		if content, ok := contents[s.id]; ok {
			out = appendSection(out, s.id, content)
			written[s.id] = true
		} else {
			out = append(out, wasm[s.start:s.end]...)
		}
	}
	emitMissingBefore(math.MaxInt)
	if nameSec == nil {
		out = appendSection(out, secCustom, names)
	}
	if in.dwarf {
		for _, sec := range syntheticDWARF() {
			out = appendSection(out, secCustom, sec)
		}
	}
	return out, nil
}

func (in *instrumenter) typeSection(m *moduleInfo) []byte {
	var orig []byte
	n := uint32(0)
	for _, s := range m.secs {
		if s.id == secType {
			r := s.body
			n, _ = r.u32()
			orig = r.b
		}
	}
	out := appendU32(nil, n+uint32(len(in.newTypes)))
	out = append(out, orig...)
	for _, t := range in.newTypes {
		out = append(out, 0x60)
		out = appendU32(out, uint32(len(t.params)))
		out = append(out, t.params...)
		out = appendU32(out, uint32(len(t.results)))
		out = append(out, t.results...)
	}
	return out
}

func (in *instrumenter) imports(m *moduleInfo, yieldType, outFuelType uint32) []byte {
	var orig []byte
	n := uint32(0)
	for _, s := range m.secs {
		if s.id == secImport {
			r := s.body
			n, _ = r.u32()
			orig = r.b
		}
	}
	out := appendU32(nil, n+in.added)
	out = append(out, orig...)
	out = appendName(out, InterruptModule)
	out = appendName(out, YieldFunc)
	out = append(out, importKindFunc)
	out = appendU32(out, yieldType)
	if in.opts.Fuel {
		out = appendName(out, InterruptModule)
		out = appendName(out, OutOfFuelFunc)
		out = append(out, importKindFunc)
		out = appendU32(out, outFuelType)
	}
	return out
}

// functionSection lists the threaded type of every defined function, then
// the types of the wrappers.
func (in *instrumenter) functionSection() []byte {
	m := in.m
	out := appendU32(nil, uint32(len(m.definedFuncs)+len(in.wrappers)))
	for _, t := range m.definedFuncs {
		out = appendU32(out, in.threadedType(t))
	}
	for _, w := range in.wrappers {
		out = appendU32(out, in.wrapperType(w))
	}
	return out
}

func (in *instrumenter) targetType(w wrapper) uint32 {
	if w.ofImport {
		return in.m.importTypes[w.target]
	}
	return in.m.definedFuncs[w.target-in.funcImports()]
}

func (in *instrumenter) wrapperType(w wrapper) uint32 {
	if w.ofImport {
		return in.threadedType(in.targetType(w))
	}
	return in.targetType(w)
}

// appendWrappers appends the wrappers' bodies to the code section, whose
// count it updates.
func (in *instrumenter) appendWrappers(code []byte) []byte {
	r := reader{b: code}
	n, _ := r.u32()
	out := appendU32(nil, n+uint32(len(in.wrappers)))
	out = append(out, r.b...)
	var body []byte
	for _, w := range in.wrappers {
		ft := in.m.types[in.targetType(w)]
		body = append(body[:0], 0) // no locals
		for i := range ft.params {
			body = append(body, opLocalGet)
			body = appendU32(body, uint32(i))
		}
		p := uint32(len(ft.params))
		if w.ofImport {
			// Called with the counters as its last parameters: the fuel
			// goes through its global, for a host function that calls
			// back into the guest; the tick goes straight back.
			if in.opts.Fuel {
				body = appendLocal(body, opLocalGet, p+1)
				body = appendGlobal(body, opGlobalSet, in.fuelG)
			}
			body = append(body, opCall)
			body = appendU32(body, w.target)
			body = appendLocal(body, opLocalGet, p)
			if in.opts.Fuel {
				body = appendGlobal(body, opGlobalGet, in.fuelG)
			}
		} else {
			body = appendGlobal(body, opGlobalGet, in.tickG)
			if in.opts.Fuel {
				body = appendGlobal(body, opGlobalGet, in.fuelG)
			}
			body = append(body, opCall)
			body = appendU32(body, w.target+in.added)
			if in.opts.Fuel {
				body = appendGlobal(body, opGlobalSet, in.fuelG)
			}
			body = appendGlobal(body, opGlobalSet, in.tickG)
		}
		body = append(body, opEnd)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out
}

func appendLocal(b []byte, op byte, idx uint32) []byte {
	b = append(b, op)
	return appendU32(b, idx)
}

func appendGlobal(b []byte, op byte, idx uint32) []byte {
	b = append(b, op)
	return appendU32(b, idx)
}

// definedGlobals returns the input's defined globals, their initialisers
// renumbered, and their count.
func (in *instrumenter) definedGlobals(r reader) ([]byte, error) {
	if len(r.b) == 0 {
		return nil, nil
	}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	var out []byte
	for range n {
		t, err := r.byte()
		if err != nil {
			return nil, err
		}
		if !plainValueType(t) {
			return nil, notInstrumentable("a global of value type 0x%x", t)
		}
		mut, err := r.byte()
		if err != nil {
			return nil, err
		}
		out = append(out, t, mut)
		if out, err = in.constExpr(out, &r); err != nil {
			return nil, err
		}
	}
	return out, r.errIfLeft("the global section")
}

// globals is the global section: the input's, then the counters, then the
// scratch globals that save locals around a yield.
func (in *instrumenter) globals(defined []byte) []byte {
	added := 1 + len(in.scratchOrder)
	if in.opts.Fuel {
		added++
	}
	out := appendU32(nil, in.m.definedGlobal+uint32(added))
	out = append(out, defined...)
	out = append(out, valueI32, globalMutable, opI32Const)
	out = appendSLEB(out, InitialTick)
	out = append(out, opEnd)
	if in.opts.Fuel {
		out = append(out, valueI64, globalMutable, opI64Const)
		out = appendSLEB(out, maxFuel)
		out = append(out, opEnd)
	}
	for _, k := range in.scratchOrder {
		out = append(out, k.t, globalMutable)
		out = appendZero(out, k.t)
		out = append(out, opEnd)
	}
	return out
}

// appendZero appends the constant instruction of the zero (or null) value
// of type t.
func appendZero(b []byte, t byte) []byte {
	switch t {
	case valueI32:
		return append(b, opI32Const, 0)
	case valueI64:
		return append(b, opI64Const, 0)
	case valueF32:
		return append(b, opF32Const, 0, 0, 0, 0)
	case valueF64:
		return append(b, opF64Const, 0, 0, 0, 0, 0, 0, 0, 0)
	case valueV128:
		b = append(b, opPrefixSIMD, 12)
		return append(b, make([]byte, 16)...)
	}
	return append(b, opRefNull, t)
}

// constExpr copies a constant expression from r to out, renumbering the
// functions it names.
func (in *instrumenter) constExpr(out []byte, r *reader) ([]byte, error) {
	d := decoder{r: *r, base: r.off}
	var ins instr
	for {
		if err := d.next(&ins); err != nil {
			return nil, notInstrumentableOp(err, "a constant expression")
		}
		if ins.op == opRefFunc {
			out = append(out, opRefFunc)
			out = appendU32(out, in.callee(ins.idx))
		} else {
			out = append(out, r.b[ins.start:ins.end]...)
		}
		if ins.op == opEnd {
			r.advance(ins.end)
			return out, nil
		}
	}
}

func (in *instrumenter) exports(r reader) ([]byte, error) {
	var n uint32
	if len(r.b) > 0 {
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
	}
	added := uint32(1)
	if in.opts.Fuel {
		added++
	}
	out := appendU32(nil, n+added)
	for range n {
		name, err := r.name("an export name")
		if err != nil {
			return nil, err
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		if kind == exportKindFunc {
			if idx >= in.funcImports()+uint32(len(in.m.definedFuncs)) {
				return nil, fmt.Errorf("export %q names function %d, which does not exist", name, idx)
			}
			idx = in.entry(idx)
		}
		out = appendName(out, name)
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	if err := r.errIfLeft("the export section"); err != nil {
		return nil, err
	}
	out = appendName(out, TickGlobalExport)
	out = append(out, exportKindGlobal)
	out = appendU32(out, in.tickG)
	if in.opts.Fuel {
		out = appendName(out, FuelGlobalExport)
		out = append(out, exportKindGlobal)
		out = appendU32(out, in.fuelG)
	}
	return out, nil
}

func (in *instrumenter) start(r reader) ([]byte, error) {
	f, err := r.u32()
	if err != nil {
		return nil, err
	}
	if f >= in.funcImports()+uint32(len(in.m.definedFuncs)) {
		return nil, fmt.Errorf("the start function %d does not exist", f)
	}
	return appendU32(nil, in.entry(f)), nil
}

func (in *instrumenter) elements(r reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		prefix, err := r.u32()
		if err != nil {
			return nil, err
		}
		if prefix > 7 {
			return nil, fmt.Errorf("invalid element segment prefix %d", prefix)
		}
		out = appendU32(out, prefix)
		if prefix == 2 || prefix == 6 { // a table index
			t, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = appendU32(out, t)
		}
		if prefix&1 == 0 { // active: an offset
			if out, err = in.constExpr(out, &r); err != nil {
				return nil, err
			}
		}
		if prefix != 0 && prefix != 4 { // an element kind or a reference type
			b, err := r.byte()
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		c, err := r.count("an element segment", 1)
		if err != nil {
			return nil, err
		}
		out = appendU32(out, c)
		for range c {
			if prefix < 4 { // function indices
				f, err := r.u32()
				if err != nil {
					return nil, err
				}
				out = appendU32(out, in.callee(f))
			} else if out, err = in.constExpr(out, &r); err != nil {
				return nil, err
			}
		}
	}
	return out, r.errIfLeft("the element section")
}

// declareRefs appends to the element section a declarative segment of the
// functions instrumented code takes references to: their indices changed,
// and what declared them (an export, now of a wrapper) may not any more.
func (in *instrumenter) declareRefs(elements []byte) []byte {
	n := uint32(0)
	r := reader{b: elements}
	if len(elements) > 0 {
		n, _ = r.u32()
	}
	out := appendU32(nil, n+1)
	out = append(out, r.b...)
	out = append(out, 3, 0) // declarative, function indices
	out = appendU32(out, uint32(len(in.refs)))
	for _, f := range slices.Sorted(maps.Keys(in.refs)) {
		out = appendU32(out, f)
	}
	return out
}

// tables renumbers the functions in table initialisers (a table declared
// with an initial value).
func (in *instrumenter) tables(r reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		start := r.b
		withInit := len(r.b) > 1 && r.b[0] == 0x40 && r.b[1] == 0
		if withInit {
			r.advance(2)
		}
		if err := skipValueType(&r); err != nil {
			return nil, err
		}
		if _, _, _, _, err := limits(&r); err != nil {
			return nil, err
		}
		out = append(out, start[:len(start)-len(r.b)]...)
		if withInit {
			if out, err = in.constExpr(out, &r); err != nil {
				return nil, err
			}
		}
	}
	return out, r.errIfLeft("the table section")
}

// custom returns what becomes of a custom section: the same bytes, new
// content, or nil to drop it.
func (in *instrumenter) custom(s section, wasm []byte) ([]byte, error) {
	name, _, ok := customName(s)
	if !ok {
		return s.body.b, nil // wazero decides what to make of it
	}
	if strings.HasPrefix(name, ".debug_") {
		// DWARF maps code offsets to source lines; the inserted checks move
		// every offset, so the map would point at the wrong lines. One that
		// maps every offset to itself takes its place (see sourcemap.go).
		in.dwarf = in.dwarf || name == ".debug_info"
		return nil, nil
	}
	return s.body.b, nil
}

// names returns the content of the instrumented module's name section,
// from the input's (r; empty for none). Function names follow sourcemap.go:
// every function of the input's code is named, with FrameMarker, and every
// wrapper is named WrapperName. Local names are renumbered: the counters are
// parameters added after a function's own, so its declared locals move
// past them. Subsections naming other things by function (labels) are
// dropped; wazero reads only the module, function and local names.
func (in *instrumenter) names(r reader) ([]byte, error) {
	var moduleName, localNames []byte
	funcNames := map[uint32]string{}
	shiftFunc := func(f uint32) uint32 {
		if f >= in.funcImports() {
			return f + in.added
		}
		return f
	}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		sub, err := r.sub(uint64(size))
		if err != nil {
			return nil, err
		}
		switch id {
		case 0:
			moduleName = sub.b
		case 1:
			n, err := sub.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				f, err := sub.u32()
				if err != nil {
					return nil, err
				}
				name, err := sub.name("a function's name")
				if err != nil {
					return nil, err
				}
				funcNames[f] = name
			}
		case 2:
			if localNames, err = in.localNames(sub, shiftFunc); err != nil {
				return nil, err
			}
		}
	}

	var fn []byte
	imports, defined := in.funcImports(), uint32(len(in.m.definedFuncs))
	n := uint32(0)
	for f := range imports {
		if name, ok := funcNames[f]; ok {
			fn = appendU32(fn, f)
			fn = appendName(fn, name)
			n++
		}
	}
	for f := imports; f < imports+defined; f++ {
		fn = appendU32(fn, f+in.added)
		fn = appendName(fn, frameName(funcNames[f], f))
		n++
	}
	for k := range in.wrappers {
		fn = appendU32(fn, in.wrapBase+uint32(k))
		fn = appendName(fn, WrapperName)
		n++
	}
	fn = append(appendU32(nil, n), fn...)

	out := appendName(nil, "name")
	subsection := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if moduleName != nil {
		subsection(0, moduleName)
	}
	subsection(1, fn)
	if localNames != nil {
		subsection(2, localNames)
	}
	return out, nil
}

// localNames renumbers the local name subsection.
func (in *instrumenter) localNames(sub reader, shiftFunc func(uint32) uint32) ([]byte, error) {
	n, err := sub.u32()
	if err != nil {
		return nil, err
	}
	body := appendU32(nil, n)
	for range n {
		f, err := sub.u32()
		if err != nil {
			return nil, err
		}
		shiftLocal := func(l uint32) uint32 { return l } // an import's locals are its parameters
		if f >= in.funcImports() {
			if int(f-in.funcImports()) >= len(in.m.definedFuncs) {
				return nil, errors.New("local names for a function that does not exist")
			}
			params := uint32(len(in.m.types[in.m.definedFuncs[f-in.funcImports()]].params))
			counters := uint32(len(in.counters()))
			shiftLocal = func(l uint32) uint32 {
				if l >= params {
					return l + counters
				}
				return l
			}
		}
		body = appendU32(body, shiftFunc(f))
		if body, err = nameMap(body, &sub, shiftLocal); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// nameMap copies a name map, mapping its indices.
func nameMap(out []byte, r *reader, mapIdx func(uint32) uint32) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out = appendU32(out, n)
	for range n {
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		s, err := r.name("a name")
		if err != nil {
			return nil, err
		}
		out = appendU32(out, mapIdx(idx))
		out = appendName(out, s)
	}
	return out, nil
}

// ImportsFrom reports whether wasm imports anything from the host module of
// the given name (false for bytes it cannot read).
func ImportsFrom(wasm []byte, module string) bool {
	secs, err := sections(wasm)
	if err != nil {
		return false
	}
	for _, s := range secs {
		if s.id != secImport {
			continue
		}
		r := s.body
		n, err := r.u32()
		if err != nil {
			return false
		}
		for range n {
			imp, err := readImport(&r)
			if err != nil {
				return false
			}
			if imp.module == module {
				return true
			}
		}
	}
	return false
}
