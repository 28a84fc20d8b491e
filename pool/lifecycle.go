package pool

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
)

// lifecycle counts live workers, so that Shutdown and Close can wait for them
// all to stop, and with them for every future callback a worker runs.
//
// The one subtlety: callbacks run on the worker that resolved the future, and
// a callback may call Shutdown or Close. Waiting for that worker would then
// wait for the callback that is waiting: a deadlock. So a Shutdown or Close
// called from one of the pool's workers marks that worker as stopping, and
// the wait skips stopping workers. Two callbacks on two workers that both call
// Shutdown each skip the other, and both return.
type lifecycle struct {
	mu       sync.Mutex
	live     int // workers not yet exited
	stopping int // live workers blocked in Shutdown or Close, from a callback
	changed  chan struct{}
}

func (l *lifecycle) update(f func()) {
	l.mu.Lock()
	f()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// enterStop marks the calling worker, if the caller is one of p's workers, as
// blocked in Shutdown or Close, and returns what unmarks it.
func (l *lifecycle) enterStop(p *Pool) func() {
	id := goid()
	for _, w := range p.workers {
		if id != 0 && w.gid.Load() == id {
			l.update(func() { l.stopping++ })
			return func() { l.update(func() { l.stopping-- }) }
		}
	}
	return func() {}
}

// wait returns once every worker has exited or is blocked in a stop of its
// own, or ctx.Err() if ctx ends first.
func (l *lifecycle) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		busy := l.live - l.stopping
		ch := l.changed
		l.mu.Unlock()
		if busy <= 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// goid returns the calling goroutine's id. Go keeps it hidden on purpose; it
// is read here for one question only, never on a task's path: is Shutdown
// being called from one of the pool's own workers? The first line of a
// goroutine's stack has read "goroutine N [status]:" since Go 1.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		if id, err := strconv.ParseUint(string(b[:i]), 10, 64); err == nil {
			return id
		}
	}
	return 0 // never a worker's: enterStop then waits for every worker
}
