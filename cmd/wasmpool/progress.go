package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress modes (--progress).
const (
	progressAuto   = "auto"
	progressAlways = "always"
	progressNever  = "never"
)

// progress draws one status line on stderr: done/total, failures, rate and
// ETA. It owns stderr while it runs: other lines go through printLine, which
// clears the status line first, so nothing gets garbled. stdout is never
// touched. A nil *progress is valid and draws nothing.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	total  int // -1 while unknown
	done   int
	failed int
	start  time.Time
	shown  bool // a status line is on screen
	// ttyOut: stdout is a terminal too, so writeOut must clear the status
	// line. Found once: writeOut runs for every result.
	ttyOut bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// newProgress returns a running progress line for mode ("auto": only when
// stderr is a terminal), or nil. total is -1 when not known yet; stdout is
// where writeOut will write the results.
func newProgress(mode string, stdout, stderr io.Writer, total int) (*progress, error) {
	switch mode {
	case progressNever:
		return nil, nil
	case progressAuto:
		if !isTerminal(stderr) {
			return nil, nil
		}
	case progressAlways:
	default:
		return nil, usagef("--progress %q: want auto, always or never", mode)
	}
	p := &progress{w: stderr, total: total, start: time.Now(), ttyOut: isTerminal(stdout), stop: make(chan struct{})}
	p.wg.Add(1)
	go p.tick(200 * time.Millisecond)
	return p, nil
}

func (p *progress) tick(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		case <-p.stop:
			return
		}
	}
}

// add counts one finished task.
func (p *progress) add(failed bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done++
	if failed {
		p.failed++
	}
	p.mu.Unlock()
}

// setTotal fixes the total once the input is known to end.
func (p *progress) setTotal(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total = n
	p.mu.Unlock()
}

// printLine writes a whole line to stderr without garbling the status line:
// the line is cleared first, and the next tick draws it again below.
func printLine(p *progress, w io.Writer, line string) {
	if p == nil {
		fmt.Fprintln(w, line)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, line)
}

// writeOut writes results to stdout (w, as given to newProgress). When stdout
// is the same terminal as the status line, the status line is cleared first so
// the two never share a row; otherwise stdout is not touched by progress at all.
func writeOut(p *progress, w io.Writer, b []byte) {
	if p == nil || !p.ttyOut {
		_, _ = w.Write(b)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	_, _ = w.Write(b)
}

// finish stops the ticker and leaves the final status on its own line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
	p.shown = false
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

func (p *progress) draw() {
	p.clear()
	fmt.Fprint(p.w, p.line(time.Since(p.start)))
	p.shown = true
}

// line renders the status for the given elapsed time.
func (p *progress) line(elapsed time.Duration) string {
	var b strings.Builder
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(p.done) / s
	}
	if p.total >= 0 {
		const width = 24
		filled := width
		if p.total > 0 {
			// Clamped: a total fixed late (setTotal) may be passed by done.
			filled = min(width*p.done/p.total, width)
		}
		fmt.Fprintf(&b, "[%s%s] %d/%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.done, p.total)
	} else {
		fmt.Fprintf(&b, "%d done", p.done)
	}
	if p.failed > 0 {
		fmt.Fprintf(&b, "  %d failed", p.failed)
	}
	fmt.Fprintf(&b, "  %.1f/s", rate)
	if p.total > p.done && rate > 0 {
		eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	return b.String()
}
