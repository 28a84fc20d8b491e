package pool

import (
	"context"
	"sync"

	"github.com/wasmpool/wasmpool/engine"
)

// While a task waits in the queue no worker watches its context; the
// queued-context watch makes its future end the moment the context does.
//
// One callback per context, not per task: context.AfterFunc and its stop
// cost two allocations and the parent's lock, about as much again as the
// rest of a no-op task's round trip, and the tasks of a program mostly
// share a few contexts (a request's, a job's). The watches are keyed by
// the context's Done channel, which a context shares with the contexts
// derived from it by WithValue: those end together. A watch left with no
// queued task stays registered, so that the next task of its context finds
// it (a caller that waits for each task before submitting the next would
// otherwise register and stop one per task); the ones of contexts that no
// longer submit are stopped once there are more than maxIdleWatches.
type ctxWatches struct {
	mu   sync.Mutex
	byCh map[<-chan struct{}]*ctxWatch
	idle int // watches with no job
}

type ctxWatch struct {
	ch    <-chan struct{}
	stop  func() bool
	first *job // the queued jobs of the context, linked through job.watchNext
}

const maxIdleWatches = 64

// watch adds j, about to be queued, to its context's watch. done is the
// context's Done channel.
func (ws *ctxWatches) watch(j *job, done <-chan struct{}) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.byCh[done]
	if w == nil {
		if ws.byCh == nil {
			ws.byCh = make(map[<-chan struct{}]*ctxWatch)
		}
		if ws.idle >= maxIdleWatches {
			ws.dropIdleLocked()
		}
		w = &ctxWatch{ch: done}
		// The callback runs on a goroutine of its own once the context
		// ends, at once if it already has: it finds the watch under mu.
		w.stop = context.AfterFunc(j.ctx, func() { ws.fire(w) })
		ws.byCh[done] = w
	} else if w.first == nil {
		ws.idle--
	}
	j.watch, j.watchPrev, j.watchNext = w, nil, w.first
	if w.first != nil {
		w.first.watchPrev = j
	}
	w.first = j
}

// unwatch takes j out of its watch: a worker took it, or it settled.
func (ws *ctxWatches) unwatch(j *job) {
	if !j.watched {
		return // its context cannot end: it never had a watch
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := j.watch
	if w == nil {
		return
	}
	if j.watchPrev != nil {
		j.watchPrev.watchNext = j.watchNext
	} else {
		w.first = j.watchNext
	}
	if j.watchNext != nil {
		j.watchNext.watchPrev = j.watchPrev
	}
	j.watch, j.watchPrev, j.watchNext = nil, nil, nil
	if w.first == nil && ws.byCh[w.ch] == w {
		ws.idle++
	}
}

// fire ends the futures of w's queued jobs: its context has ended.
func (ws *ctxWatches) fire(w *ctxWatch) {
	ws.mu.Lock()
	if ws.byCh[w.ch] == w {
		delete(ws.byCh, w.ch)
		if w.first == nil {
			ws.idle--
		}
	}
	var jobs []*job
	for j := w.first; j != nil; j = j.watchNext {
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		j.watch, j.watchPrev, j.watchNext = nil, nil, nil
	}
	w.first = nil
	ws.mu.Unlock()
	for _, j := range jobs {
		j.prom.Resolve(engine.Result{}, queuedCtxErr(j))
	}
}

// dropIdleLocked stops the watches that have no job.
func (ws *ctxWatches) dropIdleLocked() {
	for ch, w := range ws.byCh {
		if w.first == nil {
			if w.stop() {
				delete(ws.byCh, ch)
				ws.idle--
			}
			// A watch whose callback is running already is dropped by it.
		}
	}
}

// stopAll stops every watch: the pool has stopped, and its queued tasks
// are settled another way (run, or cancelled by Close).
func (ws *ctxWatches) stopAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for ch, w := range ws.byCh {
		w.stop()
		delete(ws.byCh, ch)
	}
	ws.idle = 0
}
