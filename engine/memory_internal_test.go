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

func TestMemoryPoolKeepsOnlyUsefulSpares(t *testing.T) {
	var p memoryPool
	p.put(&limitedMemory{buf: make([]byte, 10, 4<<20), hit: true})
	if p.spare != nil {
		t.Fatal("a memory that ran into the limit must not be kept")
	}
	p.put(&limitedMemory{buf: make([]byte, 0, maxSpareMemoryBytes+wasmPageSize)})
	if p.spare != nil {
		t.Fatal("a memory over maxSpareMemoryBytes must not be kept")
	}

	big, small := make([]byte, 0, 8<<20), make([]byte, 0, 2<<20)
	p.put(&limitedMemory{buf: big})
	if got := p.get(64 << 10); unsafe.SliceData(got) == unsafe.SliceData(big) {
		t.Fatal("a spare over four times the size asked for must not be handed out")
	}
	p.put(&limitedMemory{buf: small})
	if unsafe.SliceData(p.spare) != unsafe.SliceData(small) {
		t.Fatal("the most recent memory must replace the spare, so an unused large one does not stay")
	}
	if got := p.get(1 << 20); unsafe.SliceData(got) != unsafe.SliceData(small) {
		t.Fatal("a spare up to four times the size asked for must be handed out")
	}
	if p.spare != nil {
		t.Fatal("a spare handed out must leave the pool")
	}
}
