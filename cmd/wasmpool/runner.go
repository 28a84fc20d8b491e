package main

import (
	"context"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// item is one task of a map or a batch on its way through the pool.
type item struct {
	index int    // position in the input, from 0 (set by the runner)
	label string // how messages name it: an input file, "line 3"
	task  engine.Task
	err   error // set when the item failed before it could run (bad line, unreadable input)
	meta  any   // whatever the caller needs to print the outcome
	// require are labels the task's worker must have (a batch line's
	// "require"), nil for none.
	require map[string]string
	// key names it in a cluster job (--job): a batch line's "key", or ""
	// for its position.
	key string
}

// outcome is an item's end.
type outcome struct {
	item *item
	res  engine.Result
	err  error
}

type runOptions struct {
	window    int  // most items submitted but not yet emitted
	unordered bool // emit in completion order instead of input order
	failFast  bool // stop at the first failure, cancelling the rest
	// submitted, if set, is told of each task as it is submitted.
	submitted func(*future.Future[engine.Result])
	// notices, if set, are lines to print on stderr while the run waits,
	// printed by runItems' own goroutine, which writes everything else.
	notices <-chan string
	notify  func(string)
	// submitCluster, set for a cluster, submits an item that has
	// requirements of its own, or a key in the job (see submitItem).
	submitCluster func(ctx context.Context, t engine.Task, req cluster.Requirements, key string) *future.Future[engine.Result]
	// keyed: every item goes to the cluster under its key in the job
	// (--job), its own or its position.
	keyed bool
}

// summary is how a run ended.
type summary struct {
	total, failed int
	status        int  // exit status: 0, or that of the first failure in input order (or the one that stopped it)
	interrupted   bool // the context ended (SIGINT): the run stopped early
}

// runItems feeds the pool (or cluster) from next, keeping at most opts.window items in flight
// (so an endless input runs in constant memory), and calls emit for each
// outcome in input order, or in completion order when opts.unordered. With
// opts.failFast, the first failure emitted stops it: what is in flight is
// cancelled and not emitted. It returns once every submitted task has ended,
// so nothing outlives it.
func runItems(ctx context.Context, p pool.Executor, next func() (*item, bool), opts runOptions, prog *progress, emit func(outcome)) summary {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := max(opts.window, 1)
	done := make(chan outcome, window) // never more than window in flight: sends never block

	var (
		sum       summary
		submitted int // items taken from next
		emitted   int // in input order: the index of the next one to emit
		inflight  int
		exhausted bool
		stopping  bool
		firstFail = -1 // input index of the failure that decides the status
		pending   = map[int]outcome{}
	)

	emitOne := func(o outcome) {
		if stopping {
			return
		}
		if o.err != nil && ctx.Err() != nil {
			// Cancelled by the interrupt: not this item's failure.
			stopping = true
			return
		}
		sum.total++
		if o.err != nil {
			sum.failed++
			if firstFail < 0 || o.item.index < firstFail {
				firstFail = o.item.index
				sum.status = failureStatus(o.err)
			}
		}
		prog.add(o.err != nil)
		emit(o)
		if o.err != nil && opts.failFast {
			stopping = true
			cancel()
		}
	}
	deliver := func(o outcome) {
		if opts.unordered {
			emitOne(o)
			return
		}
		pending[o.item.index] = o
		for {
			o, ok := pending[emitted]
			if !ok {
				return
			}
			delete(pending, emitted)
			emitted++
			emitOne(o)
		}
	}
	room := func() bool {
		if opts.unordered {
			return inflight < window
		}
		return submitted-emitted < window
	}

	for {
		for !exhausted && !stopping && ctx.Err() == nil && room() {
			j, ok := next()
			if !ok {
				exhausted = true
				prog.setTotal(submitted)
				break
			}
			j.index = submitted
			submitted++
			if j.err != nil {
				deliver(outcome{item: j, err: j.err})
				continue
			}
			inflight++
			f := submitItem(runCtx, p, j, opts)
			if opts.submitted != nil {
				opts.submitted(f)
			}
			f.OnDone(func(f *future.Future[engine.Result]) {
				res, err := f.Result(context.Background())
				done <- outcome{item: j, res: res, err: err}
			})
		}
		if ctx.Err() != nil && !stopping {
			stopping = true
		}
		if inflight == 0 {
			break
		}
		var o outcome
		select {
		case o = <-done:
		case n := <-opts.notices:
			opts.notify(n)
			continue
		}
		inflight--
		deliver(o)
	}
	sum.interrupted = ctx.Err() != nil
	if sum.interrupted {
		sum.status = exitCancelled
	}
	return sum
}
