package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// mergeDataSegments returns wasm with its active data segments merged into
// as few as possible, or wasm itself when that cannot be done exactly.
//
// Why: Go's linker splits a module's initial memory at every run of zeros,
// and a Go guest carries 20,000 to 30,000 data segments of a few dozen bytes.
// wazero applies them one by one on every instantiation, evaluating each
// offset expression with an allocation: a third of the cost of a fresh Go
// instance. Merged across small gaps, they become one or two memory copies.
//
// Exactness: memory starts zeroed, so filling a gap with zeros changes
// nothing unless another segment writes into that gap; and the order in which
// segments are applied matters only if two overlap. So the merge happens only
// when every segment is active, for memory 0, at a plain i32.const offset,
// and the segments are pairwise disjoint and lie within the memory's declared
// minimum (an out-of-bounds segment must still trap at instantiation). A
// data-count section means memory.init or data.drop may name segments by
// index, so such modules are left alone too.
func mergeDataSegments(wasm []byte) []byte {
	edit, ok := dataEdit(wasm)
	if !ok {
		return wasm
	}
	return splice(wasm, edit)
}

// dataEdit is mergeDataSegments as a section edit, for compileNew to apply
// with its other rewrites in one pass; ok is false when the merge cannot be
// done exactly.
func dataEdit(wasm []byte) (edit sectionEdit, ok bool) {
	var (
		dataStart, dataEnd = -1, -1 // the whole data section, header included
		dataBody           []byte
		memBytes           uint64
		haveMemory         bool
	)
	read := eachSection(wasm, func(id byte, start, end int, body []byte) bool {
		switch id {
		case 5: // memory
			min, err := definedMemoryMin(reader{b: body})
			if err != nil {
				return false
			}
			memBytes, haveMemory = min*wasmPageSize, true
		case 11: // data
			dataStart, dataEnd, dataBody = start, end, body
		case 12: // data count
			return false
		}
		return true
	})
	if !read || dataBody == nil || !haveMemory {
		return sectionEdit{}, false
	}
	segs, ok := activeSegments(dataBody)
	if !ok || len(segs) < 2 {
		return sectionEdit{}, false
	}
	slices.SortStableFunc(segs, func(a, b activeSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i, s := range segs {
		if s.offset+uint64(len(s.data)) > memBytes {
			return sectionEdit{}, false
		}
		if i > 0 && s.offset < segs[i-1].offset+uint64(len(segs[i-1].data)) {
			return sectionEdit{}, false
		}
	}
	extents := mergeAcrossGaps(segs, maxMergedGap)

	// The section is written straight into the output, over a zeroed
	// buffer (see splice): extending it over a gap is the zero filling.
	var scratch [16]byte
	size := len(binary.AppendUvarint(scratch[:0], uint64(len(extents))))
	for _, x := range extents {
		n := x.end - x.offset
		size += 3 + len(appendSLEB128(scratch[:0], int64(int32(uint32(x.offset))))) +
			len(binary.AppendUvarint(scratch[:0], n)) + int(n)
	}
	write := func(out []byte) []byte {
		out = binary.AppendUvarint(out, uint64(len(extents)))
		for _, x := range extents {
			out = append(out, 0, 0x41) // active, memory 0; i32.const
			out = appendSLEB128(out, int64(int32(uint32(x.offset))))
			out = append(out, 0x0b) // end
			n := x.end - x.offset
			out = binary.AppendUvarint(out, n)
			base := len(out)
			out = out[:base+int(n)]
			for _, s := range segs[x.first : x.last+1] {
				copy(out[base+int(s.offset-x.offset):], s.data)
			}
		}
		return out
	}
	return sectionEdit{id: 11, start: dataStart, end: dataEnd, size: size, write: write}, true
}

// maxMergedGap is the widest run of zeros a merged segment spans. Go's gaps
// are nearly all alignment (under 64 bytes); larger ones start a new segment,
// so a module with a huge hole in its data is not inflated by it.
const maxMergedGap = 4096

type activeSegment struct {
	offset uint64
	data   []byte
}

// activeSegments decodes a data section whose segments are all active, for
// memory 0, at an i32.const offset; ok is false for anything else.
func activeSegments(body []byte) (segs []activeSegment, ok bool) {
	r := reader{b: body}
	n, err := r.u32()
	if err != nil || uint64(n) > uint64(len(body)) {
		return nil, false
	}
	segs = make([]activeSegment, 0, n)
	for range n {
		flag, err := r.u32()
		if err != nil || flag != 0 {
			return nil, false
		}
		op, err := r.byte()
		if err != nil || op != 0x41 { // i32.const
			return nil, false
		}
		off, err := r.s32()
		if err != nil {
			return nil, false
		}
		if end, err := r.byte(); err != nil || end != 0x0b {
			return nil, false
		}
		size, err := r.u32()
		if err != nil {
			return nil, false
		}
		data, err := r.bytes(uint64(size))
		if err != nil {
			return nil, false
		}
		segs = append(segs, activeSegment{offset: uint64(uint32(off)), data: data})
	}
	return segs, r.done()
}

// extent is a run of segments merged into one: bytes [offset, end) of
// memory, holding segs[first..last] and zeros between them.
type extent struct {
	offset, end uint64
	first, last int
}

// mergeAcrossGaps groups sorted, disjoint segments separated by at most gap
// bytes into extents.
func mergeAcrossGaps(segs []activeSegment, gap uint64) []extent {
	var out []extent
	for i, s := range segs {
		end := s.offset + uint64(len(s.data))
		if n := len(out); n > 0 && s.offset-out[n-1].end <= gap {
			out[n-1].end, out[n-1].last = end, i
			continue
		}
		out = append(out, extent{offset: s.offset, end: end, first: i, last: i})
	}
	return out
}

// appendSLEB128 appends v in signed LEB128, the encoding of an i32.const
// immediate (encoding/binary's varints are zig-zag, not this).
func appendSLEB128(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// definedMemoryMin reads a memory section and returns the largest minimum,
// in pages, of the memories it defines.
func definedMemoryMin(r reader) (uint64, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var most uint64
	for range n {
		_, min, _, _, err := limits(&r)
		if err != nil {
			return 0, err
		}
		most = max(most, min)
	}
	return most, nil
}
