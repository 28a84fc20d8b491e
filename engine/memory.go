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

// memoryPool keeps the linear memory of the last closed instance for the
// next instance of the same runtime. A fresh instance per task (Processes
// mode) otherwise pays a large allocation, its zeroing, the page faults of
// fresh pages and later the GC, for every task; and a Go guest grows its
// memory several times during initialisation, each grow a copy, which a
// recycled buffer of the right capacity absorbs.
//
// One spare, the most recent: a Processes worker (a runtime of its own)
// makes one instance at a time, so one is all it reuses, and the most
// recent buffer is the best guess at the next instance's size. Keeping more
// would let an odd large buffer sit unused for the runtime's life; with one,
// the next closed instance replaces it, so what a runtime holds is bounded
// by one buffer of at most maxSpareMemoryBytes whatever the order of tasks.
//
// Isolation is the point of a fresh instance, so a recycled buffer is
// cleared in full up to the length the previous guest could reach (linear
// memory never shrinks, so its final length is the most it ever saw).
type memoryPool struct {
	mu    sync.Mutex
	spare []byte // len: what a guest could have written; cleared on reuse
}

const (
	// maxSpareMemoryBytes keeps a guest that grew large once from pinning
	// that much for the runtime's life; a Go guest's memory is a few MiB.
	maxSpareMemoryBytes = 16 << 20
	// The spare is handed out only to an instance that asks for at least a
	// quarter of its size (or when it is small anyway): a large buffer
	// given to a small module's warm instance would stay alive as long as
	// that instance does.
	maxSpareOversize   = 4
	smallSpareCapacity = 1 << 20
)

// get returns a zeroed buffer of length 0 and at least capacity bytes of
// capacity: the spare if it fits, else a new one.
func (p *memoryPool) get(capacity uint64) []byte {
	p.mu.Lock()
	b := p.spare
	c := uint64(cap(b))
	if b == nil || c < capacity || (c > maxSpareOversize*capacity && c > smallSpareCapacity) {
		p.mu.Unlock()
		return make([]byte, 0, capacity)
	}
	p.spare = nil
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
	if b == nil || m.hit || cap(b) > maxSpareMemoryBytes {
		// A guest that ran into the memory limit (a memory bomb) left a
		// buffer of the limit's size: not one the next instance needs.
		return
	}
	p.mu.Lock()
	p.spare = b
	p.mu.Unlock()
}
