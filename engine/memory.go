package engine

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// limitedMemory backs one instance's linear memory and enforces the memory
// limit itself. wazero refuses a grow past its own page limit silently (the
// guest sees -1 and may carry on or crash in its own way), so the runtime's
// limit is set to the 4 GiB maximum and the refusal happens here, where it
// can be recorded: a task that fails after hitting the limit is then reported
// as ErrMemoryLimit whatever the guest did about it.
//
// Invariant: the bytes of buf between its length and its capacity are zero,
// so that growing within the capacity needs no clearing.
type limitedMemory struct {
	buf   []byte
	limit uint64
	hit   bool // a grow past the limit was refused
}

func newMemoryAllocator(limit uint64, spares *memoryPool, out **limitedMemory) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, _ uint64) experimental.LinearMemory {
		m := &limitedMemory{limit: limit}
		m.buf = spares.get(min(capacity, limit))
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

// Free is wazero's signal that the module was closed. It recycles nothing:
// Engine.Close closes modules whose guests may still be running on other
// goroutines. Instance.Close, which runs when no call can be, recycles.
func (m *limitedMemory) Free() {}

// memoryPool keeps the linear memories of closed instances for the next
// instance of the same runtime. A fresh instance per task (Processes mode)
// otherwise pays a large allocation, its zeroing, the page faults of fresh
// pages and later the GC, for every task; and a Go guest grows its memory
// several times during initialisation, each grow a copy, which a recycled
// buffer of the right capacity absorbs.
//
// Isolation is the point of a fresh instance, so a recycled buffer is
// cleared in full up to the length the previous guest could reach (linear
// memory never shrinks, so its final length is the most it ever saw).
type memoryPool struct {
	mu    sync.Mutex
	spare [][]byte // len: what a guest could have written; cleared on reuse
	bytes int      // the spares' capacities, summed
}

const (
	// maxSpareMemories bounds the buffers one runtime keeps: what recycling
	// is for is the next fresh instance of the same runtime, and a
	// Processes worker (a runtime of its own) makes one at a time.
	maxSpareMemories = 2
	// maxSpareMemoryBytes bounds the bytes one runtime keeps in all: in
	// Processes mode every worker has a runtime, and idle spares are memory
	// a host does not get back.
	maxSpareMemoryBytes = 32 << 20
	// A spare is handed out only to an instance that asks for at least a
	// quarter of its size (or when it is small anyway): a memory bomb's
	// buffer given to a small module's warm instance would stay alive as
	// long as that instance, and the pool would fill up again behind it.
	maxSpareOversize   = 4
	smallSpareCapacity = 1 << 20
)

// get returns a zeroed buffer of length 0 and at least capacity bytes of
// capacity: the smallest fitting spare, or a new one.
func (p *memoryPool) get(capacity uint64) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.spare {
		c := uint64(cap(b))
		if c < capacity || (c > maxSpareOversize*capacity && c > smallSpareCapacity) {
			continue
		}
		if best < 0 || c < uint64(cap(p.spare[best])) {
			best = i
		}
	}
	if best < 0 {
		p.mu.Unlock()
		return make([]byte, 0, capacity)
	}
	b := p.spare[best]
	last := len(p.spare) - 1
	p.spare[best] = p.spare[last]
	p.spare[last] = nil
	p.spare = p.spare[:last]
	p.bytes -= cap(b)
	p.mu.Unlock()
	clear(b)
	return b[:0]
}

// put offers the memory of a closed instance for reuse. The caller
// guarantees that nothing will touch it again: no call of the instance is in
// progress and its module is closed.
func (p *memoryPool) put(m *limitedMemory) {
	b := m.buf
	m.buf = nil
	if b == nil || m.hit {
		// A guest that ran into the memory limit (a memory bomb) left a
		// buffer of the limit's size: not one the next instance needs.
		return
	}
	p.mu.Lock()
	if len(p.spare) < maxSpareMemories && p.bytes+cap(b) <= maxSpareMemoryBytes {
		p.spare = append(p.spare, b)
		p.bytes += cap(b)
	}
	p.mu.Unlock()
}
