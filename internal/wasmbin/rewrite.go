package wasmbin

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
)

// RewriteOptions chooses the rewrites that are not always made.
type RewriteOptions struct {
	// Preinitialize exports the module's mutable globals when it can be
	// pre-initialised exactly (see preinit.go), so that the host can read
	// and restore an instance's whole state.
	Preinitialize bool
}

// Rewritten is what Rewrite makes of a module.
type Rewritten struct {
	// Wasm is the binary to compile: the input itself when nothing needed
	// rewriting.
	Wasm []byte
	// Preinitializable: the module's whole mutable state is its linear
	// memory and its mutable globals, which GlobalExports name, in index
	// order. Only with RewriteOptions.Preinitialize.
	Preinitializable bool
	GlobalExports    []string
}

// Rewrite applies to a checked module the rewrites it needs before it is
// compiled: its tables capped (see maxTableElements) and its data segments
// merged (see datamerge.go), and with opts.Preinitialize its mutable
// globals exported. facts must be Check's of the same bytes; Rewrite may
// reorder what they hold, so a Facts serves one Rewrite at a time.
//
// Each rewrite is an edit of one section, and they are applied in one pass,
// so that a Go guest's megabytes are copied once, not once per rewrite: in
// a young process, as a CLI start is, every copied megabyte is page faults
// and a step towards a GC cycle.
func Rewrite(wasm []byte, facts *Facts, opts RewriteOptions) (Rewritten, error) {
	if facts == nil || facts.size != len(wasm) {
		return Rewritten{}, errors.New("wasmbin: Rewrite needs the facts Check found in the same bytes")
	}
	var edits []sectionEdit
	var out Rewritten
	// The scan of the code first, before the edits allocate: a reader's
	// every step is a pointer write, a write barrier while a collection
	// marks, and the scan reads every instruction (a third slower when it
	// ran after the data merge's allocations).
	if opts.Preinitialize {
		var edit sectionEdit
		if edit, out.GlobalExports, out.Preinitializable = exportEdit(facts); out.Preinitializable {
			edits = append(edits, edit)
		}
	}
	if facts.TablesNeedCap {
		edits = append(edits, tableCapEdit(wasm, facts))
	}
	if edit, ok := dataEdit(facts); ok {
		edits = append(edits, edit)
	}
	out.Wasm = splice(wasm, edits...)
	return out, nil
}

// sectionEdit replaces one section of a module binary with a new one of the
// same id, written straight into the output.
type sectionEdit struct {
	id         byte
	start, end int                     // the section in the input, header included
	size       int                     // the new section's body, in bytes
	write      func(out []byte) []byte // appends exactly size bytes
}

// splice returns wasm with the edited sections replaced, in one allocation
// of the exact size, or wasm itself when there is nothing to edit. A fresh
// buffer is zeroed, which the data edit counts on for the gaps between
// merged segments: it extends its slice over them without writing.
func splice(wasm []byte, edits ...sectionEdit) []byte {
	if len(edits) == 0 {
		return wasm
	}
	slices.SortFunc(edits, func(a, b sectionEdit) int { return cmp.Compare(a.start, b.start) })
	size := len(wasm)
	for _, e := range edits {
		size += 1 + uvarintSize(uint64(e.size)) + e.size - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range edits {
		out = append(out, wasm[pos:e.start]...)
		out = append(out, e.id)
		out = binary.AppendUvarint(out, uint64(e.size))
		out = e.write(out)
		pos = e.end
	}
	return append(out, wasm[pos:]...)
}

// bytesEdit is an edit whose new body is already built.
func bytesEdit(s section, body []byte) sectionEdit {
	return sectionEdit{id: s.id, start: s.start, end: s.end, size: len(body),
		write: func(out []byte) []byte { return append(out, body...) }}
}
