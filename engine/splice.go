package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// sectionEdit replaces one section of a module binary with a new one of the
// same id, written straight into the output.
type sectionEdit struct {
	id         byte
	start, end int                     // the section in the input, header included
	size       int                     // the new section's body, in bytes
	write      func(out []byte) []byte // appends exactly size bytes
}

// splice returns wasm with the edited sections replaced, in one allocation
// of the exact size, or wasm itself when there is nothing to edit.
//
// Each rewrite compileNew makes (tables capped, data segments merged,
// globals exported) is an edit, so that a Go guest's megabytes are copied
// once, not once per rewrite: in a young process, as a CLI start is, every
// copied megabyte is page faults and a step towards a GC cycle. A fresh
// buffer is also zeroed, which a data edit counts on for the gaps between
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

func uvarintSize(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(b[:0], v))
}
