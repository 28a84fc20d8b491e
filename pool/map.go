package pool

import (
	"context"
	"iter"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// Map runs every task of tasks on the pool and yields the results in input
// order. It reads tasks lazily, submitting at most Window tasks ahead of the
// result being waited for, so an endless input runs in constant memory. A
// failed task yields its error in its place, as the *future.Failure its
// future holds, and the rest go on. Breaking out of the loop cancels the
// tasks still in flight; if ctx ends first, Map yields one last
// (Result{}, ctx.Err()), the bare context error, and stops.
func (p *Pool) Map(ctx context.Context, tasks iter.Seq[engine.Task]) iter.Seq2[engine.Result, error] {
	return MapWindow(ctx, p.Submit, p.Window(), tasks)
}

// Window is how many tasks Map keeps submitted ahead: 2 × Workers in
// process; under Subprocess isolation, two full batches per worker
// (2 × Workers × 64), so that tiny tasks cross to the worker processes
// many to a round trip.
func (p *Pool) Window() int {
	if p.cfg.Isolation == Subprocess {
		return 2 * p.cfg.Workers * workerproc.MaxBatch
	}
	return 2 * p.cfg.Workers
}

// MapWindow is Map for any Executor: it submits tasks through submit,
// keeping at most window of them (at least 1) submitted ahead of the result
// being waited for, and yields the results in input order, with the same
// rules as Pool.Map for failures, breaking out and ctx ending.
func MapWindow(ctx context.Context, submit SubmitFunc, window int, tasks iter.Seq[engine.Task]) iter.Seq2[engine.Result, error] {
	window = max(window, 1)
	return func(yield func(engine.Result, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		// Cancelling on the way out is what stops in-flight tasks when the
		// caller breaks out of the loop: they were all submitted under ctx.
		defer cancel()
		next, stop := iter.Pull(tasks)
		defer stop()

		inflight := make([]*future.Future[engine.Result], 0, window)
		exhausted := false
		for {
			for !exhausted && len(inflight) < window {
				t, ok := next()
				if !ok {
					exhausted = true
					break
				}
				inflight = append(inflight, submit(ctx, t))
			}
			if len(inflight) == 0 {
				return
			}
			f := inflight[0]
			copy(inflight, inflight[1:])
			inflight[len(inflight)-1] = nil
			inflight = inflight[:len(inflight)-1]

			res, err := f.Result(ctx)
			if ctx.Err() != nil {
				yield(engine.Result{}, ctx.Err())
				return
			}
			// A task's error stays the *future.Failure Submit's future gave:
			// future.IsFailure tells it from Map's own ctx.Err() above,
			// which reads the same when a task timed out on its own.
			if !yield(res, err) {
				return
			}
		}
	}
}
