package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the context every guest call of one instance runs under.
//
// It exists for speed. A warm instance may run millions of short calls, and
// building each call's context from the standard library (a timeout, a
// cancel for host-side aborts, a value for the ABI's call state) cost three
// allocations, a timer, a channel and a registration in the parent's child
// map per call: more than the call itself. One callContext is allocated per
// instance instead and reset between calls: its Done channel is reused until
// it is closed, its timer is re-armed, and it links to the caller's context
// only when that one can end at all (context.Background cannot).
//
// It must still behave as a real context for wazero, which watches Done to
// stop running guest code (close-on-context-done) and reads Err to tell a
// deadline from a cancel, and for embedders' host functions, which receive
// it and may wait on Done or read the caller's values through Value.
type callContext struct {
	st       *callState
	onTimer  func() // method values, bound once: binding allocates
	onParent func()

	// done is read without the lock: wazero's watcher goroutine asks for it
	// on another core while the call path holds mu, once per call. It is
	// replaced only between calls, after a stop closed it.
	done atomic.Pointer[chan struct{}]
	// halted is set with err: the call path's common case, a call that was
	// never stopped, is then answered without the lock.
	halted atomic.Bool

	mu       sync.Mutex
	parent   context.Context
	closed   bool  // done is closed: a new one is needed for the next call
	err      error // context.Canceled or context.DeadlineExceeded once stopped
	cause    error // why it stopped: a timeout, the parent's cause, an interrupt, a host-side fault
	timeout  time.Duration
	deadline time.Time // of this call's own timeout; zero if none
	active   bool      // a call is in progress
	// broken records an Interrupt: the instance must not run again.
	broken error

	// timer stays armed across calls: see arm. armedAt is when it fires,
	// zero while it is not pending.
	timer      *time.Timer
	armedAt    time.Time
	stopParent func() bool
}

func newCallContext(st *callState) *callContext {
	c := &callContext{st: st, parent: context.Background()}
	ch := make(chan struct{})
	c.done.Store(&ch)
	c.onTimer = c.timerFired
	c.onParent = c.parentDone
	return c
}

// begin readies the context for one call under parent, with its own timeout
// if timeout > 0, counted from now (the caller's clock reading, which it
// also uses to time the call: time.Now is not free on a hot path). It
// returns false, with the context already stopped, if the call must not
// start: the instance was interrupted or parent has ended.
func (c *callContext) begin(parent context.Context, timeout time.Duration, now time.Time) bool {
	c.mu.Lock()
	if c.closed {
		ch := make(chan struct{})
		c.done.Store(&ch)
		c.closed = false
	}
	c.parent = parent
	c.err, c.cause = nil, nil
	c.halted.Store(false)
	c.active = true
	c.timeout = timeout
	c.deadline = time.Time{}
	if timeout > 0 {
		c.deadline = now.Add(timeout)
		c.arm(timeout)
	}
	if c.broken != nil {
		c.stopLocked(context.Canceled, c.broken)
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()

	if parent.Done() != nil {
		if parent.Err() != nil {
			c.parentDone()
			return false
		}
		c.stopParent = context.AfterFunc(parent, c.onParent)
	}
	return true
}

// arm makes sure the timer fires by the current call's deadline, under mu.
// Re-arming and stopping a runtime timer on every call costs more than a
// short call itself, and calls are normally far shorter than their timeout:
// so the timer is left armed between calls and only moved earlier. Firing
// before the current call's deadline, it arms itself again for the rest
// (timerFired).
func (c *callContext) arm(timeout time.Duration) {
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(timeout, c.onTimer)
	case c.armedAt.IsZero() || c.deadline.Before(c.armedAt):
		c.timer.Reset(timeout)
	default:
		return // already due to fire no later than this deadline
	}
	c.armedAt = c.deadline
}

// expire stops the call if it returned past its deadline, before its timer
// could act: a timeout means "no result after this long", so a task that
// overran it has timed out however its race with the timer went.
func (c *callContext) expire(now time.Time) {
	// The deadline is written by begin, on the goroutine that calls expire:
	// no lock is needed to see that there is none.
	if c.deadline.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active && !c.deadline.IsZero() && !now.Before(c.deadline) {
		c.stopLocked(context.DeadlineExceeded, &timeoutCause{d: c.timeout})
	}
}

// end detaches the context from the call that just returned. Stop and
// AfterFunc's stop may lose the race with a firing callback; the callbacks
// check that the call they were armed for is still the one in progress.
func (c *callContext) end() {
	if c.stopParent != nil {
		c.stopParent()
		c.stopParent = nil
	}
	c.mu.Lock()
	c.active = false
	c.parent = context.Background()
	c.mu.Unlock()
}

// timerFired stops the call when its timeout has passed. Fired for an
// earlier call's deadline (the timer is left armed between calls), it arms
// itself again for the current call's; between calls it does nothing.
func (c *callContext) timerFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armedAt = time.Time{}
	if !c.active || c.deadline.IsZero() {
		return // between calls, or a call without a timeout: nothing to do
	}
	if left := time.Until(c.deadline); left > 0 {
		// Armed for an earlier call's deadline: wait for this one's.
		c.timer.Reset(left)
		c.armedAt = c.deadline
		return
	}
	c.stopLocked(context.DeadlineExceeded, &timeoutCause{d: c.timeout})
}

// release stops the timer, so that a closed instance is not kept alive
// until it fires.
func (c *callContext) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.armedAt = time.Time{}
	}
}

// parentDone stops the call because the caller's context ended. A late
// callback for an earlier call's parent acts only if the current parent has
// ended too.
func (c *callContext) parentDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return
	}
	if err := c.parent.Err(); err != nil {
		c.stopLocked(err, context.Cause(c.parent))
	}
}

// abort stops the call for a host-side reason (ABI misuse, output limit).
func (c *callContext) abort(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active {
		c.stopLocked(context.Canceled, cause)
	}
}

// interrupt stops the call in progress, if any, and breaks the instance so
// that no later call starts.
func (c *callContext) interrupt(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = cause
	}
	if c.active {
		c.stopLocked(context.Canceled, cause)
	}
}

func (c *callContext) stopLocked(err, cause error) {
	if c.err != nil {
		return // the first reason wins
	}
	if cause == nil {
		cause = err
	}
	c.err, c.cause = err, cause
	c.halted.Store(true)
	close(*c.done.Load())
	c.closed = true
}

// stopped returns why the current call was stopped, or nils.
func (c *callContext) stopped() (err, cause error) {
	if !c.halted.Load() {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err, c.cause
}

func (c *callContext) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken != nil
}

// Deadline is the earlier of the call's own deadline and its parent's.
func (c *callContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	own, parent := c.deadline, c.parent
	c.mu.Unlock()
	d, ok := parent.Deadline()
	if !own.IsZero() && (!ok || own.Before(d)) {
		return own, true
	}
	return d, ok
}

func (c *callContext) Done() <-chan struct{} { return *c.done.Load() }

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value answers the ABI's call-state key itself and defers everything else to
// the caller's context, so host functions see the caller's values.
func (c *callContext) Value(key any) any {
	if _, ok := key.(callStateKey); ok {
		return c.st
	}
	c.mu.Lock()
	parent := c.parent
	c.mu.Unlock()
	return parent.Value(key)
}

var _ context.Context = (*callContext)(nil)
