package wasmbin

import (
	"encoding/binary"
	"strconv"
)

// globalExportPrefix starts the export names the pre-initialisation rewrite
// gives a module's mutable globals. An export name is any UTF-8 string; none
// a toolchain writes starts with a NUL, so these never clash with the
// module's own.
const globalExportPrefix = "\x00wasmpool:global:"

// exportEdit exports every mutable global the module defines (under
// globalExportPrefix and the global's index) and returns those export
// names, when the module can be pre-initialised exactly: a reactor (it
// exports _initialize, not _start) with a memory of its own, whose
// instructions can change nothing but memory and globals. ok is false
// otherwise, and the module is then instantiated the ordinary way.
func exportEdit(f *Facts) (edit sectionEdit, globals []string, ok bool) {
	sec, haveExports := f.section(secExport)
	if !haveExports || !f.hasMemorySection || !f.exportsInitialize || f.exportsStart ||
		!f.tidy(secImport) || !f.tidy(secGlobal) || !f.tidy(secExport) {
		return sectionEdit{}, nil, false
	}
	// The scan decodes every instruction: last, when all else holds.
	if !f.StateOnlyInMemoryAndGlobals() {
		return sectionEdit{}, nil, false
	}
	exports := sec.body.b
	body := binary.AppendUvarint(nil, uint64(f.exportCount)+uint64(len(f.mutableGlobals)))
	body = append(body, exports[uvarintLen(exports):]...)
	for _, idx := range f.mutableGlobals {
		name := globalExportPrefix + strconv.FormatUint(uint64(idx), 10)
		globals = append(globals, name)
		body = appendName(body, name)
		body = append(body, exportKindGlobal)
		body = appendU32(body, idx)
	}
	return bytesEdit(sec, body), globals, true
}

func uvarintLen(b []byte) int {
	_, n := binary.Uvarint(b)
	return max(n, 0)
}
