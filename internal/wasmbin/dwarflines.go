package wasmbin

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// LineTable answers, for a code offset of a module, the source lines
// wazero would print in a stack trace: the same DWARF sections, the same
// search and the same text, so that a trace the engine takes back to the
// input module (see SourceMap) reads as wazero's own for it.
type LineTable struct {
	d *dwarf.Data

	mu    sync.Mutex
	units map[dwarf.Offset][]lineRow // a compile unit's rows, by address
}

type lineRow struct {
	addr uint64
	pos  dwarf.LineReaderPos
}

// ReadLineTable reads wasm's DWARF line information: nil, without error,
// for a module that has none.
func ReadLineTable(wasm []byte) (*LineTable, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	var info, line, str, abbrev, ranges []byte
	for _, s := range secs {
		if s.id != secCustom {
			continue
		}
		name, r, ok := customName(s)
		if !ok {
			continue
		}
		switch name {
		case ".debug_info":
			info = r.b
		case ".debug_line":
			line = r.b
		case ".debug_str":
			str = r.b
		case ".debug_abbrev":
			abbrev = r.b
		case ".debug_ranges":
			ranges = r.b
		}
	}
	if info == nil {
		return nil, nil
	}
	d, err := dwarf.New(abbrev, nil, nil, info, line, nil, ranges, str)
	if err != nil {
		return nil, nil // wazero ignores DWARF it cannot read; so do traces
	}
	return &LineTable{d: d, units: map[dwarf.Offset][]lineRow{}}, nil
}

// tombstone reports an address a linker left for code it removed: -1 or
// -2 as 32 bits, or 0 (which also covers 1<<32).
func tombstone(addr uint64) bool {
	a := int32(addr)
	return a == -1 || a == -2 || a == 0
}

func covers(d *dwarf.Data, e *dwarf.Entry, off uint64) bool {
	ranges, err := d.Ranges(e)
	if err != nil {
		return false
	}
	for _, r := range ranges {
		if !tombstone(r[0]) && !tombstone(r[1]) && r[0] <= off && off < r[1] {
			return true
		}
	}
	return false
}

// Lines returns the source lines of the instruction at off, innermost
// first, each as "0xOFF: file:line:col" and, for code inlined into it, the
// calls it was inlined from.
func (t *LineTable) Lines(off uint64) []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()

	// The compile unit holding off, and the inlined subroutines on the
	// way to it, outermost first: once an inlined subroutine without
	// children holds it, there is nothing deeper to find.
	var unit *dwarf.Entry
	var inlined []*dwarf.Entry
	innermost := false
	r := t.d.Reader()
	for unit == nil || !innermost {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag != dwarf.TagCompileUnit && e.Tag != dwarf.TagInlinedSubroutine {
			continue
		}
		if !covers(t.d, e, off) {
			continue
		}
		if e.Tag == dwarf.TagCompileUnit {
			unit = e
		} else {
			inlined = append(inlined, e)
			innermost = !e.Children
		}
	}
	if unit == nil {
		return nil
	}
	lr, err := t.d.LineReader(unit)
	if err != nil || lr == nil {
		return nil
	}
	rows, ok := t.units[unit.Offset]
	if !ok {
		// A unit's rows need not be in address order (Zig interleaves
		// sequences): read them all and sort, rather than SeekPC.
		var le dwarf.LineEntry
		for {
			pos := lr.Tell()
			if err := lr.Next(&le); err != nil {
				if !errors.Is(err, io.EOF) {
					return nil
				}
				break
			}
			rows = append(rows, lineRow{addr: le.Address, pos: pos})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].addr < rows[j].addr })
		t.units[unit.Offset] = rows
	}
	// The row at off, or else the one before: it spans off.
	i := sort.Search(len(rows), func(i int) bool { return rows[i].addr >= off })
	if i == len(rows) {
		return nil
	}
	if rows[i].addr != off {
		if i == 0 {
			return nil
		}
		i--
	}
	var le dwarf.LineEntry
	lr.Seek(rows[i].pos)
	if err := lr.Next(&le); err != nil {
		return nil
	}

	prefix := fmt.Sprintf("%#x: ", off)
	out := []string{sourceLine(prefix, le.File.Name, int64(le.Line), int64(le.Column), len(inlined) > 0)}
	if len(inlined) == 0 {
		return out
	}
	prefix = strings.Repeat(" ", len(prefix))
	files := lr.Files()
	for i := len(inlined) - 1; i >= 0; i-- {
		e := inlined[i]
		file, ok := e.Val(dwarf.AttrCallFile).(int64)
		if !ok || file < 0 || file >= int64(len(files)) || files[file] == nil {
			return out
		}
		line, _ := e.Val(dwarf.AttrCallLine).(int64)
		col, _ := e.Val(dwarf.AttrCallColumn).(int64)
		out = append(out, sourceLine(prefix, files[file].Name, line, col, i != 0))
	}
	return out
}

func sourceLine(prefix, file string, line, col int64, inlined bool) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(file)
	if line != 0 {
		fmt.Fprintf(&b, ":%d", line)
		if col != 0 {
			fmt.Fprintf(&b, ":%d", col)
		}
	}
	if inlined {
		b.WriteString(" (inlined)")
	}
	return b.String()
}
