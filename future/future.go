package future

import (
	"context"
	"sync"
)

// Future is the read side of a result that will exist later: wait for it,
// look at its state, cancel it, or ask to be called when it is done. It is
// safe for concurrent use. Create one with New.
type Future[T any] struct {
	mu    sync.Mutex
	state State
	val   T
	err   error // a *Failure, or nil on success
	// first is the first OnDone callback, kept inline: most futures have
	// exactly one (the pool's own), and a slice would cost an allocation.
	first     func(*Future[T])
	callbacks []func(*Future[T])
	// waiters are the channels of Wait and AsCompleted calls blocked on this
	// future. Unlike callbacks they are removed when their call returns, so
	// repeated waits with short timeouts do not pile up on a long-lived future.
	waiters map[chan<- *Future[T]]struct{}
	// done is made on first need (Done, or a Result that must block): many
	// futures are read only once finished and never need one.
	done chan struct{}
	// settling is set while the first outcome is being recorded, its
	// promise's BeforeDone hook running: every other outcome loses, and
	// nothing of the winner shows yet.
	settling   bool
	settlingTo State
	before     func(State, error)
}

// Promise is the write side: whoever does the work marks it running and
// resolves it. Only the first outcome counts.
type Promise[T any] struct{ f *Future[T] }

// pair lets New allocate a future and its promise together.
type pair[T any] struct {
	f Future[T]
	p Promise[T]
}

// New returns a pending future and the promise that completes it.
func New[T any]() (*Future[T], *Promise[T]) {
	pr := &pair[T]{}
	pr.p.f = &pr.f
	return &pr.f, &pr.p
}

// closedChan is the Done channel of a future that was done before anyone
// asked for one.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Future returns the future this promise completes.
func (p *Promise[T]) Future() *Future[T] { return p.f }

// Start marks a pending future Running and returns true. It returns false if
// the future was cancelled (or already started or done): the work must then
// not begin. It is Python's set_running_or_notify_cancel.
func (p *Promise[T]) Start() bool {
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != Pending {
		return false
	}
	f.state = Running
	return true
}

// Resolve completes the future with a value and an error: Succeeded when err
// is nil (a typed nil pointer counts as nil), Failed otherwise. The value is
// kept in both cases, so a failed task can still report what it produced. It
// returns false, changing nothing, if the future was already done: the first
// outcome wins.
func (p *Promise[T]) Resolve(v T, err error) bool {
	if isNil(err) {
		return p.f.settle(Succeeded, v, nil)
	}
	return p.f.settle(Failed, v, &Failure{Err: err})
}

// BeforeDone arranges for fn to be called once, with the outcome, as the
// future settles and before the outcome shows to anyone: State, Result,
// Err, Done, Wait and AsCompleted all see the future still undone until fn
// has returned. It is for the producer's own bookkeeping (a pool's
// counters) that whoever gets the result must then see. fn runs on the
// goroutine that settles the future; it must be quick and must not use the
// future. A second call replaces the first fn; call it before the future can
// settle.
func (p *Promise[T]) BeforeDone(fn func(s State, err error)) {
	f := p.f
	f.mu.Lock()
	f.before = fn
	f.mu.Unlock()
}

// settle records the outcome, runs the callbacks, then wakes the waiters.
// Callbacks run before Done is closed so that whoever waits on Done (Wait,
// AsCompleted) also sees every effect of its callbacks; a callback that asks
// its own future for the result gets it at once, because Result looks at
// the recorded outcome before waiting (and so may a Result called at that
// moment elsewhere: what a waiter must see goes in BeforeDone).
func (f *Future[T]) settle(s State, v T, err error) bool {
	f.mu.Lock()
	if f.state.Final() || f.settling {
		f.mu.Unlock()
		return false
	}
	if before := f.before; before != nil {
		f.before = nil
		f.settling, f.settlingTo = true, s
		f.mu.Unlock()
		var cause error
		if err != nil {
			cause = err.(*Failure).Err
		}
		f.callBefore(before, s, cause)
		f.mu.Lock()
		f.settling = false
	}
	f.state, f.val, f.err = s, v, err
	if first, callbacks := f.first, f.callbacks; first != nil || callbacks != nil {
		f.first, f.callbacks = nil, nil
		f.mu.Unlock()
		if first != nil {
			f.call(first)
		}
		for _, fn := range callbacks {
			f.call(fn)
		}
		f.mu.Lock()
	}
	// Without callbacks (a pool's futures until a user adds one), the
	// outcome and the wake-up are one critical section.
	for ch := range f.waiters {
		ch <- f // buffered for every future of its call: never blocks
	}
	f.waiters = nil
	if f.done == nil {
		f.done = closedChan
	} else {
		close(f.done)
	}
	f.mu.Unlock()
	return true
}

// Result waits for the outcome and returns it. A task's error comes as a
// *Failure (which unwraps to it); if ctx ends first, Result returns the bare
// ctx.Err() and leaves the work alone, like Python's result(timeout).
//
// Result returns as soon as the outcome is recorded: the promise's
// BeforeDone hook has run (a pool's statistics then count the task), but
// OnDone callbacks may still be running on the goroutine that completed the
// future, so that a callback can ask its own future for the result. Done,
// and with it Wait and AsCompleted, wait for the callbacks too.
func (f *Future[T]) Result(ctx context.Context) (T, error) {
	if v, err, ok := f.outcome(); ok {
		return v, err
	}
	if ctx.Done() == nil {
		// A context that cannot end (Background, say): a plain receive
		// costs less than a select.
		<-f.Done()
		return f.settled()
	}
	select {
	case <-f.Done():
	case <-ctx.Done():
		// An outcome that arrived at the same moment still wins.
		if v, err, ok := f.outcome(); ok {
			return v, err
		}
		var zero T
		return zero, ctx.Err()
	}
	return f.settled()
}

// settled returns the outcome of a future whose Done channel has closed:
// the outcome was written before the close and never changes after it, so
// the close orders the read and no lock is needed.
func (f *Future[T]) settled() (T, error) { return f.val, f.err }

// Err waits like Result and returns only the error: nil on success, the
// task's *Failure, or ctx.Err() if ctx ends first (Python's exception()).
func (f *Future[T]) Err(ctx context.Context) error {
	_, err := f.Result(ctx)
	return err
}

func (f *Future[T]) outcome() (T, error, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.state.Final() {
		var zero T
		return zero, nil, false
	}
	return f.val, f.err, true
}

// Done returns a channel that is closed once the future is done and its
// callbacks have run.
func (f *Future[T]) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		// settle sets done (to closedChan if it was never asked for) once the
		// callbacks have run, so nil here means not done yet.
		f.done = make(chan struct{})
	}
	return f.done
}

// State returns the future's current state.
func (f *Future[T]) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// Cancel ends a pending or running future as Cancelled and returns true; the
// producer learns of it through its OnDone callback and stops the work.
// Cancelling a cancelled future again is still true; a future that finished
// otherwise returns false. The future's error is then ErrCancelled.
func (f *Future[T]) Cancel() bool {
	var zero T
	if f.settle(Cancelled, zero, &Failure{Err: ErrCancelled}) {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state == Cancelled || (f.settling && f.settlingTo == Cancelled)
}

// OnDone arranges for fn to be called once with the future when it is done:
// callbacks run in the order they were added, on the goroutine that completes
// the future, or at once on the caller's if it is already done. A panic in fn
// is recovered and reported (see SetPanicHandler); it never reaches the
// goroutine that completed the future nor stops the other callbacks.
func (f *Future[T]) OnDone(fn func(*Future[T])) {
	f.mu.Lock()
	if !f.state.Final() {
		if f.first == nil && f.callbacks == nil {
			f.first = fn
		} else {
			f.callbacks = append(f.callbacks, fn)
		}
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.call(fn)
}

func (f *Future[T]) callBefore(fn func(State, error), s State, err error) {
	defer func() {
		if r := recover(); r != nil {
			reportPanic(r)
		}
	}()
	fn(s, err)
}

func (f *Future[T]) call(fn func(*Future[T])) {
	defer func() {
		if r := recover(); r != nil {
			reportPanic(r)
		}
	}()
	fn(f)
}

// addWaiter registers ch to receive f when it is done and returns true, or
// returns false if f is done already.
func (f *Future[T]) addWaiter(ch chan<- *Future[T]) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Final() {
		return false
	}
	if f.waiters == nil {
		f.waiters = make(map[chan<- *Future[T]]struct{})
	}
	f.waiters[ch] = struct{}{}
	return true
}

func (f *Future[T]) removeWaiter(ch chan<- *Future[T]) {
	f.mu.Lock()
	delete(f.waiters, ch)
	f.mu.Unlock()
}
