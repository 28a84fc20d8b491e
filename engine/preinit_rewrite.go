package engine

import (
	"encoding/binary"
	"strconv"
)

// globalExportPrefix starts the export names preinitCode gives a module's
// mutable globals. An export name is any UTF-8 string; none a toolchain
// writes starts with a NUL, so these never clash with the module's own.
const globalExportPrefix = "\x00wasmpool:global:"

// preinitCode returns code with every mutable global it defines exported
// (under globalExportPrefix and the global's index), and those export names,
// when the module can be pre-initialised exactly (see template.go): a
// reactor (it exports _initialize, not _start) with a memory of its own,
// whose instructions can change nothing but memory and globals. ok is false
// otherwise, and the module is then instantiated the ordinary way.
func preinitCode(code []byte) (out []byte, globals []string, ok bool) {
	edit, globals, ok := exportEdit(code)
	if !ok {
		return nil, nil, false
	}
	return splice(code, edit), globals, true
}

// exportEdit is preinitCode as a section edit, for compileNew to apply with
// its other rewrites in one pass.
func exportEdit(code []byte) (edit sectionEdit, globals []string, ok bool) {
	if !scanModule(code).stateOnlyInMemoryAndGlobals {
		return sectionEdit{}, nil, false
	}
	var (
		importedGlobals uint32
		mutable         []uint32 // indices of the defined mutable globals
		exportStart     = -1     // the export section, header included
		exportEnd       int
		exportBody      []byte
		haveMemory      bool
	)
	read := eachSection(code, func(id byte, start, end int, body []byte) bool {
		var ok bool
		switch id {
		case 2:
			importedGlobals, ok = countImportedGlobals(reader{b: body})
			return ok
		case 5:
			haveMemory = true
		case 6:
			mutable, ok = mutableGlobals(reader{b: body}, importedGlobals)
			return ok
		case 7:
			exportStart, exportEnd, exportBody = start, end, body
		}
		return true
	})
	if !read || !haveMemory || exportStart < 0 {
		return sectionEdit{}, nil, false
	}
	entries, count, ok := exportEntries(exportBody)
	if !ok || !entries["_initialize"] || entries["_start"] {
		return sectionEdit{}, nil, false
	}

	body := binary.AppendUvarint(nil, uint64(count)+uint64(len(mutable)))
	body = append(body, exportBody[uvarintLen(exportBody):]...)
	for _, idx := range mutable {
		name := globalExportPrefix + strconv.FormatUint(uint64(idx), 10)
		globals = append(globals, name)
		body = binary.AppendUvarint(body, uint64(len(name)))
		body = append(body, name...)
		body = append(body, 3) // a global
		body = binary.AppendUvarint(body, uint64(idx))
	}
	return sectionEdit{id: 7, start: exportStart, end: exportEnd, size: len(body),
		write: func(out []byte) []byte { return append(out, body...) }}, globals, true
}

func uvarintLen(b []byte) int {
	_, n := binary.Uvarint(b)
	return max(n, 0)
}

// countImportedGlobals counts the global imports of an import section, which
// come first in the global index space.
func countImportedGlobals(r reader) (uint32, bool) {
	n, err := r.u32()
	if err != nil {
		return 0, false
	}
	var globals uint32
	for range n {
		for range 2 { // module and field names
			l, err := r.u32()
			if err != nil {
				return 0, false
			}
			if _, err := r.bytes(uint64(l)); err != nil {
				return 0, false
			}
		}
		kind, err := r.byte()
		if err != nil {
			return 0, false
		}
		switch kind {
		case 0: // func: a type index
			_, err = r.u32()
		case 1: // table: a reference type and limits
			if _, err = r.byte(); err == nil {
				_, _, _, _, err = limits(&r)
			}
		case 2: // memory
			_, _, _, _, err = limits(&r)
		case 3: // global: a value type and a mutability
			globals++
			_, err = r.bytes(2)
		default:
			return 0, false
		}
		if err != nil {
			return 0, false
		}
	}
	return globals, r.done()
}

// mutableGlobals returns the indices of the mutable globals a global section
// defines; the first has index imported.
func mutableGlobals(r reader, imported uint32) ([]uint32, bool) {
	n, err := r.u32()
	if err != nil {
		return nil, false
	}
	var out []uint32
	for i := range n {
		if _, err := r.byte(); err != nil { // value type
			return nil, false
		}
		mut, err := r.byte()
		if err != nil {
			return nil, false
		}
		if mut == 1 {
			out = append(out, imported+i)
		}
		// The initialiser: constant instructions up to end.
		for {
			op, err := r.byte()
			if err != nil {
				return nil, false
			}
			if op == 0x0b {
				break
			}
			if _, err := skipImmediates(&r, op); err != nil {
				return nil, false
			}
		}
	}
	return out, r.done()
}

// exportEntries returns the function names an export section exports, and
// how many entries it has.
func exportEntries(body []byte) (funcs map[string]bool, count uint32, ok bool) {
	r := reader{b: body}
	count, err := r.u32()
	if err != nil {
		return nil, 0, false
	}
	funcs = map[string]bool{}
	for range count {
		l, err := r.u32()
		if err != nil {
			return nil, 0, false
		}
		name, err := r.bytes(uint64(l))
		if err != nil {
			return nil, 0, false
		}
		kind, err := r.byte()
		if err != nil {
			return nil, 0, false
		}
		if _, err := r.u32(); err != nil {
			return nil, 0, false
		}
		if kind == 0 {
			funcs[string(name)] = true
		}
	}
	return funcs, count, r.done()
}
