package future

import (
	"context"
	"iter"
)

// AsCompleted yields each distinct future of fs once, as it completes: those
// already done first, then the rest in the order they finish (cancelled ones
// included). If ctx ends first it yields a last (nil, ctx.Err()) and stops.
// The error is nil for every future yielded; read each one's outcome with
// Result. It keeps no reference to a future once yielded, so iterating over
// many short-lived futures does not hold them all in memory.
func AsCompleted[T any](ctx context.Context, fs ...*Future[T]) iter.Seq2[*Future[T], error] {
	return func(yield func(*Future[T], error) bool) {
		w, ready := watch(distinct(fs))
		defer w.stop()
		for i, f := range ready {
			ready[i] = nil
			if !yield(f, nil) {
				return
			}
		}
		for len(w.pending) > 0 {
			select {
			case f := <-w.ch:
				delete(w.pending, f)
				if !yield(f, nil) {
					return
				}
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
		}
	}
}

// WaitMode says when Wait returns.
type WaitMode int

const (
	// AllCompleted: when every future is done.
	AllCompleted WaitMode = iota
	// FirstCompleted: when any future is done.
	FirstCompleted
	// FirstError: when any future fails, or when every future is done. A
	// cancelled future is not a failure here.
	FirstError
)

func (m WaitMode) String() string {
	switch m {
	case AllCompleted:
		return "all completed"
	case FirstCompleted:
		return "first completed"
	case FirstError:
		return "first error"
	}
	return "unknown wait mode"
}

// Wait blocks until the condition of mode holds for fs, then returns the
// distinct futures split into done and pending, each in input order. If ctx
// ends first, it returns the split at that moment and ctx.Err().
func Wait[T any](ctx context.Context, mode WaitMode, fs ...*Future[T]) (done, pending []*Future[T], err error) {
	all := distinct(fs)
	w, ready := watch(all)
	defer w.stop()
	satisfied := func(f *Future[T]) bool {
		switch mode {
		case FirstCompleted:
			return true
		case FirstError:
			return f.State() == Failed
		}
		return false
	}
	met := false
	for _, f := range ready {
		met = met || satisfied(f)
	}
	for !met && len(w.pending) > 0 {
		select {
		case f := <-w.ch:
			delete(w.pending, f)
			met = satisfied(f)
		case <-ctx.Done():
			err = ctx.Err()
			met = true
		}
	}
	for _, f := range all {
		if f.State().Final() {
			done = append(done, f)
		} else {
			pending = append(pending, f)
		}
	}
	return done, pending, err
}

// watcher is one Wait or AsCompleted call's registration on the futures it
// still waits for. It forgets each future as it arrives.
type watcher[T any] struct {
	ch      chan *Future[T]
	pending map[*Future[T]]struct{}
}

// distinct returns fs without nils and duplicates, in input order.
func distinct[T any](fs []*Future[T]) []*Future[T] {
	seen := make(map[*Future[T]]struct{}, len(fs))
	out := make([]*Future[T], 0, len(fs))
	for _, f := range fs {
		if _, dup := seen[f]; f == nil || dup {
			continue
		}
		seen[f] = struct{}{}
		out = append(out, f)
	}
	return out
}

// watch registers on every pending future of fs and returns the ones already
// done, in input order.
func watch[T any](fs []*Future[T]) (*watcher[T], []*Future[T]) {
	w := &watcher[T]{ch: make(chan *Future[T], len(fs)), pending: make(map[*Future[T]]struct{})}
	var ready []*Future[T]
	for _, f := range fs {
		if f.addWaiter(w.ch) {
			w.pending[f] = struct{}{}
		} else {
			ready = append(ready, f)
		}
	}
	return w, ready
}

func (w *watcher[T]) stop() {
	for f := range w.pending {
		f.removeWaiter(w.ch)
	}
}
