package pool

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// nextJobTarget stands for a warm instance: bound to one job, then, once
// unbound, running the next job.
type nextJobTarget struct {
	movedOn         atomic.Bool
	hitTheNextJob   atomic.Bool
	interruptsTaken atomic.Int32
}

func (t *nextJobTarget) Interrupt(error) {
	t.interruptsTaken.Add(1)
	if t.movedOn.Load() {
		t.hitTheNextJob.Store(true)
	}
}

// issue 13: job.interrupt read its target under the lock, let go of it, and
// then stopped the target: a worker that had meanwhile finished the job and
// started the next on the same warm instance saw that next, innocent, job
// fail as cancelled. Here the interrupt is held at that very point while
// the worker unbinds and moves on: the interrupt must not reach the target
// once unbind has returned.
func TestAnInterruptNeverReachesTheNextJob(t *testing.T) {
	j := &job{}
	target := &nextJobTarget{}
	j.bind(target)
	unbound := make(chan struct{})
	was := testHookInterrupting
	t.Cleanup(func() { testHookInterrupting = was })
	testHookInterrupting = func() {
		go func() {
			j.unbind()
			target.movedOn.Store(true) // the worker runs its next job on it
			close(unbound)
		}()
		// Until unbind has returned (what the race allowed) or waits for
		// the interrupt to finish (what it must do).
		for {
			select {
			case <-unbound:
				return
			default:
			}
			if blockedIn("pool.(*job).unbind") {
				return
			}
			runtime.Gosched()
		}
	}
	j.interrupt(context.Canceled)
	<-unbound
	assert.Equal(t, int32(1), target.interruptsTaken.Load(), "the job was running: its target is stopped")
	assert.False(t, target.hitTheNextJob.Load(), "the interrupt reached the target after it had moved on to the next job")

	// Unbound, the job's later interrupts reach nothing.
	j.interrupt(context.Canceled)
	assert.Equal(t, int32(1), target.interruptsTaken.Load())
}

// blockedIn reports whether a goroutine is blocked on a mutex inside fn.
func blockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, fn) && (strings.Contains(header, "sync.Mutex.Lock") || strings.Contains(header, "semacquire")) {
			return true
		}
	}
	return false
}
