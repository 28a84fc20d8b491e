package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fate-sharing: the tasks of an anonymous executor (no job) are for it
// alone, and once it is gone nobody will read their results. Each executor
// keeps a record in the submitters bucket (NAMESPACE_submitters), written
// every AdvertEvery of the bucket's TTL (submitterTTL of the cluster's
// AckWait when the bucket was made) and deleted by Close, the pattern of the worker records:
// a submitter that dies stops writing it and the broker drops it. A worker
// drops a task whose submitter has no record instead of running it, and
// stops the running ones whose submitter's record went. A job's tasks are
// exempt: they outlive their submitter on purpose.

// submitterTTL is how long a submitter's record outlives its last write:
// three times a worker's. Taking a submitter for dead drops every task it
// has in the cluster, where taking a worker for dead costs one task's run
// again, so a submitter gets the longer benefit of the doubt: a process
// that stalls (a long GC of a large heap, a guest's memory bomb in the
// same process under the race detector) past one AckWait keeps its tasks.
// A dead submitter's queued tasks run a little longer for nobody.
func submitterTTL(ackWait time.Duration) time.Duration { return 3 * ackWait }

// submittersBucket opens the bucket, creating it with records that live
// submitterTTL. Kept in memory, as the worker records are: a
// broker that restarts loses them, and every live executor writes its own
// again within a second.
func submittersBucket(ctx context.Context, t *topology) (jetstream.KeyValue, time.Duration, error) {
	// LimitMarkerTTL: a record the broker drops for its age leaves a
	// marker, so that the workers' watch hears of a death at once.
	kv, err := keyValue(ctx, t.js, jetstream.KeyValueConfig{
		Bucket: t.n.submitters, Description: "wasmpool executors alive, each record dropped when its executor stops writing it",
		TTL: submitterTTL(t.ackWait), LimitMarkerTTL: time.Minute, Storage: jetstream.MemoryStorage, Replicas: t.s.Replicas,
	})
	if err != nil {
		return nil, 0, err
	}
	return kv, bucketTTL(ctx, kv, submitterTTL(t.ackWait)), nil
}

// submitterAd keeps an executor's record.
type submitterAd struct {
	kv      jetstream.KeyValue
	id      string
	ttl     time.Duration
	rev     uint64 // of the record as last written
	stopNow context.CancelFunc
	stopped chan struct{}
	once    sync.Once
	paused  atomic.Bool // by a test: the executor falls silent
}

// startLiveness writes the executor's record before its first task is
// published, so that no worker finds a task of a submitter it cannot see,
// and keeps it fresh until stop.
func (x *Executor) startLiveness(ctx context.Context) (*submitterAd, error) {
	kv, ttl, err := submittersBucket(ctx, x.top)
	if err != nil {
		return nil, err
	}
	a := &submitterAd{kv: kv, id: x.id, ttl: ttl, stopped: make(chan struct{})}
	if a.rev, err = kv.Put(ctx, x.id, nil); err != nil {
		return nil, err
	}
	var life context.Context
	life, a.stopNow = context.WithCancel(context.Background())
	every := AdvertEvery(ttl)
	go func() {
		defer close(a.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-life.Done():
				return
			case <-t.C:
				if x.nc.IsClosed() {
					return // for good: the record expires
				}
				if a.paused.Load() {
					continue
				}
				wctx, cancel := context.WithTimeout(life, 2*every+time.Second)
				a.refresh(wctx, x)
				cancel()
			}
		}
	}()
	return a, nil
}

// refresh writes the record again, only if it is still the one last
// written: one the broker dropped meanwhile (the executor was out of touch
// for longer than its TTL) means the workers took the executor for dead
// and dropped its tasks, whose futures then fail here rather than wait for
// ever. A bucket the broker has just made again (it restarted) proves
// nothing: the workers wait as long before they judge.
func (a *submitterAd) refresh(ctx context.Context, x *Executor) {
	rev, err := a.kv.Update(ctx, a.id, nil, a.rev)
	switch {
	case err == nil:
		a.rev = rev
		return
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		// The broker restarted and lost the bucket: make it again.
		if kv, _, err := submittersBucket(ctx, x.top); err == nil {
			a.kv = kv
		}
	case !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound):
		return // the broker's trouble: try again next time
	default:
		// Written again first: a task submitted in answer to the failures
		// must find its submitter alive.
		dropped := recordDropped(ctx, x.top, a.kv, a.id, a.ttl)
		if rev, err := a.kv.Put(ctx, a.id, nil); err == nil {
			a.rev = rev
		}
		if dropped {
			x.presumedDead()
		}
		return
	}
	if rev, err := a.kv.Put(ctx, a.id, nil); err == nil {
		a.rev = rev
	}
}

// recordDropped reports whether a missing record of the submitters bucket
// means its writer is gone: the broker dropped it for its age (its marker
// says so) or its executor deleted it, or it is not there at all in a
// bucket old enough to have it.
func recordDropped(ctx context.Context, t *topology, kv jetstream.KeyValue, key string, ttl time.Duration) bool {
	if st, err := t.js.Stream(ctx, "KV_"+t.n.submitters); err == nil {
		if m, err := st.GetLastMsgForSubject(ctx, "$KV."+t.n.submitters+"."+key); err == nil {
			// A record dropped for its age, or deleted by its closing
			// executor; anything else is a record written as we looked.
			op := m.Header.Get("KV-Operation")
			return m.Header.Get(jetstream.MarkerReasonHeader) == "MaxAge" || op == "DEL" || op == "PURGE"
		}
	}
	return !youngBucket(ctx, kv, ttl)
}

// youngBucket reports whether the bucket was made too lately for a missing
// record to mean its writer stopped: within twice the TTL, leaving the
// TTL again for the clocks of broker and reader to differ.
func youngBucket(ctx context.Context, kv jetstream.KeyValue, ttl time.Duration) bool {
	st, err := kv.Status(ctx)
	if err != nil {
		return true
	}
	kst, ok := st.(*jetstream.KeyValueBucketStatus)
	return !ok || time.Since(kst.StreamInfo().Created) < 2*ttl
}

// stop ends the refreshes and deletes the record: the workers drop what is
// left of the executor's tasks at once.
func (a *submitterAd) stop(nc *nats.Conn) {
	if a == nil {
		return
	}
	a.once.Do(func() {
		a.stopNow()
		<-a.stopped
		if !nc.IsConnected() {
			return // the record expires by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.kv.Delete(ctx, a.id)
	})
}

// liveness is a worker's view of the submitters bucket: a watch keeps when
// each submitter's record was last seen written, or deleted.
type liveness struct {
	top   *topology
	kv    jetstream.KeyValue
	ttl   time.Duration
	watch jetstream.KeyWatcher

	mu   sync.Mutex
	seen map[string]seenAt
}

type seenAt struct {
	at   time.Time // by this worker's clock: the broker's may differ
	gone bool      // its record was deleted: it closed
}

func (w *Worker) watchSubmitters(ctx context.Context) error {
	kv, ttl, err := submittersBucket(ctx, w.top)
	if err != nil {
		return err
	}
	l := &liveness{top: w.top, kv: kv, ttl: ttl, seen: map[string]seenAt{}}
	if l.watch, err = kv.WatchAll(w.runCtx, jetstream.MetaOnly()); err != nil {
		return err
	}
	w.live = l
	initial := make(chan struct{})
	w.watching.Add(2)
	go func() {
		defer w.watching.Done()
		caughtUp := false
		for e := range l.watch.Updates() {
			if e == nil {
				if !caughtUp {
					caughtUp = true
					close(initial)
				}
				continue
			}
			l.mu.Lock()
			l.seen[e.Key()] = seenAt{at: time.Now(), gone: e.Operation() != jetstream.KeyValuePut}
			l.mu.Unlock()
			if e.Operation() == jetstream.KeyValuePurge && caughtUp {
				// Dropped for its age: it died. What it left in the
				// result stream is for nobody (one that closed cleaned
				// up after itself).
				w.watching.Add(1)
				go func(id string) {
					defer w.watching.Done()
					w.reap(id)
				}(e.Key())
			}
		}
		if !caughtUp {
			close(initial)
		}
	}()
	go func() {
		defer w.watching.Done()
		w.sweepOrphans()
	}()
	select {
	case <-initial:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// alive reports whether a task's submitter is still there. One the watch
// has not shown lately (just started, or silent) is asked of the broker:
// a record the bucket still holds was written within its TTL. When in
// doubt it says yes: fate-sharing saves work, and must never drop a live
// submitter's task.
func (l *liveness) alive(ctx context.Context, id string) bool {
	now := time.Now()
	l.mu.Lock()
	s, ok := l.seen[id]
	l.mu.Unlock()
	if ok && !s.gone && now.Sub(s.at) < l.ttl {
		return true
	}
	// Gone, or not heard of lately: asked again, since a submitter that
	// was out of touch writes its record anew, and its tasks may come
	// before the watch says so.
	_, err := l.kv.Get(ctx, id)
	switch {
	case err == nil:
		l.mu.Lock()
		l.seen[id] = seenAt{at: now}
		l.mu.Unlock()
		return true
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return true
	}
	// No record. Not remembered: a submitter whose record a restarted
	// broker lost (the bucket is in memory) writes it again within a
	// second, and a bucket made that recently proves nothing yet.
	return !recordDropped(ctx, l.top, l.kv, id, l.ttl)
}

// prune forgets the submitters not heard of for long.
func (l *liveness) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, s := range l.seen {
		if now.Sub(s.at) > 10*l.ttl+time.Minute {
			delete(l.seen, id)
		}
	}
}

// sweepOrphans stops, every AdvertEvery of the TTL, the running tasks whose
// submitter is gone.
func (w *Worker) sweepOrphans() {
	t := time.NewTicker(AdvertEvery(w.live.ttl))
	defer t.Stop()
	for {
		select {
		case <-w.runCtx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		subs := map[string][]string{}
		for id, r := range w.running {
			if r.submitter != "" {
				subs[r.submitter] = append(subs[r.submitter], id)
			}
		}
		w.mu.Unlock()
		for sub, ids := range subs {
			ctx, cancel := context.WithTimeout(w.runCtx, time.Second)
			alive := w.live.alive(ctx, sub)
			cancel()
			if alive {
				continue
			}
			for _, id := range ids {
				w.log.Info("stopping a task whose submitter is gone", "task", id, "submitter", sub)
				w.cancelRun(id)
			}
		}
		w.live.prune(time.Now())
	}
}

// reap removes a dead submitter's leftovers: the results it never
// collected and its result consumer. Every worker that hears of the death
// does it; the second finds nothing.
func (w *Worker) reap(id string) {
	ctx, cancel := context.WithTimeout(w.runCtx, 5*time.Second)
	defer cancel()
	_ = w.top.results.Purge(ctx, jetstream.WithPurgeSubject(w.top.n.resultsPrefix+id))
	_ = w.top.js.DeleteConsumer(ctx, w.top.n.resultsStream, "results-"+id)
	w.log.Info("removed what a dead submitter left", "submitter", id)
}

func (l *liveness) stop() {
	if l != nil {
		_ = l.watch.Stop()
	}
}
