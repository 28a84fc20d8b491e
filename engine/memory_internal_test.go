package engine

import (
	"bytes"
	"testing"
	"unsafe"
)

func TestMemoryPoolReusesAndClears(t *testing.T) {
	var p memoryPool
	first := p.get(4 << 10)
	m := &limitedMemory{buf: first[:3<<10], limit: 1 << 20}
	for i := range m.buf {
		m.buf[i] = 0xAA
	}
	p.put(m)
	if m.buf != nil {
		t.Fatal("put must take the buffer away from the closed instance")
	}

	again := p.get(2 << 10)
	if unsafe.SliceData(again) != unsafe.SliceData(first) {
		t.Fatal("a spare of enough capacity was not reused")
	}
	if len(again) != 0 || cap(again) != cap(first) {
		t.Fatalf("got len %d cap %d, want len 0 cap %d", len(again), cap(again), cap(first))
	}
	if whole := again[:cap(again)]; !bytes.Equal(whole, make([]byte, len(whole))) {
		t.Fatal("a reused buffer must be zero up to its capacity")
	}

	if big := p.get(8 << 10); unsafe.SliceData(big) == unsafe.SliceData(first) {
		t.Fatal("a spare too small was handed out")
	}
}

func TestMemoryPoolBounds(t *testing.T) {
	var p memoryPool
	for range maxSpareMemories + 2 {
		p.put(&limitedMemory{buf: make([]byte, 10, 64)})
	}
	if len(p.spare) != maxSpareMemories {
		t.Fatalf("kept %d spares, want at most %d", len(p.spare), maxSpareMemories)
	}
	p = memoryPool{}
	p.put(&limitedMemory{buf: make([]byte, 0, maxSpareMemoryBytes+wasmPageSize)})
	if len(p.spare) != 0 {
		t.Fatal("a memory over maxSpareMemoryBytes must not be kept")
	}
}
