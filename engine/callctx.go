package engine

import (
	"context"
	"sync"
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

	mu       sync.Mutex
	parent   context.Context
	done     chan struct{}
	closed   bool  // done is closed: a new one is needed for the next call
	err      error // context.Canceled or context.DeadlineExceeded once stopped
	cause    error // why it stopped: a timeout, the parent's cause, an interrupt, a host-side fault
	timeout  time.Duration
	deadline time.Time // of this call's own timeout; zero if none
	active   bool      // a call is in progress
	// broken records an Interrupt: the instance must not run again.
	broken error

	timer      *time.Timer
	stopParent func() bool
}

func newCallContext(st *callState) *callContext {
	c := &callContext{st: st, parent: context.Background(), done: make(chan struct{})}
	c.onTimer = c.timerFired
	c.onParent = c.parentDone
	return c
}

// begin readies the context for one call under parent, with its own timeout
// if timeout > 0. It returns false, with the context already stopped, if the
// call must not start: the instance was interrupted or parent has ended.
func (c *callContext) begin(parent context.Context, timeout time.Duration) bool {
	c.mu.Lock()
	if c.closed {
		c.done = make(chan struct{})
		c.closed = false
	}
	c.parent = parent
	c.err, c.cause = nil, nil
	c.active = true
	c.timeout = timeout
	c.deadline = time.Time{}
	if timeout > 0 {
		c.deadline = time.Now().Add(timeout)
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
	if timeout > 0 {
		if c.timer == nil {
			c.timer = time.AfterFunc(timeout, c.onTimer)
		} else {
			c.timer.Reset(timeout)
		}
	}
	return true
}

// expire stops the call if it returned past its deadline, before its timer
// could act: a timeout means "no result after this long", so a task that
// overran it has timed out however its race with the timer went.
func (c *callContext) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active && !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.stopLocked(context.DeadlineExceeded, &timeoutCause{d: c.timeout})
	}
}

// end detaches the context from the call that just returned. Stop and
// AfterFunc's stop may lose the race with a firing callback; the callbacks
// check that the call they were armed for is still the one in progress.
func (c *callContext) end() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stopParent != nil {
		c.stopParent()
		c.stopParent = nil
	}
	c.mu.Lock()
	c.active = false
	c.parent = context.Background()
	c.mu.Unlock()
}

// timerFired stops the call when its timeout has passed. A late firing armed
// for an earlier call finds a later deadline (or none) and does nothing: the
// re-armed timer fires again when the current call's time is up.
func (c *callContext) timerFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active && !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.stopLocked(context.DeadlineExceeded, &timeoutCause{d: c.timeout})
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
	close(c.done)
	c.closed = true
}

// stopped returns why the current call was stopped, or nils.
func (c *callContext) stopped() (err, cause error) {
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

func (c *callContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

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
