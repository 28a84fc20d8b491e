package wasmbin

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// The data-segment merge: a module's active data segments merged into as
// few as possible, when that can be done exactly.
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

// maxMergedGap is the widest run of zeros a merged segment spans. Go's gaps
// are nearly all alignment (under 64 bytes); larger ones start a new segment,
// so a module with a huge hole in its data is not inflated by it.
const maxMergedGap = 4096

const pageSize = 65536

// activeSegment is a data segment of memory 0 at a constant offset.
type activeSegment struct {
	offset uint64
	data   []byte
}

// dataEdit is the merge as a section edit; ok is false when it cannot be
// done exactly (or would change nothing).
func dataEdit(f *Facts) (edit sectionEdit, ok bool) {
	sec, haveData := f.section(secData)
	if _, dataCount := f.section(secDataCount); dataCount || !haveData || !f.hasMemorySection ||
		!f.tidy(secData) || !f.dataExact || len(f.segs) < 2 {
		return sectionEdit{}, false
	}
	memBytes := f.definedMemMin * pageSize
	// Sorted in place, not on a copy: a copy of a Go guest's 30,000
	// segments is 1 MB more for the collector to chase. Only the merge
	// reads them, and sorting them again changes nothing.
	segs := f.segs
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
	size := uvarintSize(uint64(len(extents)))
	for _, x := range extents {
		n := x.end - x.offset
		size += 3 + len(appendSLEB(scratch[:0], int64(int32(uint32(x.offset))))) + uvarintSize(n) + int(n)
	}
	write := func(out []byte) []byte {
		out = binary.AppendUvarint(out, uint64(len(extents)))
		for _, x := range extents {
			out = append(out, 0, opI32Const) // active, memory 0
			out = appendSLEB(out, int64(int32(uint32(x.offset))))
			out = append(out, opEnd)
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
	return sectionEdit{id: secData, start: sec.start, end: sec.end, size: size, write: write}, true
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
