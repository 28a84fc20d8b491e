package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// A streamed buffer passes everything on and keeps the last streamTail bytes
// of it, whatever the sizes of the writes.
func TestStreamedBufferKeepsTheTail(t *testing.T) {
	var sink bytes.Buffer
	b := cappedBuffer{limit: 10, sink: &sink}
	var all strings.Builder
	for i, n := range []int{1, 100, streamTail - 1, 3 * streamTail, 7, streamKeep, 2, 1000, streamTail} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		got, err := b.Write(p)
		if err != nil || got != n {
			t.Fatalf("write %d: %d, %v", i, got, err)
		}
		all.Write(p)
		s := all.String()
		want := s[max(0, len(s)-streamTail):]
		if tail := string(b.buf); !strings.HasSuffix(tail, want) || len(b.buf) > streamKeep+streamTail {
			t.Fatalf("after write %d: kept %d bytes, not ending in the last %d written", i, len(b.buf), len(want))
		}
	}
	if sink.String() != all.String() {
		t.Fatalf("the sink got %d bytes, want %d", sink.Len(), all.Len())
	}
	if b.take() != nil {
		t.Fatal("a streamed buffer returns nothing: its bytes went to the sink")
	}
}

// BenchmarkStreamedStdinPipe is a stdio filter's read, a kilobyte at a time,
// of a pipe kept full by its writer: the common case of `cat big | wasmpool
// run filter.wasm`. Compare with BenchmarkPipeRead, the read alone.
func BenchmarkStreamedStdinPipe(b *testing.B) {
	benchPipe(b, func(r io.Reader) io.Reader { return newStreamReader(context.Background(), r) })
}

func BenchmarkPipeRead(b *testing.B) { benchPipe(b, func(r io.Reader) io.Reader { return r }) }

func benchPipe(b *testing.B, wrap func(io.Reader) io.Reader) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
	defer w.Close()
	sr := wrap(r)
	p := make([]byte, 1024)
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(sr, p); err != nil {
			b.Fatal(err)
		}
	}
}
