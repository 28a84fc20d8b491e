package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// The executor's side of routing: which queue a task goes to, recording
// the requirement sets it uses, and failing the tasks no live worker can
// run. An executor that never submits a routed task opens none of it.

// routeSet is one requirement set an executor submits to.
type routeSet struct {
	key, subject string
	req          Requirements
	// Guarded by the router's mu.
	pending       int       // unfinished tasks of the set
	recordedAt    time.Time // its record last written
	unservedSince time.Time // no live worker could serve it since; zero: one could
}

// liveWorker is a worker's record as the executor last received it.
type liveWorker struct {
	info WorkerInfo
	at   time.Time // by this host's clock: the records' TTL is measured from it
}

type router struct {
	x    *Executor
	once sync.Once
	err  error
	rs   *routeStore
	// workerTTL is the workers bucket's: a record not written again in
	// this long is a worker that died (the broker drops it without a word).
	workerTTL time.Duration
	watch     jetstream.KeyWatcher
	stop      chan struct{}
	done      chan struct{}

	mu      sync.Mutex
	sets    map[string]*routeSet
	workers map[string]liveWorker
}

// start opens the routed stream and the watch on the workers' records,
// once; its error is every later call's too. It is bounded by the
// executor's PublishTimeout, not by the context of the task that happens
// to be the first routed one.
func (r *router) start() error {
	r.once.Do(func() {
		x := r.x
		ctx, cancel := x.opContext(time.Now().Add(x.cfg.PublishTimeout))
		defer cancel()
		if r.rs, r.err = openRoutes(ctx, x.top); r.err != nil {
			return
		}
		var kv jetstream.KeyValue
		if kv, r.workerTTL, r.err = workersBucket(ctx, x.top, x.top.ackWait); r.err != nil {
			return
		}
		// Not under ctx: the watch lives as long as the executor.
		if r.watch, r.err = kv.WatchAll(x.life); r.err != nil {
			r.err = fmt.Errorf("cluster: watching the workers' records: %w", r.err)
			return
		}
		r.sets, r.workers = map[string]*routeSet{}, map[string]liveWorker{}
		// Tasks are judged against the workers once every live record has
		// been read (the watch's nil).
		ready := make(chan struct{})
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.loop(ready)
		select {
		case <-ready:
		case <-ctx.Done():
			r.err = ctx.Err()
		}
	})
	return r.err
}

// close stops the router's watch and loop, if they ever started.
func (r *router) close() {
	r.once.Do(func() { r.err = errors.New("cluster: the executor is closed") })
	if r.stop != nil {
		close(r.stop)
		<-r.done
		_ = r.watch.Stop()
	}
}

// route finds rec's queue from what the task needs: none (the common one)
// for a task that needs nothing.
func (x *Executor) route(rec *record, given Requirements) error {
	if given.IsZero() && x.cfg.Require.IsZero() && len(rec.task.Grants) == 0 && len(rec.task.Mounts) == 0 {
		return nil // the common case, at no cost
	}
	req := needs(&rec.task, x.cfg.Require.With(given))
	if req.IsZero() {
		return nil
	}
	if err := req.check(); err != nil {
		return err
	}
	if err := x.router.start(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// Bounded as publishing is, not by the task's context: the set is
	// every later task's too.
	ctx, cancel := x.opContext(time.Now().Add(x.cfg.PublishTimeout))
	defer cancel()
	set, err := x.router.set(ctx, req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	rec.route, rec.routedAt = set, time.Now()
	return nil
}

// set returns the requirement set of req, recording it and making its
// consumer the first time, so that a worker meeting it learns of it
// before its first task is in the queue.
func (r *router) set(ctx context.Context, req Requirements) (*routeSet, error) {
	key := req.routeKey()
	r.mu.Lock()
	s := r.sets[key]
	if s != nil {
		s.pending++
		r.mu.Unlock()
		return s, nil
	}
	r.mu.Unlock()
	if _, err := r.rs.consumer(ctx, key); err != nil {
		return nil, err
	}
	if err := r.record(ctx, key, req); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.sets[key]; s == nil { // another Submit may have made it meanwhile
		s = &routeSet{key: key, subject: r.x.top.n.routedSubject(key), req: req, recordedAt: time.Now()}
		r.sets[key] = s
	}
	s.pending++
	return s, nil
}

func (r *router) record(ctx context.Context, key string, req Requirements) error {
	data, err := json.Marshal(req)
	if err == nil {
		_, err = r.rs.records.Put(ctx, key, data)
	}
	if err != nil {
		return fmt.Errorf("cluster: recording requirement set %s: %w", key, err)
	}
	return nil
}

// finished counts a routed task's end.
func (r *router) finished(s *routeSet) {
	r.mu.Lock()
	s.pending--
	r.mu.Unlock()
}

// routeTick is how often the router looks for sets no live worker can
// serve: a tenth of the wait, within [10ms, 1s].
func routeTick(wait time.Duration) time.Duration {
	return min(max(wait/10, 10*time.Millisecond), time.Second)
}

// loop follows the workers' records, fails the tasks of sets no live
// worker has served for RouteWait, and writes the records of the sets in
// use again before they expire.
func (r *router) loop(ready chan struct{}) {
	defer close(r.done)
	tick := time.NewTicker(routeTick(r.x.cfg.RouteWait))
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case e, ok := <-r.watch.Updates():
			if !ok {
				return
			}
			if e == nil {
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			r.seen(e)
		case <-tick.C:
			r.check(time.Now())
		}
	}
}

func (r *router) seen(e jetstream.KeyValueEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(r.workers, e.Key())
		return
	}
	var w WorkerInfo
	if json.Unmarshal(e.Value(), &w) == nil && w.ID != "" {
		r.workers[e.Key()] = liveWorker{info: w, at: time.Now()}
	}
}

// check fails the tasks of each set no live worker has been able to serve
// for RouteWait, and refreshes the records of the sets in use.
func (r *router) check(now time.Time) {
	var failing []*routeSet
	var refresh []*routeSet
	r.mu.Lock()
	live := r.liveLocked(now)
	for key, s := range r.sets {
		if s.pending == 0 {
			if now.Sub(s.recordedAt) > routeRecordTTL/3 {
				delete(r.sets, key) // its record expires: recorded again on next use
			}
			continue
		}
		if now.Sub(s.recordedAt) > routeRecordTTL/3 {
			s.recordedAt = now
			refresh = append(refresh, s)
		}
		if slices.ContainsFunc(live, func(w WorkerInfo) bool { return canServe(s.req, w) }) {
			s.unservedSince = time.Time{}
			continue
		}
		if s.unservedSince.IsZero() {
			s.unservedSince = now
		}
		if now.Sub(s.unservedSince) >= r.x.cfg.RouteWait {
			failing = append(failing, s)
		}
	}
	r.mu.Unlock()
	for _, s := range refresh {
		r.x.bg.Go(func() {
			ctx, cancel := context.WithTimeout(r.x.life, 5*time.Second)
			defer cancel()
			_ = r.record(ctx, s.key, s.req) // again at the next third if this failed
		})
	}
	for _, s := range failing {
		r.fail(s, live, now)
	}
}

// liveLocked is the workers whose records are fresh, by name.
func (r *router) liveLocked(now time.Time) []WorkerInfo {
	var live []WorkerInfo
	for key, w := range r.workers {
		if now.Sub(w.at) > r.workerTTL {
			delete(r.workers, key)
			continue
		}
		live = append(live, w.info)
	}
	slices.SortFunc(live, func(a, b WorkerInfo) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return live
}

// fail ends with ErrNoWorker every queued task of the set that has waited
// RouteWait itself. Each is then removed from the queue, as a cancelled
// task is (see finished). A task a worker has begun is left to it: the
// last worker of a set may be draining, finishing it.
func (r *router) fail(s *routeSet, live []WorkerInfo, now time.Time) {
	x := r.x
	x.mu.Lock()
	var recs []*record
	for _, rec := range x.tasks {
		if rec.route == s && now.Sub(rec.routedAt) >= x.cfg.RouteWait && rec.fut.State() == future.Pending {
			recs = append(recs, rec)
		}
	}
	x.mu.Unlock()
	for _, rec := range recs {
		err := &engine.Error{Module: rec.module, Err: &noWorkerError{req: s.req, workers: live, waited: x.cfg.RouteWait.String()}}
		go rec.prom.Resolve(engine.Result{}, err)
	}
}
