package engine

import (
	"context"
	"errors"
	"io"

	"github.com/tetratelabs/wazero/sys"
)

// streamReader is a command's streamed stdin (Task.Stdin). Each read runs in
// a goroutine of its own while the guest waits for it or for the call's
// context, whichever comes first: a guest blocked on a read that never
// returns (a terminal nobody types at, a pipe nobody writes to) is still
// stopped by its timeout or a cancel, right there, as wazero stops a guest
// at its next checkpoint: the read does not return to it. The abandoned read
// finishes in the background when its reader returns, into a buffer of its
// own, never into the guest's memory.
type streamReader struct {
	ctx context.Context
	r   io.Reader
}

type readResult struct {
	b   []byte
	err error
}

func newStreamReader(ctx context.Context, r io.Reader) io.Reader {
	return &streamReader{ctx: ctx, r: r}
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		s.stop()
	}
	if len(p) == 0 {
		return 0, nil
	}
	done := make(chan readResult, 1) // never blocks the reader, even abandoned
	go func() {
		buf := make([]byte, len(p))
		n, err := s.r.Read(buf)
		done <- readResult{buf[:n], err}
	}()
	select {
	case res := <-done:
		return copy(p, res.b), res.err
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
