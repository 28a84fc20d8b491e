package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the state that stops one instance's calls: its timeout,
// its caller's context, an Interrupt, a host-side fault. One is allocated per
// instance and reset between calls.
//
// Why per instance: a warm instance may run millions of short calls, and
// building each call's context from the standard library (a timeout, a
// cancel for host-side aborts, a value for the ABI's call state) cost three
// allocations, a timer, a channel and a registration in the parent's child
// map per call: more than the call itself. Here the timer is re-armed, the
// Done channel is reused until it is closed, and the caller's context is
// watched only when it can end at all (context.Background cannot).
//
// What stops running guest code is not this context: instrumented code
// yields to the host at least every tick (see interrupt.go), and the yield
// reads halted and the deadline. The context (callCtx, one per call) is for
// host functions: it is done when the call is stopped, so that a host
// function blocked on I/O, a sleep or a read of stdin returns.
type callContext struct {
	st       *callState
	onTimer  func() // method values, bound once: binding allocates
	onParent func()

	// done is read without the lock by host functions of the current call.
	// It is replaced only between calls, after a stop or a host function
	// that watched it closed it.
	done atomic.Pointer[chan struct{}]
	// halted is set with err: the yield and the call path's common case,
	// a call that was never stopped, are then answered without the lock.
	halted atomic.Bool
	// gen numbers the calls: a callCtx of an earlier call answers as a
	// context that has ended (see callCtx).
	gen atomic.Uint64

	mu        sync.Mutex
	parent    context.Context
	closed    bool  // done is closed: a new one is needed for the next call
	doneTaken bool  // a host function asked for Done during this call
	err       error // context.Canceled or context.DeadlineExceeded once stopped
	cause     error // why it stopped: a timeout, the parent's cause, an interrupt, a host-side fault
	timeout   time.Duration
	deadline  time.Time // of this call's own timeout; zero if none
	active    bool      // a call is in progress
	// broken records an Interrupt: the instance must not run again.
	// interrupted mirrors broken != nil for isBroken, which every warm
	// call's worker asks, without the lock.
	broken      error
	interrupted atomic.Bool

	// stopAt is the earlier of the call's own deadline and its parent's,
	// which the yield checks itself: a timer needs a P to fire, and when
	// every P runs a guest the yield is where a P is given up. Written by
	// begin and read by the yield, both on the goroutine running the call.
	stopAt    time.Time
	stopAtOwn bool // stopAt is the call's own deadline, not its parent's

	// timer stays armed across calls: see arm. armedAt is when it fires,
	// zero while it is not pending.
	timer   *time.Timer
	armedAt time.Time
	// parentCh is the call's parent's Done (nil if it cannot end), which
	// the yield polls: a cancel of the caller's context stops the guest at
	// its next yield, as any stop from another goroutine does. Only a host
	// function that asks for the call's Done (one that blocks, and must
	// wake when the call must stop) has stopParent watch the parent for
	// it: registering a callback on the parent in every call costs two
	// allocations and the parent's lock, more than a short call itself.
	// Written by begin and end under mu, on the goroutine running the call
	// (which the yield runs on too); read under mu by Done.
	parentCh   <-chan struct{}
	stopParent func() bool

	ticks     ticker // the yields' pacing (interrupt.go)
	startTick int32  // the tick the current call starts with
}

func newCallContext(st *callState) *callContext {
	c := &callContext{st: st, parent: context.Background()}
	ch := make(chan struct{})
	c.done.Store(&ch)
	c.onTimer = c.timerFired
	c.onParent = c.parentDone
	c.ticks.reset()
	return c
}

// begin readies the context for one call under parent, with its own
// deadline if deadline is not zero (timeout is what it was counted from, for
// messages), and returns the call's context. ok is false, with the context
// already stopped, if the call must not start: the instance was interrupted
// or parent has ended.
func (c *callContext) begin(parent context.Context, deadline time.Time, timeout time.Duration, now time.Time) (ctx *callCtx, ok bool) {
	gen := c.gen.Add(1)
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
	c.doneTaken = false
	c.timeout = timeout
	c.deadline = deadline
	c.stopAt, c.stopAtOwn = deadline, !deadline.IsZero()
	if pd, ok := parent.Deadline(); ok && (c.stopAt.IsZero() || pd.Before(c.stopAt)) {
		c.stopAt, c.stopAtOwn = pd, false
	}
	if !deadline.IsZero() {
		c.arm(deadline.Sub(now))
	}
	c.parentCh = parent.Done()
	ctx = &callCtx{c: c, gen: gen, parent: parent, deadline: c.stopAt}
	if c.broken != nil {
		c.stopLocked(context.Canceled, c.broken)
		c.mu.Unlock()
		return ctx, false
	}
	c.mu.Unlock()
	c.startTick = c.ticks.begin(now, c.stopAt)
	if c.parentEnded() {
		return ctx, false
	}
	return ctx, true
}

// parentEnded stops the call if its parent context has ended, and reports
// whether it has. Called on the goroutine running the call.
func (c *callContext) parentEnded() bool {
	if c.parentCh == nil {
		return false
	}
	select {
	case <-c.parentCh:
		c.parentDone()
		return true
	default:
		return false
	}
}

// arm makes sure the timer fires by the current call's deadline, under mu.
// Re-arming and stopping a runtime timer on every call costs more than a
// short call itself, and calls are normally far shorter than their timeout:
// so the timer is left armed between calls and only moved earlier. Firing
// before the current call's deadline, it arms itself again for the rest
// (timerFired).
func (c *callContext) arm(in time.Duration) {
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(in, c.onTimer)
	case c.armedAt.IsZero() || c.deadline.Before(c.armedAt):
		c.timer.Reset(in)
	default:
		return // already due to fire no later than this deadline
	}
	c.armedAt = c.deadline
}

// expire stops the call if it is past its deadline (or its parent's),
// before the timer could act: a timeout means "no result after this long",
// so a task that overran it has timed out however its race with the timer
// went. It reports whether the call is stopped.
func (c *callContext) expire(now time.Time) bool {
	// stopAt is written by begin, on the goroutine that calls expire: no
	// lock is needed to see that there is none.
	if c.stopAt.IsZero() || now.Before(c.stopAt) {
		return c.halted.Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active {
		if c.stopAtOwn {
			c.stopLocked(context.DeadlineExceeded, &timeoutCause{d: c.timeout})
		} else {
			c.stopLocked(context.DeadlineExceeded, context.Cause(c.parent))
		}
	}
	return true
}

// end detaches the context from the call that just returned. Stop and
// AfterFunc's stop may lose the race with a firing callback; the callbacks
// check that the call they were armed for is still the one in progress.
func (c *callContext) end() {
	c.mu.Lock()
	stop := c.stopParent
	c.stopParent, c.parentCh = nil, nil
	c.active = false
	c.parent = context.Background()
	if c.doneTaken && !c.closed {
		// A host function of this call may still wait on the channel (in a
		// goroutine of its own): it must see the call end, and the next
		// call must not share it.
		close(*c.done.Load())
		c.closed = true
	}
	c.mu.Unlock()
	if stop != nil {
		stop() // a callback that fires anyway finds the call over
	}
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
		c.interrupted.Store(true)
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
	if !c.closed {
		close(*c.done.Load())
		c.closed = true
	}
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

func (c *callContext) isBroken() bool { return c.interrupted.Load() }

// callCtx is the context of one call: what wazero hands to host functions.
// It is valid for that call only. A host function that keeps it (in a
// goroutine of its own, say) sees it end when the call ends, and never sees
// a later call's state: not its cancellation, not its values (another
// tenant's, in a pool), not its call state.
type callCtx struct {
	c        *callContext
	gen      uint64
	parent   context.Context // this call's: its values stay readable
	deadline time.Time
}

// current reports whether the call is the one in progress.
func (x *callCtx) current() bool { return x.c.gen.Load() == x.gen }

func (x *callCtx) Deadline() (time.Time, bool) { return x.deadline, !x.deadline.IsZero() }

// closedChan is the Done of a call that has ended.
var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (x *callCtx) Done() <-chan struct{} {
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != x.gen || !c.active {
		return closedChan
	}
	return c.doneLocked()
}

// waitDone is Done for the engine's own host functions that block (the
// guest's sleep), during the call.
func (c *callContext) waitDone() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doneLocked()
}

// doneLocked returns the channel that closes when the current call must
// stop, for a host function to block on: it then also closes when the
// caller's context ends, not only at a yield, which a blocked host
// function never reaches.
func (c *callContext) doneLocked() <-chan struct{} {
	c.doneTaken = true
	if c.parentCh != nil && c.stopParent == nil {
		c.stopParent = context.AfterFunc(c.parent, c.onParent)
	}
	return *c.done.Load()
}

func (x *callCtx) Err() error {
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != x.gen || !c.active {
		if c.gen.Load() == x.gen && c.err != nil {
			return c.err
		}
		return context.Canceled // the call is over
	}
	return c.err
}

// Value answers the ABI's call-state key itself (nil once the call is
// over) and defers everything else to the call's parent, so that host
// functions see the caller's values. It hides the parent's cancellation
// from context.Cause, which would otherwise report the parent's cause (nil,
// say) for a call that this context stopped: Cause then falls back to Err,
// and the two agree.
func (x *callCtx) Value(key any) any {
	switch key.(type) {
	case callStateKey:
		if !x.current() {
			return nil
		}
		return x.c.st
	}
	if key == cancelCtxKey {
		return nil
	}
	return x.parent.Value(key)
}

// cancelCtxKey is the key under which the standard library's contexts
// find their cancellable ancestor (context.Cause asks for it): unexported,
// so learnt from Cause itself.
var cancelCtxKey = func() any {
	p := &keyProbe{Context: context.Background()}
	_ = context.Cause(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

var _ context.Context = (*callCtx)(nil)
