package workerproc

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// stderrLog keeps what a crash message needs of a child's stderr, which it
// reads continuously so that a flood never blocks the child: the last few
// lines, and the first lines of the Go runtime's last words ("fatal error:
// ...", "panic: ..."), which come before a goroutine dump that can run to
// megabytes and would push them out of any tail.
type stderrLog struct {
	mu       sync.Mutex
	partial  []byte   // a line still being written
	last     []string // the last lines, at most keepLines
	headline []string // the runtime's last words, once seen
}

const (
	keepLines    = 5
	maxLineBytes = 300
)

func (l *stderrLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if room := maxLineBytes + 1 - len(l.partial); room > 0 {
				l.partial = append(l.partial, p[:min(room, len(p))]...)
			}
			break
		}
		if room := maxLineBytes + 1 - len(l.partial); room > 0 {
			l.partial = append(l.partial, p[:min(room, i)]...)
		}
		l.line(string(l.partial))
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *stderrLog) line(s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	if len(s) > maxLineBytes {
		s = s[:maxLineBytes] + "…"
	}
	if l.headline == nil && (strings.HasPrefix(s, "fatal error: ") || strings.HasPrefix(s, "panic: ")) {
		// The runtime often says what went wrong on the lines before
		// ("runtime: goroutine stack exceeds 1000000000-byte limit").
		from := len(l.last)
		for from > 0 && len(l.last)-from < 2 && strings.HasPrefix(l.last[from-1], "runtime: ") {
			from--
		}
		l.headline = append(append([]string(nil), l.last[from:]...), s)
	}
	if len(l.last) == keepLines {
		copy(l.last, l.last[1:])
		l.last = l.last[:keepLines-1]
	}
	l.last = append(l.last, s)
}

// lastWords is what the child said last that explains its death: the Go
// runtime's last words if it died of a fatal error or a panic, else its
// last lines.
func (l *stderrLog) lastWords() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.headline
	if lines == nil {
		lines = l.last
		if len(l.partial) > 0 {
			lines = append(append([]string(nil), lines...), strings.TrimSpace(string(l.partial)))
		}
	}
	return strings.Join(lines, "\n")
}

// prefixRecorder keeps the first bytes a child wrote on its stdout: when a
// program that is not a worker is started as one, what it printed says what
// it is.
type prefixRecorder struct {
	mu sync.Mutex
	b  [64]byte
	n  int
}

func (p *prefixRecorder) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.n += copy(p.b[p.n:], b)
	p.mu.Unlock()
	return len(b), nil
}

func (p *prefixRecorder) quote() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return ""
	}
	return fmt.Sprintf(" %q", p.b[:p.n])
}

// framed reports whether the first bytes look like the protocol's: a frame
// length in the first four bytes, which text never starts with.
func (p *prefixRecorder) framed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n >= 1 && p.b[0] == 0
}

// outOfMemory tells a Go runtime that died for want of memory from its last
// words ("fatal error: runtime: out of memory", "runtime: cannot allocate
// memory"; with the race detector, "ThreadSanitizer failed to allocate").
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to allocate"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
