package wasmbin

import "encoding/binary"

// The table cap: tables are host memory that the engine's memory limit does
// not see, so every table gets a maximum, and the tables of a module
// together stay within maxTableElements.

// tableCapEdit returns the edit of wasm whose table section gives every
// table a maximum, so that the tables together never exceed
// maxTableElements. Tables keep their minimum; the room left above the
// minima goes to the tables in order, each up to the maximum it declared.
func tableCapEdit(wasm []byte, f *Facts) sectionEdit {
	sec, _ := f.section(secTable)
	room := uint64(maxTableElements) - f.tableMn
	// Only the section's id and size are rebuilt: its content is copied,
	// but for each defined table's limits, which are replaced.
	var body []byte
	pos := sec.body.off
	for _, t := range f.tables {
		body = append(body, wasm[pos:t.limitsAt]...)
		max := t.min + room
		if t.hasMax && t.max < max {
			max = t.max
		}
		room -= max - t.min
		body = append(body, t.flag|1)
		body = binary.AppendUvarint(body, t.min)
		body = binary.AppendUvarint(body, max)
		pos = t.limitsEnd
	}
	body = append(body, wasm[pos:sec.end]...)
	return bytesEdit(sec, body)
}
