package engine

import "encoding/binary"

// The table cap of modcheck.go: tables are host memory that
// MemoryLimitBytes does not see, so every table gets a maximum, and the
// tables of a module together stay within maxTableElements.

type span struct{ start, end int }

// tableLimits is one table of the table section, for capping its maximum.
type tableLimits struct {
	limitsAt, limitsEnd int // the limits' bytes, as offsets in the binary
	flag                byte
	min                 uint64
	max                 uint64
	hasMax              bool
}

// capTables returns the edit of wasm whose table section gives every table a
// maximum, so that the tables together never exceed maxTableElements.
// Tables keep their minimum; the room left above the minima goes to the
// tables in order, each up to the maximum it declared.
func (c *checker) capTables(wasm []byte) sectionEdit {
	room := uint64(maxTableElements) - c.tableMin
	var body []byte
	sec := c.tableSection
	// Only the section's id and size are rebuilt: its content is copied,
	// but for each defined table's limits, which are replaced.
	r := reader{b: wasm[sec.start+1:], off: sec.start + 1}
	size, _ := r.u32()
	contentStart := r.off
	contentEnd := contentStart + int(size)
	pos := contentStart
	for _, t := range c.tables {
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
	body = append(body, wasm[pos:contentEnd]...)
	return sectionEdit{id: 4, start: sec.start, end: sec.end, size: len(body),
		write: func(out []byte) []byte { return append(out, body...) }}
}
