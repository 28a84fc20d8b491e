package engine

import (
	"github.com/tetratelabs/wazero/experimental"
)

// limitedMemory backs one instance's linear memory and enforces the memory
// limit itself. wazero refuses a grow past its own page limit silently (the
// guest sees -1 and may carry on or crash in its own way), so the runtime's
// limit is set to the 4 GiB maximum and the refusal happens here, where it
// can be recorded: a task that fails after hitting the limit is then reported
// as ErrMemoryLimit whatever the guest did about it.
type limitedMemory struct {
	buf   []byte
	limit uint64
	hit   bool // a grow past the limit was refused
}

func newMemoryAllocator(limit uint64, out **limitedMemory) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, _ uint64) experimental.LinearMemory {
		m := &limitedMemory{limit: limit}
		if capacity > limit {
			capacity = limit
		}
		m.buf = make([]byte, 0, capacity)
		*out = m
		return m
	})
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.hit = true
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		// Bytes past the old length were never visible to the guest, and
		// linear memory never shrinks, so they are still zero.
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow geometrically (up to the limit) so a guest growing page by page
	// does not copy its whole memory on every grow.
	newCap := max(size, min(uint64(cap(m.buf))*2, m.limit))
	buf := make([]byte, size, newCap)
	copy(buf, m.buf)
	m.buf = buf
	return buf
}

func (m *limitedMemory) Free() { m.buf = nil }
