package engine

// cappedBuffer collects guest output up to a limit and never holds more: a
// guest flooding its output costs the host at most the limit.
type cappedBuffer struct {
	buf      []byte
	limit    int
	overflow bool
	// onOverflow is called once, on the first write past the limit, so the
	// call can be stopped at once instead of letting the guest spin on errors.
	onOverflow func()
}

// Write implements io.Writer for WASI stdout/stderr.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	if !b.append(p) {
		return 0, ErrOutputLimit
	}
	return len(p), nil
}

// append adds p in full, or nothing, and reports whether it fit.
func (b *cappedBuffer) append(p []byte) bool {
	if b.overflow || len(p) > b.limit-len(b.buf) {
		if !b.overflow {
			b.overflow = true
			if b.onOverflow != nil {
				b.onOverflow()
			}
		}
		return false
	}
	b.buf = append(b.buf, p...)
	return true
}

// take returns the collected bytes and forgets them, so the next task on a
// reused instance starts empty while the result keeps its own slice.
func (b *cappedBuffer) take() []byte {
	out := b.buf
	b.buf = nil
	b.overflow = false
	return out
}
