package engine

import "io"

// streamTail is how much of a streamed stderr the host keeps: enough for an
// ExitError to say why and for a runtime's last words before a trap.
const streamTail = 4 << 10

// streamKeep is how far a streamed tail may grow before it is cut back to
// streamTail: cutting copies streamTail bytes, so doing it once per
// streamKeep bytes written keeps the copy a small fraction of the traffic
// (a byte-at-a-time filter writes its whole output through here).
const streamKeep = 16 * streamTail

// cappedBuffer collects guest output up to a limit and never holds more: a
// guest flooding its output costs the host at most the limit.
//
// With a sink it streams instead: each write goes on to the sink at once,
// and buf keeps only the last streamTail bytes or so of it. Streamed output
// is not capped: the limit protects the host's memory, and passing output
// through holds none of it (a command line's stdout may well be gigabytes,
// as `wazero run`'s or `cat`'s is).
type cappedBuffer struct {
	buf      []byte
	limit    int
	overflow bool
	// onOverflow is called once, on the first write past the limit, so the
	// call can be stopped at once instead of letting the guest spin on errors.
	onOverflow func()

	sink io.Writer
}

// Write implements io.Writer for WASI stdout/stderr.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	var n int
	var err error
	if b.sink != nil {
		n, err = b.stream(p)
	} else if b.append(p) {
		n = len(p)
	} else {
		err = ErrOutputLimit
	}
	if b.overflow {
		// Past the limit the task has failed: unwind the guest from its
		// write (a WASI call) rather than let it spin on errors until its
		// next yield, or for ever with Config.NoInterrupt.
		panic(errStopped)
	}
	return n, err
}

// append adds p in full, or nothing, and reports whether it fit.
func (b *cappedBuffer) append(p []byte) bool {
	if b.overflow || len(p) > b.limit-len(b.buf) {
		b.exceeded()
		return false
	}
	b.buf = append(b.buf, p...)
	return true
}

// stream passes p on to the sink and keeps its tail.
func (b *cappedBuffer) stream(p []byte) (int, error) {
	n, err := b.sink.Write(p)
	if n > streamTail {
		b.buf = append(b.buf[:0], p[n-streamTail:n]...)
	} else {
		b.buf = append(b.buf, p[:n]...)
	}
	if len(b.buf) > streamKeep {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-streamTail:]...)
	}
	return n, err
}

func (b *cappedBuffer) exceeded() {
	if !b.overflow {
		b.overflow = true
		if b.onOverflow != nil {
			b.onOverflow()
		}
	}
}

// take returns the collected bytes and forgets them, so the next task on a
// reused instance starts empty while the result keeps its own slice. A
// streamed buffer returns nothing: its bytes went to the sink.
func (b *cappedBuffer) take() []byte {
	out := b.buf
	if b.sink != nil {
		out = nil
	}
	b.buf = nil
	b.overflow = false
	return out
}
