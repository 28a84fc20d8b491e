package wasmbin

import (
	"errors"
	"fmt"
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// section is one section of a binary: its id, its extent (header included)
// and its content.
type section struct {
	id         byte
	start, end int
	body       reader
}

// header checks the magic number and version.
func header(wasm []byte) error {
	if len(wasm) < 4 || string(wasm[:4]) != "\x00asm" {
		return errors.New("not a WebAssembly binary (bad magic number)")
	}
	if len(wasm) < 8 || string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return errors.New("unsupported WebAssembly version (want 1)")
	}
	return nil
}

// sections splits a binary into its sections, checking their order (each
// at most once, custom sections anywhere) as wazero does. On an error it
// also returns the sections before the one it could not read, so that Check
// can report their errors first, in the order wazero would meet them.
func sections(wasm []byte) ([]section, error) {
	if err := header(wasm); err != nil {
		return nil, err
	}
	var out []section
	r := reader{b: wasm[8:], off: 8}
	var last byte
	for !r.done() {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return out, err
		}
		size, err := r.u32()
		if err != nil {
			return out, err
		}
		var ok bool
		if last, ok = sectionOrder(id, last); !ok {
			return out, fmt.Errorf("the %s section at offset %d is out of order", sectionName(id), start)
		}
		body, err := r.sub(uint64(size))
		if err != nil {
			return out, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
		out = append(out, section{id: id, start: start, end: r.off, body: body})
	}
	return out, nil
}

// sectionOrder is wazero's rule for the order of sections (so each appears
// at most once): custom sections anywhere, the tag section between memory
// and global, data count between element and code, the rest increasing.
func sectionOrder(current, previous byte) (byte, bool) {
	switch {
	case current == secCustom:
		return previous, true
	case current == secTag:
		return current, previous <= secMemory
	case previous == secTag:
		return current, current >= secGlobal
	case current > secTag:
		return current, false
	case current == secDataCount:
		return current, previous <= secElement
	case previous == secDataCount:
		return current, current >= secCode
	}
	return current, current > previous
}

// sectionRank is a section's place in the binary order, for inserting one
// that a module lacks.
func sectionRank(id byte) int {
	switch id {
	case secTag:
		return 55 // between memory (5) and global (6)
	case secDataCount:
		return 95 // between element (9) and code (10)
	}
	return int(id) * 10
}

func sectionName(id byte) string {
	names := [...]string{"custom", "type", "import", "function", "table", "memory", "global",
		"export", "start", "element", "code", "data", "data count", "tag"}
	if int(id) < len(names) {
		return names[id]
	}
	return fmt.Sprintf("unknown (id %d)", id)
}

// customName returns the name of a custom section, and the reader past it.
func customName(s section) (string, reader, bool) {
	r := s.body
	name, err := r.name("a custom section's name")
	return name, r, err == nil
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
