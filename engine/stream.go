package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/tetratelabs/wazero/sys"
)

// streamReader is a command's streamed stdin (Task.Stdin).
//
// A read that may block for good (a terminal nobody types at, a pipe nobody
// writes to) runs in a goroutine of its own while the guest waits for it or
// for the call's context, whichever comes first: a guest blocked on such a
// read is still stopped by its timeout or a cancel, right there, as wazero
// stops a guest at its next checkpoint: the read does not return to it. The
// abandoned read finishes in the background when its reader returns, into a
// buffer of its own, never into the guest's memory.
//
// A read that returns at once is made on the guest's own goroutine, as
// wazero does: bytes in memory, a regular file, and a pipe or a terminal
// that has data waiting. A filter reading its stdin through stdio asks for
// a kilobyte at a time, and a goroutine per read cost several times the
// read itself (87 MB through getchar: 85,000 reads).
type streamReader struct {
	ctx    context.Context
	r      io.Reader
	direct bool     // every read returns at once
	file   *os.File // a pipe or a terminal: read directly when it has data

	// Reused by each read's goroutine in turn: a read in flight is either
	// waited for (then the next one starts after it) or abandoned, and an
	// abandoned read is the last, since the context has ended.
	res chan readResult // one slot: an abandoned read never blocks
	buf []byte
}

type readResult struct {
	n   int
	err error
}

func newStreamReader(ctx context.Context, r io.Reader) io.Reader {
	s := &streamReader{ctx: ctx, r: r, direct: neverBlocks(r)}
	if f, ok := r.(*os.File); ok && !s.direct {
		s.file = f
	}
	return s
}

// neverBlocks reports whether every read of r returns at once: bytes in
// memory, or a regular file (whose reads the kernel does not park).
func neverBlocks(r io.Reader) bool {
	switch r := r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	case *os.File:
		info, err := r.Stat()
		return err == nil && info.Mode().IsRegular()
	}
	return false
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		s.stop()
	}
	if len(p) == 0 {
		return 0, nil
	}
	// readable can be wrong only if another reader of the same pipe drains
	// it in between: then this read blocks as wazero's would, until data.
	if s.direct || s.file != nil && readable(s.file) {
		return s.r.Read(p)
	}
	if s.res == nil {
		s.res = make(chan readResult, 1)
	}
	if cap(s.buf) < len(p) {
		s.buf = make([]byte, len(p))
	}
	buf, res, r := s.buf[:len(p)], s.res, s.r
	go func() {
		n, err := r.Read(buf)
		res <- readResult{n, err}
	}()
	select {
	case out := <-res:
		return copy(p, buf[:out.n]), out.err
	case <-s.ctx.Done():
		s.stop()
		return 0, s.ctx.Err() // not reached
	}
}

// stop ends the guest's call the way wazero's close-on-context-done does, so
// that classify reports the timeout or the cancel. wazero recovers the panic
// of a host function into the call's error.
func (s *streamReader) stop() {
	code := sys.ExitCodeContextCanceled
	if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	}
	panic(sys.NewExitError(code))
}
